"""Multimodal stage, pure parts: date parsing and binning, the inputs/targets syntax, encoders, the network."""

from __future__ import annotations

import numpy as np
import pytest

from iconoscope.errors import ConfigError
from iconoscope.learn.multimodal.dates import DateBins, parse_year, parse_year_range
from iconoscope.learn.multimodal.features import NumericEncoder, TargetEncoder, VocabEncoder
from iconoscope.learn.multimodal.specs import FieldRef, parse_input, parse_specs, parse_target


# ---------------------------------------------------------------- dates
@pytest.mark.parametrize("text,expected", [
    ("1909", (1909, 1909)),
    ("ca. 1900", (1900, 1900)),
    ("c. 1900", (1900, 1900)),
    ("circa 1900", (1900, 1900)),
    ("about 1650-1660", (1650, 1660)),
    ("1886-1942", (1886, 1942)),
    ("1886-92", (1886, 1892)),
    ("1650 to 1660", (1650, 1660)),
    ("1909-05-03", (1909, 1909)),
    ("1447-01-01T00:00:00Z", (1447, 1447)),
    ("500 BC", (-500, -500)),
    ("500-450 BC", (-500, -450)),
    ("-500", (-500, -500)),
    ("-0050", (-50, -50)),
    ("AD 79", (79, 79)),
    ("19th century", (1800, 1899)),
    ("XIXe siècle", (1800, 1899)),
    ("5th century BC", (-500, -401)),
    ("1890s", (1890, 1899)),
    ("1800s", (1800, 1899)),
    ("12 May 1890", (1890, 1890)),
    ("1900/1909", (1900, 1909)),
    ("-10/-1", (-10, -1)),
    ("", None),
    ("undated", None),
    ("n.d.", None),
    (None, None),
    (1909, (1909, 1909)),
])
def test_parse_year_range(text, expected):
    assert parse_year_range(text) == expected


def test_parse_year_takes_the_first_year_of_a_range():
    assert parse_year("1412-1420") == 1412
    assert parse_year("ca. 1860-1943") == 1860


@pytest.mark.parametrize("year,label", [
    (1909, "1900/1909"), (1910, "1910/1919"), (1900, "1900/1909"), (1899, "1890/1899"),
    (0, "0/9"), (9, "0/9"), (-1, "-10/-1"), (-10, "-10/-1"), (-11, "-20/-11"), (-500, "-500/-491"),
])
def test_decade_bin_edges(year, label):
    assert DateBins(10).label(year) == label
    lo, hi = DateBins.parse_label(label)
    assert lo <= year <= hi


def test_bins_of_other_widths_and_text():
    assert DateBins(25).label(1949) == "1925/1949"
    assert DateBins(25).label(1950) == "1950/1974"
    assert DateBins(100).label_of_text("ca. 1900") == "1900/1999"
    assert DateBins(10).label_of_text("no date") is None
    assert DateBins(10).centre("1900/1909") == 1904.5
    with pytest.raises(ValueError):
        DateBins(0)


def test_bins_tile_the_line_without_gaps():
    b = DateBins(7)
    labels = [b.label(y) for y in range(-100, 100)]
    for y, lab in zip(range(-100, 100), labels, strict=True):
        lo, hi = b.parse_label(lab)
        assert lo <= y <= hi and hi - lo == 6


# ---------------------------------------------------------------- specs
def test_input_specs_and_defaults():
    assert parse_input("image").kind == "image"
    s = parse_input("image:onnx:/m.onnx")
    assert (s.kind, s.backbone) == ("image", "onnx:/m.onnx")
    assert parse_input("creator").kind == "cat"
    assert parse_input("title").kind == "text"
    assert parse_input("year").kind == "num"
    assert parse_input("subject").kind == "set"
    g = parse_input("field:genus")
    assert (g.kind, g.field) == ("cat", FieldRef("genus", extra=True))
    assert parse_input("genus").field == FieldRef("genus", extra=True)
    m = parse_input("set:field:material")
    assert (m.kind, m.field.key) == ("set", "field:material")
    d = parse_input("date:25")
    assert (d.kind, d.width, d.field.name) == ("date", 25, "date")
    t = parse_input("text:field:caption")
    assert (t.kind, t.field.key) == ("text", "field:caption")


