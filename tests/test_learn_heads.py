"""Heads: the linear probe is scikit-learn's logistic regression; softmax keeps a background; heads pickle."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from iconoscope.learn.heads import LinearProbe, MLPHead, make_head


def _data(n: int = 240, d: int = 12, c: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    centres = rng.normal(0, 1.5, (c, d))
    X = (centres[y] + rng.normal(0, 1, (n, d))).astype(np.float32)
    return X, np.eye(c, dtype=bool)[y]


@pytest.mark.parametrize("C", [0.05, 1.0])
def test_linear_probe_equals_sklearn_logistic_regression(C: float) -> None:
    X, Y = _data()
    head = LinearProbe(C=C, loss="bce", normalize="none", max_iter=500).fit(X, Y)
    Xs = (X - head.mean_) / head.std_
    for j in range(Y.shape[1]):
        ref = LogisticRegression(C=C, tol=1e-8, max_iter=2000).fit(Xs, Y[:, j])
        np.testing.assert_allclose(head.coef_[j], ref.coef_[0], rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(head.predict_proba(X)[:, j], ref.predict_proba(Xs)[:, 1], atol=2e-3)


def test_balanced_softmax_equals_sklearn_multinomial_with_balanced_class_weights() -> None:
    X, Y = _data(300, c=3)
    keep = ~Y[:, 2] | (np.arange(300) % 6 == 0)  # class 2 made rare (about 17 rows of 300)
    X, Y = X[keep], Y[keep]
    y = Y.argmax(axis=1)
    head = LinearProbe(C=0.5, loss="softmax", normalize="none", class_weight="balanced", max_iter=500).fit(X, Y)
    Xs = (X - head.mean_) / head.std_
    ref = LogisticRegression(C=0.5, class_weight="balanced", tol=1e-8, max_iter=2000).fit(Xs, y)
    np.testing.assert_allclose(head.predict_proba(X), ref.predict_proba(Xs), atol=2e-3)
    plain = LinearProbe(C=0.5, loss="softmax", normalize="none", max_iter=500).fit(X, Y)
    assert head.predict_proba(X)[:, 2].mean() > plain.predict_proba(X)[:, 2].mean()  # the rare class gains
    assert np.abs(head.predict_proba(X) - plain.predict_proba(X)).max() > 0.02


def test_softmax_keeps_a_background_for_rows_of_no_category() -> None:
    X, Y = _data(300, c=4)
    Y[:, 3] = False  # the fourth group belongs to none of the categories
    Y = Y[:, :3]
    head = LinearProbe(C=1.0, loss="softmax").fit(X, Y)
    P = head.predict_proba(X)
    assert P.shape == (300, 3) and head.background_
    none = ~Y.any(axis=1)
    assert P[none].sum(axis=1).mean() < 0.5 < P[~none].sum(axis=1).mean()
    assert (P[~none].argmax(axis=1) == Y[~none].argmax(axis=1)).mean() > 0.9


def test_mlp_learns_and_round_trips_through_joblib() -> None:
    X, Y = _data(300)
    head = make_head("mlp", hidden=16, epochs=30, batch_size=32, normalize="none").fit(X, Y)
    assert isinstance(head, MLPHead)
    P = head.predict_proba(X)
    assert (P.argmax(axis=1) == Y.argmax(axis=1)).mean() > 0.9
    buf = io.BytesIO()
    joblib.dump(head, buf)
    buf.seek(0)
    np.testing.assert_allclose(joblib.load(buf).predict_proba(X), P, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown parameter"):
        head.set_params(colour="red")


def test_auto_loss_follows_the_training_labels() -> None:
    X, Y = _data(120)
    assert LinearProbe().fit(X, Y).loss_ == "softmax"
    Y2 = Y.copy()
    Y2[:40, 0] = True  # many rows with two positives: a multi-label set
    assert LinearProbe().fit(X, Y2).loss_ == "bce"
