"""Finer training targets (``fine_labels``): a head trained on the records' subjects, summed up to categories."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from learn_helpers import add_classifier, make_images, write_labels

from iconoscope.errors import ConfigError
from iconoscope.learn.heads import LinearProbe, MLPHead


def _split_category(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Category 0 is two clusters on either side of category 1 (x = -4 and +4 around 0); a third cluster
    (x = 8 on the other axis) belongs to no category. One linear region cannot hold category 0's two halves."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 4, n)  # 0: left half of cat 0, 1: right half of cat 0, 2: cat 1, 3: none
    centre = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 0.0], [0.0, 8.0]])[kind]
    X = (centre + rng.normal(0, 0.7, (n, 2))).astype(np.float32)
    Y = np.zeros((n, 2), dtype=bool)
    Y[kind < 2, 0] = True
    Y[kind == 2, 1] = True
    fine = np.array(["left", "right", "middle", "elsewhere"])[kind].tolist()
    return X, Y, fine


def _accuracy(P: np.ndarray, Y: np.ndarray) -> float:
    pos = Y.any(axis=1)
    return float((P[pos].argmax(axis=1) == Y[pos].argmax(axis=1)).mean())


def test_fine_units_separate_a_category_made_of_two_clusters() -> None:
    X, Y, fine = _split_category(400, 0)
    Xt, Yt, _ = _split_category(400, 1)  # scored on rows the heads never saw
    coarse = LinearProbe(C=10.0, normalize="none", max_iter=300).fit(X, Y)
    fine_head = LinearProbe(C=10.0, normalize="none", max_iter=300, fine_labels=True).fit(X, Y, fine=fine)
    assert fine_head.units_ == ["fine:elsewhere", "fine:left", "fine:middle", "fine:right"]
    np.testing.assert_array_equal(fine_head.unit_map_, [[0, 0], [1, 0], [0, 1], [1, 0]])
    P, Pc = fine_head.predict_proba(Xt), coarse.predict_proba(Xt)
    assert P.shape == (400, 2) and P.min() >= 0 and P.sum(axis=1).max() <= 1 + 1e-6
    assert _accuracy(P, Yt) > 0.97
    assert _accuracy(Pc, Yt) < 0.9  # the coarse softmax cannot put cat 1 between cat 0's halves
    none = ~Yt.any(axis=1)
    assert P[none].sum(axis=1).mean() < 0.1  # "elsewhere" sums into no category


def test_rare_subjects_fall_back_to_their_category_set_and_units_come_from_training_rows() -> None:
    X, Y, fine = _split_category(200, 2)
    fine = [f if f != "right" else f"right-{i}" for i, f in enumerate(fine)]  # every right-half row unique
    head = LinearProbe(C=1.0, normalize="none", fine_labels=True, fine_min=5).fit(X, Y, fine=fine)
    assert "cats:0" in head.units_ and not any(u.startswith("fine:right") for u in head.units_)
    assert head.unit_map_[head.units_.index("cats:0")].tolist() == [1, 0]
    rare_none = ["x"] * len(fine)  # one key for all: below fine_min on 3 rows only
    head2 = LinearProbe(C=1.0, normalize="none", fine_labels=True, fine_min=1000).fit(X, Y, fine=rare_none)
    assert head2.units_ == ["cats:", "cats:0", "cats:1"]  # = the coarse softmax with its background unit
    assert head2.unit_map_[0].tolist() == [0, 0]


def test_fine_labels_errors_are_clear() -> None:
    X, Y, fine = _split_category(60, 3)
    with pytest.raises(ConfigError, match="one fine key per training row"):
        LinearProbe(fine_labels=True).fit(X, Y)
    with pytest.raises(ConfigError, match="one fine key per training row"):
        LinearProbe(fine_labels=True).fit(X, Y, fine=fine[:10])
    with pytest.raises(ConfigError, match="loss = 'bce'"):
        LinearProbe(fine_labels=True, loss="bce").fit(X, Y, fine=fine)
    # without fine_labels the keys are ignored: the same probe as before
    a = LinearProbe(C=1.0).fit(X, Y)
    b = LinearProbe(C=1.0).fit(X, Y, fine=fine)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_warm_start_only_from_the_same_units() -> None:
    X, Y, fine = _split_category(300, 4)
    first = LinearProbe(C=1.0, normalize="none", fine_labels=True).fit(X, Y, fine=fine)
    renamed = [{"left": "a", "right": "b", "middle": "c", "elsewhere": "d"}[f] for f in fine]
    # same number of units, other names: the warm start must not be taken (it would map weights to wrong units)
    cold = LinearProbe(C=1.0, normalize="none", fine_labels=True, max_iter=1).fit(X, Y, fine=renamed)
    warm_try = LinearProbe(C=1.0, normalize="none", fine_labels=True, max_iter=1).fit(X, Y, init=first, fine=renamed)
    np.testing.assert_array_equal(cold.coef_, warm_try.coef_)
    warm = LinearProbe(C=1.0, normalize="none", fine_labels=True, max_iter=1).fit(X, Y, init=first, fine=fine)
    assert not np.allclose(warm.coef_, cold.coef_)


def test_mlp_with_fine_labels_learns_and_pickles() -> None:
    X, Y, fine = _split_category(400, 5)
    Xt, Yt, _ = _split_category(200, 6)
    head = MLPHead(hidden=16, epochs=60, lr=1e-2, batch_size=32, normalize="none", fine_labels=True).fit(
        X, Y, fine=fine)
    assert _accuracy(head.predict_proba(Xt), Yt) > 0.95
    buf = io.BytesIO()
    joblib.dump(head, buf)
    buf.seek(0)
    np.testing.assert_allclose(joblib.load(buf).predict_proba(Xt), head.predict_proba(Xt))


def test_train_passes_each_rows_subjects_to_a_fine_head(workspace, tmp_path) -> None:
    """``train`` reads the label table's subjects; a project with fine_labels trains and keeps out-of-fold honesty;
    an older table without the column is a clear error."""
    from iconoscope.learn.train import train_classifier
    from iconoscope.workspace import Workspace

    root = workspace.root
    items = make_images(tmp_path / "img", per_class=12, size=40)
    path = workspace.labels_path("fine")
    write_labels(path, items, records_per_image=2)
    add_classifier(root, "fine", "builtin:smallcnn?size=32&widths=8,16&engine=torch", "linear",
                   "fine_labels = true\nfine_min = 2\ngrid = { C = [1.0] }\ninner_folds = 2\nmax_iter = 50")
    workspace.close()
    table = pq.read_table(path)
    meta = table.schema.metadata
    old = table  # no subjects column
    # subjects: each shape split in two "varieties" by image parity (fine units below each category)
    subjects = [[f"https://example.org/test/concept/{shape}/{n % 2}"] for n, (_, shape, _) in enumerate(items)]
    table = table.append_column("subjects", pa.array(subjects, pa.list_(pa.string()))).replace_schema_metadata(meta)
    pq.write_table(table, path)
    ws = Workspace(root)
    try:
        rep = train_classifier(ws, "fine", show_progress=False)
        assert rep.params["fine_labels"] is True and rep.mean["mAP"] > 0.8
        from iconoscope.learn.classifier import load_classifier

        clf = load_classifier(ws, "fine")
        assert len(clf.head.units_) == 6 and clf.head.unit_map_.sum(axis=0).tolist() == [2, 2, 2]
        pq.write_table(old, path)
        with pytest.raises(ConfigError, match="subjects"):
            train_classifier(ws, "fine", show_progress=False)
        empty = old.append_column("subjects", pa.array([[]] * len(items), pa.list_(pa.string())))
        pq.write_table(empty.replace_schema_metadata(meta), path)
        with pytest.raises(ConfigError, match="no row of the label table has a subject"):
            train_classifier(ws, "fine", show_progress=False)
    finally:
        ws.close()
