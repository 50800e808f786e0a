"""The ``ensemble`` head: the weighted mean of trained members' probabilities, cross-validated on the members' own
folds without refitting anything, and an ordinary classifier afterwards (``predict --images`` on the concat of the
members' backbones gives the mean of the members' own predictions)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from learn_helpers import add_classifier, make_images, quantized_block_output, tiny_quantized_net, write_labels

from iconoscope.errors import ConfigError
from iconoscope.workspace import Workspace

SPEC = "builtin:smallcnn?size=32&widths=8,16&engine=torch"


def _ensemble(root: Path, name: str = "ens", body: str = 'members = ["lin", "top"]') -> None:
    with open(root / "iconoscope.toml", "a", encoding="utf-8") as f:
        f.write(f'\n[classifiers.{name}]\nhead = "ensemble"\n{body}\n')


@pytest.fixture
def members_ws(workspace: Workspace, tmp_path: Path) -> Workspace:
    """Two trainable members of one label set (a linear probe, a fine-tuned int8 top) and an ensemble of them."""
    qnet = tiny_quantized_net(tmp_path / "qnet.pt")
    block = quantized_block_output(qnet)
    root = workspace.root
    items = make_images(tmp_path / "img", per_class=8, size=32)
    for name in ("lin", "top", "ens"):
        write_labels(workspace.labels_path(name), items)
    add_classifier(root, "lin", SPEC, "linear", "grid = { C = [0.1, 1.0] }\nmax_iter = 50")
    add_classifier(root, "top", f"torchscript:{qnet}?size=32&layer={block}&pool=none&views=full,top", "finetune",
                   "epochs = 3\nbatch_size = 8")
    _ensemble(root)
    workspace.close()
    ws = Workspace(root)
    yield ws
    ws.close()


def _oof(ws: Workspace, name: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.evaluate import read_oof

    clf = load_classifier(ws, name)
    images, _, Y, S, folds = read_oof(clf.model_dir, clf.categories)
    order = np.argsort(images)
    return [images[i] for i in order], Y[order], S[order], folds[order]


def _predict(root: Path, name: str, folder: Path, out: Path) -> dict[tuple[str, str], float]:
    from iconoscope.cli import main

    try:
        main(["-w", str(root), "predict", name, "--images", str(folder), "--out", str(out)])
    except SystemExit as e:
        assert not e.code
    return {(r["image"], r["concept"]): float(r["score"]) for r in csv.DictReader(out.open())}


def test_ensemble_averages_the_members_out_of_fold_scores_and_predicts_loose_files(members_ws: Workspace,
                                                                                     tmp_path: Path) -> None:
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.metrics import best_f1_thresholds, evaluate_scores
    from iconoscope.learn.train import train_classifier

    ws = members_ws
    for m in ("lin", "top"):
        train_classifier(ws, m, show_progress=False)
    rep = train_classifier(ws, "ens", show_progress=False)
    lin, top = load_classifier(ws, "lin"), load_classifier(ws, "top")
    assert rep.head == "ensemble" and rep.folds == 3 and rep.n_images == 24
    assert rep.backbone == f"concat:{lin.backbone}|{top.backbone}"

    images, Y, S, folds = _oof(ws, "ens")
    li, _, SL, fl = _oof(ws, "lin")
    ti, _, ST, ft = _oof(ws, "top")
    assert images == li == ti and (folds == fl).all() and (folds == ft).all()
    np.testing.assert_allclose(S, (SL + ST) / 2, atol=1e-6)  # nothing refitted: the mean of what the members scored
    assert not np.allclose(S, SL, atol=1e-3) and not np.allclose(S, ST, atol=1e-3)

    # each fold is judged with thresholds calibrated on the other folds only, and its metrics are its own
    th = json.loads((ws.model_dir("ens") / "thresholds.json").read_text())
    for f, per in enumerate(rep.per_fold):
        other = folds != f
        np.testing.assert_allclose(th["fold_thresholds"][f], best_f1_thresholds(Y[other], S[other]), atol=1e-6)
        assert per["mAP"] == pytest.approx(evaluate_scores(Y[~other], S[~other], None)["mAP"], abs=1e-9)
    card = json.loads((ws.model_dir("ens") / "model_card.json").read_text())
    assert [m["name"] for m in card["members"]] == ["lin", "top"] and all(m["model_sha256"] for m in card["members"])
    assert "nothing is fitted" in card["evaluation"]["protocol"]
    assert "| lin | 1 | linear | 1 |" in (ws.model_dir("ens") / "model_card.md").read_text()

    # the trained ensemble is an ordinary classifier: on files it never saw it gives the members' mean
    new = tmp_path / "new"
    make_images(new, per_class=2, size=32, start=700)
    p_ens = _predict(ws.root, "ens", new, tmp_path / "ens.csv")
    p_lin = _predict(ws.root, "lin", new, tmp_path / "lin.csv")
    p_top = _predict(ws.root, "top", new, tmp_path / "top.csv")
    assert len(p_ens) == 6 * 3 and set(p_ens) == set(p_lin) == set(p_top)
    for key, v in p_ens.items():
        assert v == pytest.approx((p_lin[key] + p_top[key]) / 2, abs=1e-4), key

    # weights are the user's: a member weighted 0 contributes nothing
    text = (ws.root / "iconoscope.toml").read_text()
    ws.close()
    (ws.root / "iconoscope.toml").write_text(text.replace('members = ["lin", "top"]',
                                                          'members = ["lin", "top"]\nweights = [1, 0]'))
    ws2 = Workspace(ws.root)
    try:
        assert train_classifier(ws2, "ens", show_progress=False).version == 2
        _, _, S2, _ = _oof(ws2, "ens")
        np.testing.assert_allclose(S2, SL, atol=1e-6)
    finally:
        ws2.close()


def test_ensemble_refuses_untrained_members_and_different_folds(members_ws: Workspace) -> None:
    from iconoscope.learn.train import train_classifier

    ws = members_ws
    train_classifier(ws, "lin", show_progress=False)
    with pytest.raises(ConfigError, match="member 'top' is not trained; run 'iconoscope train top'"):
        train_classifier(ws, "ens", show_progress=False)
    train_classifier(ws, "top", folds=2, show_progress=False)
    with pytest.raises(ConfigError, match="different folds"):
        train_classifier(ws, "ens", show_progress=False)
    train_classifier(ws, "top", show_progress=False)
    with pytest.raises(ConfigError, match="cannot choose other folds"):
        train_classifier(ws, "ens", folds=4, show_progress=False)
    # a member trained on another label table (one image fewer, or one label changed) is named
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = ws.labels_path("ens")
    t = pq.read_table(table)
    pq.write_table(t.slice(0, t.num_rows - 1), table)
    with pytest.raises(ConfigError, match="member 'lin' was trained on another label table"):
        train_classifier(ws, "ens", show_progress=False)
    cats = t.column("categories").to_pylist()
    cats[0] = cats[-1]
    pq.write_table(t.set_column(t.schema.get_field_index("categories"), "categories",
                                pa.array(cats, t.schema.field("categories").type)), table)
    with pytest.raises(ConfigError, match="member 'lin' was trained on another label table"):
        train_classifier(ws, "ens", show_progress=False)


@pytest.mark.parametrize("body, message", [
    ("", "'members' = None: expected a list of two or more"),
    ('members = ["lin"]', "two or more"),
    ('members = ["lin", "nope"]', "'nope': expected a declared classifier"),
    ('members = ["lin", "lin"]', "distinct"),
    ('members = ["lin", "mm"]', "its head is 'multimodal'"),
    ('members = ["lin", "other"]', "same vocabulary, categories"),
    ('members = ["lin", "top"]\nweights = [1]', "2 non-negative numbers"),
    ('members = ["lin", "top"]\nweights = [0, 0]', "not all 0"),
    ('members = ["lin", "top"]\nbackbone = "builtin:smallcnn"', "no backbone"),
    ('members = ["lin", "top"]\ncategories = ["https://example.org/x"]', "the members' categories"),
])
def test_ensemble_config_errors(workspace: Workspace, body: str, message: str) -> None:
    from iconoscope.config import load_config

    root = workspace.root
    add_classifier(root, "lin", SPEC)
    add_classifier(root, "top", SPEC, "mlp")
    with open(root / "iconoscope.toml", "a", encoding="utf-8") as f:
        f.write('\n[classifiers.other]\ncategories = ["https://example.org/x"]\n'
                '\n[classifiers.mm]\nhead = "multimodal"\ntargets = ["creator"]\n')
    _ensemble(root, body=body)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_config(root)


def test_ensemble_head_slices_and_averages() -> None:
    from iconoscope.learn.ensemble import EnsembleHead, combine

    class Const:
        def __init__(self, dim: int, k: float):
            self.dim, self.k = dim, k

        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            assert X.shape[1] == self.dim
            return np.clip(X.sum(axis=1, keepdims=True) * self.k, 0, 1).repeat(2, axis=1)

    head = EnsembleHead([Const(3, 0.1), Const(2, 0.2)], [3, 2], [3, 1])
    X = np.array([[1, 1, 1, 0, 0], [0, 0, 0, 1, 1]], np.float32)
    np.testing.assert_allclose(head.predict_proba(X), [[0.75 * 0.3, 0.75 * 0.3], [0.25 * 0.4, 0.25 * 0.4]],
                               atol=1e-6)
    np.testing.assert_allclose(combine([np.ones((1, 2)), np.zeros((1, 2))], [1, 3]), [[0.25, 0.25]])
    with pytest.raises(ValueError, match="5 columns"):
        head.predict_proba(np.zeros((1, 4), np.float32))


def test_ensemble_predicts_the_collection_into_the_graph(workspace: Workspace, tmp_path: Path) -> None:
    """`predict ENS` on an ingested collection: the concat store is filled from the members' stores and the run in
    the graph carries the ensemble's out-of-fold scores for its training images (as any classifier's run does)."""
    import io

    import test_enrich_helpers as H
    from click.testing import CliRunner

    from iconoscope.cli import cli
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.embed import EmbeddingStore

    H.build_graph(workspace, image_dir=tmp_path / "images")
    workspace.close()
    root = workspace.root
    cats = ", ".join(f'"https://example.org/test/concept/demo/{c}"' for c in H.CATEGORIES)
    with open(root / "iconoscope.toml", "a", encoding="utf-8") as f:
        for name, head, extra in [("lin", "linear", "grid = { C = [1.0] }"),
                                  ("mlp", "mlp", "grid = {}\nepochs = 5\nhidden = 16")]:
            f.write(f'\n[classifiers.{name}]\ncategories = [{cats}]\nbackbone = "{SPEC}"\nhead = "{head}"\n'
                    f"folds = 2\ninner_folds = 1\n{extra}\n")
    _ensemble(root, body='members = ["lin", "mlp"]')

    def run(*args: str) -> str:
        res = CliRunner().invoke(cli, ["-w", str(root), *args], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return res.stdout

    for name in ("lin", "mlp", "ens"):
        run("labels", name)
    for name in ("lin", "mlp", "ens"):
        run("train", name)
    run("predict", "ens", "--floor", "0")
    rows = list(csv.DictReader(io.StringIO(run("export", "predictions", "ens", "--format", "csv"))))
    with Workspace(root) as ws:
        images, _, S, _ = _oof(ws, "ens")
        clf = load_classifier(ws, "ens")
        assert len(EmbeddingStore(ws, clf.backbone)) == len(H.all_images())
    want = {(img, c): float(S[i, j]) for i, img in enumerate(images) for j, c in enumerate(clf.categories)}
    got = {(r["image"], r["concept"]): float(r["score"]) for r in rows if r["model"] == "ens"}
    assert len(got) == len(H.all_images()) * len(H.CATEGORIES)  # every image of the graph is scored
    assert len(want) == len(images) * len(H.CATEGORIES) < len(got)  # (images without a label row by the model)
    for key, v in want.items():  # the labelled ones with their out-of-fold scores
        assert got[key] == pytest.approx(v, abs=1e-4), key