def test_target_specs():
    t = parse_target("date:10")
    assert (t.kind, t.width, t.name) == ("date", 10, "date")
    assert parse_target("year").kind == "date"
    assert parse_target("creator").kind == "cat"
    assert parse_target("subject").kind == "set"
    assert parse_target("set:field:genre").kind == "set"
    assert parse_target("field:movement").name == "field:movement"


@pytest.mark.parametrize("inputs,targets,msg", [
    (["image"], [], "at least one field to predict"),
    ([], ["creator"], "at least one input"),
    (["creator"], ["creator"], "sees no input"),
    (["year"], ["date:10"], "sees no input"),
    (["image"], ["creator", "creator"], "given twice"),
    (["image"], ["num:year"], "use cat:, set: or date:W"),
    (["image"], ["date:0"], "at least 1 year"),
    (["image"], ["date:10:foo:bar"], "not a field"),
    (["field:"], ["creator"], "needs a column name"),
])
def test_bad_specs_name_the_problem(inputs, targets, msg):
    with pytest.raises(ConfigError, match=msg):
        parse_specs(inputs, targets, "iconoscope.toml [classifiers.x]")


# ---------------------------------------------------------------- encoders
def test_unknown_and_rare_categories_count_as_missing():
    enc = VocabEncoder("creator", multi=False, min_count=2).fit([["A"], ["A"], ["B"], ["C"], ["C"]])
    assert enc.vocab == ["A", "C"]
    b = enc.transform([["A"], ["B"], [], ["Z"], ["A", "C"]])
    assert b.present.tolist() == [True, False, False, False, True]
    assert b.X[4].tolist() == [0.5, 0.5]  # two values share the weight
    assert b.with_flag()[1, -1] == 1.0 and b.with_flag()[0, -1] == 0.0


def test_numeric_encoder_standardises_and_flags_missing():
    enc = NumericEncoder("year").fit([1900.0, 1910.0, None, 1920.0])
    b = enc.transform([1910.0, None])
    assert b.X[0, 0] == pytest.approx(0.0)
    assert b.present.tolist() == [True, False] and b.X[1, 0] == 0.0


def test_target_encoder_drops_rare_classes_and_masks_unlabelled():
    enc = TargetEncoder(parse_target("creator"), min_count=2).fit([["A"], ["A"], ["B"], ["C"], ["C"], []])
    assert enc.classes == ["A", "C"]
    Y, has = enc.transform([["A"], ["B"], [], ["A", "C"]])
    assert has.tolist() == [True, False, False, True]
    assert Y[3].tolist() == [0.5, 0.5]


def test_date_classes_sort_chronologically():
    enc = TargetEncoder(parse_target("date:10")).fit([["1900/1909"], ["-10/-1"], ["0/9"], ["1890/1899"]])
    assert enc.classes == ["-10/-1", "0/9", "1890/1899", "1900/1909"]


# ---------------------------------------------------------------- network
def _toy(n: int, rng: np.random.Generator):
    """Class c is visible in the 'image' block (noisy) and in a categorical block (clean, but often missing)."""
    from iconoscope.learn.multimodal.model import BlockSlot

    y = rng.integers(0, 3, n)
    img = rng.normal(0, 1.0, (n, 8)).astype(np.float32)
    img[:, 0] += y * 0.8
    cat = np.eye(3, dtype=np.float32)[y]
    has_cat = rng.random(n) < 0.5
    cat[~has_cat] = 0
    Xi = np.concatenate([img, np.zeros((n, 1), np.float32)], axis=1)
    Xm = np.concatenate([cat, (~has_cat).astype(np.float32)[:, None]], axis=1)
    slots = [BlockSlot("image", "image", 0, 9), BlockSlot("field:g", "meta", 0, 4)]
    return Xi, Xm, np.eye(3, dtype=np.float32)[y], y, has_cat, slots


