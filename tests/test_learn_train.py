"""train / eval / predict end to end on drawn shapes: honest out-of-fold scores, reports, loose-file prediction."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from learn_helpers import CONCEPT, SHAPES, add_classifier, make_images, write_labels
from sklearn.metrics import average_precision_score

from iconoscope.cli import main
from iconoscope.errors import ConfigError
from iconoscope.workspace import Workspace

SPEC = "builtin:smallcnn?size=32&widths=8,16&engine=torch"


def _run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


@pytest.fixture
def shapes_ws(workspace, tmp_path: Path) -> Workspace:
    """A workspace with 36 labelled images (2 images per record) and two classifier projects."""
    root = workspace.root
    items = make_images(tmp_path / "train_img", per_class=12, size=40)
    write_labels(workspace.labels_path("shapes"), items, records_per_image=2)
    write_labels(workspace.labels_path("shapes_mlp"), items, records_per_image=2)
    add_classifier(root, "shapes", SPEC, "linear", "grid = { C = [0.1, 1.0] }\nmax_iter = 50")
    add_classifier(root, "shapes_mlp", SPEC, "mlp", "epochs = 15\nhidden = 32\ngrid = {}")
    workspace.close()
    ws = Workspace(root)
    yield ws
    ws.close()


def test_train_eval_predict_linear(shapes_ws: Workspace, tmp_path: Path) -> None:
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.evaluate import evaluate
    from iconoscope.learn.train import train_classifier

    ws = shapes_ws
    rep = train_classifier(ws, "shapes", show_progress=False)
    assert rep.version == 1 and rep.folds == 3 and rep.n_images == 36 and rep.n_records == 18
    assert rep.params["C"] in (0.1, 1.0)
    assert rep.mean["mAP"] > 0.8 and rep.mean["top1"] > 0.7  # colours and shapes are easy

    model_dir = ws.model_dir("shapes")
    for f in ("model.joblib", "model_card.json", "model_card.md", "oof_scores.parquet", "thresholds.json"):
        assert (model_dir / f).exists(), f
    oof = pq.read_table(model_dir / "oof_scores.parquet").to_pandas()
    assert list(oof.columns) == ["record", "image", "concept", "score", "label", "fold"]
    assert len(oof) == 36 * 3
    assert oof.groupby("record")["fold"].nunique().max() == 1  # a record never spans two folds

    card = json.loads((model_dir / "model_card.json").read_text())
    assert card["version"] == 1 and card["backbone"]["spec"] == SPEC
    assert len(card["evaluation"]["per_fold"]) == 3 and card["data"]["dataset_sha256"]
    assert "inner cross-validation" in card["evaluation"]["protocol"]

    # out-of-fold scores are not the final model's scores on its own training images
    clf = load_classifier(ws, "shapes")
    from iconoscope.learn.embed import EmbeddingStore

    images = list(dict.fromkeys(oof["image"]))
    _, X = EmbeddingStore(ws, SPEC).load(images)
    train_scores = clf.predict_proba(X)
    S = oof.pivot(index="image", columns="concept", values="score").loc[images, clf.categories].to_numpy()
    assert not np.allclose(S, train_scores, atol=1e-3)
    assert clf.categories == [CONCEPT.format(s) for s in SHAPES] and clf.version == 1

    res = evaluate(ws, "shapes", tmp_path / "report")
    Y = oof.pivot(index="image", columns="concept", values="label").loc[images, clf.categories].to_numpy()
    assert res["pooled"]["mAP"] == pytest.approx(average_precision_score(Y, S, average="macro"), abs=1e-6)
    assert res["confusion"]["rows"] == 36 and np.asarray(res["confusion"]["matrix"]).sum() == 36
    for f in ("index.html", "pr_curves.png", "confusion.png", "metrics.json"):
        assert (tmp_path / "report" / f).stat().st_size > 0
    assert "out-of-fold" in (tmp_path / "report" / "index.html").read_text()

    # retraining bumps the version
    assert train_classifier(ws, "shapes", show_progress=False).version == 2

    # predict --images on files the workspace never saw (plus one broken file): CSV, one row per image x category
    make_images(tmp_path / "new_img", per_class=3, size=40, start=500)
    (tmp_path / "new_img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "pred.csv"
    assert _run(["-w", str(ws.root), "predict", "shapes", "--images", str(tmp_path / "new_img"), "--out",
                 str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["image", "concept", "label", "score"]
    assert len(rows) == 9 * 3 and "broken.png" not in {r["image"] for r in rows}
    best: dict[str, tuple[float, str]] = {}
    for r in rows:
        if r["image"] not in best or float(r["score"]) > best[r["image"]][0]:
            best[r["image"]] = (float(r["score"]), r["label"])
    right = sum(img.split("-")[0] == lab for img, (_, lab) in best.items())
    assert right >= 7, best


def test_mlp_head_and_cli_eval(shapes_ws: Workspace, tmp_path: Path, capsys) -> None:
    ws = shapes_ws
    assert _run(["-w", str(ws.root), "train", "shapes_mlp"]) == 0
    assert "mAP" in capsys.readouterr().out
    assert _run(["-w", str(ws.root), "eval", "shapes_mlp", "--report", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "macro_f1" in out and (tmp_path / "r" / "index.html").exists()
    from iconoscope.learn.classifier import load_classifier

    clf = load_classifier(ws, "shapes_mlp")
    assert clf.kind == "mlp" and clf.predict_proba(np.zeros((2, 16), np.float32)).shape == (2, 3)


def test_errors_are_clear(shapes_ws: Workspace) -> None:
    from iconoscope.learn.classifier import load_classifier

    assert _run(["-w", str(shapes_ws.root), "eval", "nope"]) == 2
    with pytest.raises(ConfigError, match="not trained"):
        load_classifier(shapes_ws, "shapes")
    shapes_ws.labels_path("shapes").unlink()
    from iconoscope.learn.train import train_classifier

    with pytest.raises(ConfigError, match="iconoscope labels shapes"):
        train_classifier(shapes_ws, "shapes", show_progress=False)


def test_finetune_smallcnn_from_scratch(workspace, tmp_path: Path) -> None:
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.train import train_classifier

    items = make_images(tmp_path / "img", per_class=10, size=32)
    write_labels(workspace.labels_path("cnn"), items)
    add_classifier(workspace.root, "cnn", "builtin:smallcnn?size=32&widths=8,16", "finetune",
                   "epochs = 4\nbatch_size = 16")
    ws = Workspace(workspace.root)
    rep = train_classifier(ws, "cnn", show_progress=False)
    assert rep.head == "finetune" and "weights=models/cnn/smallcnn-v1.pt" in rep.backbone
    assert set(rep.mean) >= {"mAP", "top1", "macro_f1"}
    clf = load_classifier(ws, "cnn")
    out = tmp_path / "p.csv"
    new = make_images(tmp_path / "new", per_class=2, size=32, start=900)
    assert _run(["-w", str(ws.root), "predict", "cnn", "--images", str(tmp_path / "new"), "--out", str(out)]) == 0
    assert len(list(csv.DictReader(out.open()))) == len(new) * 3
    assert clf.backbone == rep.backbone
    ws.close()


def test_finetune_schedules(workspace, tmp_path: Path) -> None:
    """Both learning-rate schedules run to the end (OneCycleLR raises if stepped past its planned steps, so an odd
    last batch would fail here); an unknown one is a config error naming the value before any image is decoded."""
    from iconoscope.learn.train import train_classifier

    items = make_images(tmp_path / "img", per_class=7, size=32)  # 21 images: batches of 16 leave a short last one
    write_labels(workspace.labels_path("cnn"), items)
    add_classifier(workspace.root, "cnn", "builtin:smallcnn?size=32&widths=8,16", "finetune",
                   'epochs = 3\nbatch_size = 16\nschedule = "step"')
    ws = Workspace(workspace.root)
    assert train_classifier(ws, "cnn", folds=2, show_progress=False).head == "finetune"
    ws.close()
    add_classifier(workspace.root, "bad", "builtin:smallcnn?size=32&widths=8,16", "finetune",
                   'epochs = 3\nschedule = "cosine"')
    write_labels(workspace.labels_path("bad"), items)
    ws = Workspace(workspace.root)
    with pytest.raises(ConfigError, match="schedule = 'cosine'"):
        train_classifier(ws, "bad", show_progress=False)
    ws.close()


def test_interrupted_train_resumes_at_the_first_unfinished_fold(shapes_ws: Workspace, monkeypatch) -> None:
    """Folds finished before a crash are not run again, and the result equals an uninterrupted run's; a finished run
    leaves no partial folds behind, and a changed configuration never reuses them."""
    import iconoscope.learn.train as train_mod
    from iconoscope.learn.foldcache import PARTIAL

    ws = shapes_ws
    clean = train_mod.train_classifier(ws, "shapes", show_progress=False)
    assert not (ws.model_dir("shapes") / PARTIAL).exists()
    real, calls = train_mod.select_and_fit, []

    def crash_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "select_and_fit", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        train_mod.train_classifier(ws, "shapes", show_progress=False)
    assert len(list((ws.model_dir("shapes") / PARTIAL).glob("*/fold-*.joblib"))) == 2
    calls.clear()
    monkeypatch.setattr(train_mod, "select_and_fit", lambda *a, **kw: (calls.append(1), real(*a, **kw))[1])
    again = train_mod.train_classifier(ws, "shapes", show_progress=False)
    assert again.resumed == [0, 1] and len(calls) == 1  # only the third fold ran
    assert again.mean == clean.mean and [f["mAP"] for f in again.per_fold] == [f["mAP"] for f in clean.per_fold]
    assert not (ws.model_dir("shapes") / PARTIAL).exists()
    assert "resumed folds" in again.summary()
    calls.clear()
    assert train_mod.train_classifier(ws, "shapes", folds=2, show_progress=False).resumed == []
    assert len(calls) == 2


def test_interrupted_finetune_resumes(workspace, tmp_path: Path, monkeypatch) -> None:
    import iconoscope.learn.finetune as ft
    from iconoscope.learn.train import train_classifier

    items = make_images(tmp_path / "img", per_class=6, size=32)
    write_labels(workspace.labels_path("cnn"), items)
    add_classifier(workspace.root, "cnn", "builtin:smallcnn?size=32&widths=8,16", "finetune",
                   "epochs = 2\nbatch_size = 16")
    ws = Workspace(workspace.root)
    real, calls = ft._Net.fit, []

    def crash_on_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ft._Net, "fit", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(ws, "cnn", show_progress=False)
    monkeypatch.setattr(ft._Net, "fit", real)
    rep = train_classifier(ws, "cnn", show_progress=False)
    assert rep.resumed == [0] and len(rep.per_fold) == 3
    ws.close()
