"""End-to-end fine-tuning of a transformers backbone: each fold starts from the pretrained weights, the trained model
is saved with its image processor and works as an ``hf:`` backbone that reproduces the trained network's scores."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from learn_helpers import add_classifier, draw, make_images, save_tiny_hf, write_labels

from iconoscope.errors import ConfigError
from iconoscope.workspace import Workspace


@pytest.mark.parametrize(("kind", "layer"), [("vit", "cls"), ("clip", "embeds")])
def test_finetune_an_hf_model_end_to_end(workspace: Workspace, tmp_path: Path, kind: str, layer: str) -> None:
    import torch

    import iconoscope.learn.finetune as ft
    from iconoscope.cli import main
    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.train import train_classifier

    folder = save_tiny_hf(tmp_path, kind)
    items = make_images(tmp_path / "img", per_class=6, size=32)
    write_labels(workspace.labels_path("ft"), items)
    add_classifier(workspace.root, "ft", f"hf:{folder}?engine=torch", "finetune", "epochs = 2\nbatch_size = 8")
    ws = Workspace(workspace.root)
    starts: list[torch.Tensor] = []
    real_fit = ft._Net.fit

    def record_start(self, *args, **kwargs):  # each fold's network must start from the pretrained weights
        starts.append(next(self.model.parameters()).detach().clone())
        return real_fit(self, *args, **kwargs)

    ft._Net.fit = record_start
    try:
        rep = train_classifier(ws, "ft", folds=2, show_progress=False)
    finally:
        ft._Net.fit = real_fit
    assert len(starts) == 3 and all(torch.equal(s, starts[0]) for s in starts)
    assert rep.backbone == f"hf:models/ft/finetuned-v1?engine=torch&layer={layer}"
    saved = ws.root / "models" / "ft" / "finetuned-v1"
    assert (saved / "config.json").exists() and (saved / "preprocessor_config.json").exists()
    trained = get_backbone(rep.backbone, ws=ws, cache=False)
    original = get_backbone(f"hf:{folder}?engine=torch", cache=False)
    assert trained.describe()["layer"].endswith(layer) and trained.preprocess == original.preprocess
    imgs = [draw(s, 40, seed=i) for i, s in enumerate(["circle", "square", "triangle"])]
    assert not np.allclose(trained.embed(imgs), original.embed(imgs), atol=1e-5)  # the weights were trained
    clf = load_classifier(ws, "ft")
    out = tmp_path / "p.csv"
    try:
        main(["-w", str(ws.root), "predict", "ft", "--images", str(tmp_path / "img"), "--out", str(out)])
    except SystemExit as e:
        assert not e.code
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(items) * 3 and clf.backbone == rep.backbone
    ws.close()


def test_saved_hf_model_and_head_reproduce_the_trained_network(workspace: Workspace, tmp_path: Path) -> None:
    import torch

    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.finetune import DEFAULTS, Uint8Preparer, _hf_network, _PixelNet, _save_hf

    folder = save_tiny_hf(tmp_path, "vit")
    base = get_backbone(f"hf:{folder}?engine=torch", cache=False)
    net = _PixelNet(base.preprocess, _hf_network(base, 3, DEFAULTS, 0), 3, DEFAULTS, 0)
    with torch.no_grad():
        for p in net.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    imgs = [draw(s, 40, seed=i) for i, s in enumerate(["circle", "square", "triangle"])]
    want = net.scores(np.stack([Uint8Preparer(base.preprocess)(im) for im in imgs]))
    (workspace.root / "models" / "ft").mkdir(parents=True)
    spec, head = _save_hf(workspace, net, base, "ft", 1)
    got = head.predict_proba(get_backbone(spec, ws=workspace, cache=False).embed(imgs))
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_finetune_hf_refuses_views(workspace: Workspace, tmp_path: Path) -> None:
    from iconoscope.learn.train import train_classifier

    folder = save_tiny_hf(tmp_path, "vit")
    write_labels(workspace.labels_path("ft"), make_images(tmp_path / "img", per_class=3, size=32))
    add_classifier(workspace.root, "ft", f"hf:{folder}?views=full,top", "finetune", "epochs = 1")
    ws = Workspace(workspace.root)
    with pytest.raises(ConfigError, match="drop views="):
        train_classifier(ws, "ft", show_progress=False)
    ws.close()