def test_network_uses_metadata_when_present_and_falls_back_without_it():
    from iconoscope.learn.multimodal.model import MultimodalClassifier, NetConfig, Task

    rng = np.random.default_rng(0)
    Xi, Xm, Y, y, has_cat, slots = _toy(900, rng)
    cfg = NetConfig(image_units=16, meta_units=8, shared_units=32, epochs=25, batch_size=64, lr=3e-3)
    clf = MultimodalClassifier(slots, [Task("t", 3)], cfg)
    clf.fit(Xi[:600], Xm[:600], [Y[:600]], [np.ones(600, bool)])
    P = clf.predict_proba(Xi[600:], Xm[600:])[0]
    pred, truth, cat = P.argmax(1), y[600:], has_cat[600:]
    acc_with, acc_without = (pred[cat] == truth[cat]).mean(), (pred[~cat] == truth[~cat]).mean()
    assert acc_with > 0.95  # the metadata gives the answer
    assert 0.45 < acc_without < acc_with  # without it, the image still helps (chance is 1/3)
    assert np.allclose(P.sum(1), 1.0, atol=1e-5)
    # the state round-trips exactly
    clf2 = MultimodalClassifier.from_state(clf.state())
    assert np.allclose(clf2.predict_proba(Xi[600:], Xm[600:])[0], P, atol=1e-6)


def test_unlabelled_rows_do_not_train_a_head():
    from iconoscope.learn.multimodal.model import BlockSlot, MultimodalClassifier, NetConfig, Task

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    Y = np.eye(2, dtype=np.float32)[y]
    has = np.zeros(200, bool)
    has[:100] = True
    Y2 = Y.copy()
    Y2[100:] = np.eye(2, dtype=np.float32)[1 - y[100:]]  # wrong labels, but masked out
    cfg = NetConfig(meta_units=8, shared_units=16, epochs=30, lr=3e-3, modality_dropout=0.0)
    clf = MultimodalClassifier([BlockSlot("x", "meta", 0, 5)], [Task("t", 2)], cfg)
    clf.fit(None, X, [Y2], [has])
    acc = (clf.predict_proba(None, X[100:])[0].argmax(1) == y[100:]).mean()
    assert acc > 0.75  # had the masked (inverted) labels been used, it would be near 0.5


def test_net_config_from_params_validates():
    from iconoscope.learn.multimodal.model import NetConfig

    cfg = NetConfig.from_params({"epochs": 5, "dropout": 0.3, "lr": 0.01}, "x")
    assert (cfg.epochs, cfg.dropout, cfg.lr) == (5, 0.3, 0.01)
    with pytest.raises(ConfigError, match="'dropout'"):
        NetConfig.from_params({"dropout": 1.5}, "x")
    with pytest.raises(ConfigError, match="'epochs'"):
        NetConfig.from_params({"epochs": "many"}, "x")
    with pytest.raises(ConfigError, match="'epochs'"):
        NetConfig.from_params({"epochs": 2.5}, "x")
    assert NetConfig.from_params({"ensemble": 5}, "x").ensemble == 5
    with pytest.raises(ConfigError, match="'ensemble'"):
        NetConfig.from_params({"ensemble": 0}, "x")


