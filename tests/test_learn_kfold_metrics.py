"""k-fold splits never leak a record across folds and stay stratified; metrics match scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, top_k_accuracy_score

from iconoscope.learn.kfold import fold_indices, grouped_folds, iterative_stratification
from iconoscope.learn.metrics import (
    average_precision,
    best_f1_thresholds,
    confusion,
    evaluate_scores,
    prf,
    top_k_accuracy,
)


def _multilabel(n: int = 600, c: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = np.array([0.4, 0.25, 0.1, 0.05, 0.02, 0.01])[:c]
    Y = rng.random((n, c)) < p
    return Y


def test_grouped_folds_never_split_a_record() -> None:
    rng = np.random.default_rng(1)
    Y = _multilabel(500)
    groups = [f"r{g}" for g in rng.integers(0, 180, size=500)]
    # images of one record share its labels
    for g in set(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        Y[idx] = Y[idx[0]]
    folds = grouped_folds(Y, groups, 5, seed=3)
    for g in set(groups):
        assert len({folds[i] for i, x in enumerate(groups) if x == g}) == 1, g
    train_test = fold_indices(folds)
    assert len(train_test) == 5
    for tr, te in train_test:
        assert not set(np.asarray(groups)[tr]) & set(np.asarray(groups)[te])
        assert len(tr) + len(te) == 500


def test_iterative_stratification_spreads_rare_labels() -> None:
    Y = _multilabel(1000, seed=2)
    folds = iterative_stratification(Y, 5, seed=0)
    counts = np.array([Y[folds == f].sum(axis=0) for f in range(5)])  # [fold, class]
    total = Y.sum(axis=0)
    # every class is split as evenly as its count allows (within one example of the ideal share, rounded)
    assert (np.abs(counts - total / 5) <= 1.0 + 1e-9).all(), counts
    sizes = np.bincount(folds, minlength=5)
    assert sizes.max() - sizes.min() <= 2


def test_fold_count_errors() -> None:
    with pytest.raises(ValueError):
        iterative_stratification(np.ones((3, 2), bool), 5)


def _scores(Y: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    S = rng.random(Y.shape) * 0.7 + Y * 0.4
    S[:5] = np.round(S[:5], 1)  # some ties
    return S


def test_average_precision_matches_sklearn() -> None:
    Y = _multilabel(300, seed=4)
    S = _scores(Y)
    for j in range(Y.shape[1]):
        if Y[:, j].any():
            assert average_precision(Y[:, j], S[:, j]) == pytest.approx(average_precision_score(Y[:, j], S[:, j]))
    assert np.isnan(average_precision(np.zeros(5, bool), np.arange(5.0)))
    m = evaluate_scores(Y, S)
    valid = Y.any(axis=0)
    assert m["mAP"] == pytest.approx(average_precision_score(Y[:, valid], S[:, valid], average="macro"))


def test_prf_matches_sklearn() -> None:
    Y = _multilabel(300, seed=5)
    P = _scores(Y, 1) > 0.5
    got = prf(Y, P)
    for avg in ("micro", "macro"):
        assert got[f"{avg}_precision"] == pytest.approx(precision_score(Y, P, average=avg, zero_division=0))
        assert got[f"{avg}_recall"] == pytest.approx(recall_score(Y, P, average=avg, zero_division=0))
        assert got[f"{avg}_f1"] == pytest.approx(f1_score(Y, P, average=avg, zero_division=0))


def test_top_k_and_confusion_match_sklearn_on_single_label() -> None:
    rng = np.random.default_rng(6)
    y = rng.integers(0, 7, 400)
    Y = np.eye(7, dtype=bool)[y]
    S = rng.random((400, 7)) + 0.6 * Y
    for k in (1, 5):
        assert top_k_accuracy(Y, S, k) == pytest.approx(top_k_accuracy_score(y, S, k=k, labels=range(7)))
    m, used = confusion(Y, S)
    from sklearn.metrics import confusion_matrix

    assert used.all()
    np.testing.assert_array_equal(m, confusion_matrix(y, S.argmax(axis=1), labels=range(7)))


def test_thresholds_maximise_f1_on_validation_scores() -> None:
    Y = _multilabel(400, seed=7)
    S = _scores(Y, 2)
    th = best_f1_thresholds(Y, S)
    for j in range(Y.shape[1]):
        if not Y[:, j].any():
            assert th[j] == 0.5
            continue
        best = f1_score(Y[:, j], S[:, j] >= th[j], zero_division=0)
        for t in np.linspace(0, 1, 101):  # no grid threshold does better
            assert f1_score(Y[:, j], S[:, j] >= t, zero_division=0) <= best + 1e-12