def test_a_head_never_sees_its_own_field_when_it_is_also_an_input():
    """inputs and targets may share a field (the year helps predict the artist and the other way round): the head
    of that field is computed with the field hidden, so it cannot copy its answer, in training or prediction."""
    from iconoscope.learn.multimodal.model import BlockSlot, MultimodalClassifier, NetConfig, Task

    rng = np.random.default_rng(2)
    n = 600
    y = rng.integers(0, 4, n)
    answer = np.concatenate([np.eye(4, dtype=np.float32)[y], np.zeros((n, 1), np.float32)], axis=1)
    noise = np.concatenate([rng.normal(size=(n, 3)).astype(np.float32), np.zeros((n, 1), np.float32)], axis=1)
    noise[:, 0] += (y % 2) * 1.5  # the other input tells half of the answer
    Xm = np.concatenate([answer, noise], axis=1)
    slots = [BlockSlot("date:10", "meta", 0, 5), BlockSlot("x", "meta", 5, 9)]
    Y = np.eye(4, dtype=np.float32)[y]
    cfg = NetConfig(meta_units=16, shared_units=32, epochs=20, lr=3e-3, batch_size=32)
    tasks = [Task("date", 4, hide=("date:10",)), Task("copy", 4)]
    clf = MultimodalClassifier(slots, tasks, cfg).fit(None, Xm[:400], [Y[:400], Y[:400]], [np.ones(400, bool)] * 2)
    P_date, P_copy = clf.predict_proba(None, Xm[400:])
    assert (P_copy.argmax(1) == y[400:]).mean() > 0.95  # a head allowed to read the field copies it
    acc = (P_date.argmax(1) == y[400:]).mean()
    assert 0.3 < acc < 0.7  # the hidden head only has the other input (half the answer)
    shuffled = Xm[400:].copy()
    shuffled[:, :4] = np.eye(4, dtype=np.float32)[rng.integers(0, 4, len(shuffled))]
    assert np.allclose(clf.predict_proba(None, shuffled)[0], P_date, atol=1e-6)  # it does not even look
    with pytest.raises(ConfigError, match="unknown input"):
        MultimodalClassifier(slots, [Task("t", 2, hide=("nope",))], cfg)


def test_an_ensemble_averages_networks_trained_from_consecutive_seeds():
    """``ensemble = 3`` must be exactly the mean of the single networks of seeds 4, 5 and 6 (same data, same
    settings), survive a save/load, and keep ``ensemble = 1`` the single network."""
    from dataclasses import replace

    from iconoscope.learn.multimodal.model import MultimodalClassifier, NetConfig, Task

    rng = np.random.default_rng(3)
    Xi, Xm, Y, _, _, slots = _toy(500, rng)
    tasks = [Task("t", 3), Task("u", 3)]
    cfg = NetConfig(image_units=16, meta_units=8, shared_units=32, epochs=6, batch_size=64, lr=3e-3, seed=4)
    fit = (Xi[:300], Xm[:300], [Y[:300], Y[:300]], [np.ones(300, bool)] * 2)
    singles = [MultimodalClassifier(slots, tasks, replace(cfg, seed=s)).fit(*fit).predict_proba(Xi[300:], Xm[300:])
               for s in (4, 5, 6)]
    ens = MultimodalClassifier(slots, tasks, replace(cfg, ensemble=3)).fit(*fit)
    P = ens.predict_proba(Xi[300:], Xm[300:])
    assert len(ens.nets) == 3
    for t in range(2):
        assert np.allclose(P[t], np.mean([s[t] for s in singles], axis=0), atol=1e-6)
        assert not np.allclose(singles[0][t], singles[1][t], atol=1e-3)  # the members do differ
    again = MultimodalClassifier.from_state(ens.state())
    assert len(again.nets) == 3
    assert np.allclose(again.predict_proba(Xi[300:], Xm[300:])[0], P[0], atol=1e-6)
    one = MultimodalClassifier(slots, tasks, cfg).fit(*fit)
    assert len(one.nets) == 1 and np.array_equal(one.predict_proba(Xi[300:], Xm[300:])[0], singles[0][0])
    state = one.state()
    state.pop("more_weights")  # a model saved before the option existed still loads
    assert np.array_equal(MultimodalClassifier.from_state(state).predict_proba(Xi[300:], Xm[300:])[0], singles[0][0])
