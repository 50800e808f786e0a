"""Fine-tuning the top of an int8 TorchScript network: the float rebuild agrees with the int8 graph, the frozen part
stays frozen, and a ``finetune`` project on stored maps trains, saves a usable backbone and predicts loose files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from learn_helpers import (
    add_classifier,
    draw,
    make_images,
    quantized_block_output,
        tiny_quantized_net,
    write_labels,
)

from iconoscope.errors import ConfigError
from iconoscope.workspace import Workspace


@pytest.fixture(scope="module")
def qnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_quantized_net(tmp_path_factory.mktemp("q") / "qnet.pt")


def _images(n: int = 6) -> np.ndarray:
    imgs = [np.asarray(draw(s, 32, seed=i), np.float32) / 255 for i, s in
            enumerate(["circle", "square", "triangle"] * (n // 3))]
    return np.stack(imgs).transpose(0, 3, 1, 2).copy()


def test_float_rebuild_agrees_with_the_int8_graph(qnet: Path) -> None:
    import torch

    from iconoscope.learn.backbones.dequantize import DequantizedNet
    from iconoscope.learn.backbones.torchscript import is_quantized, load_inlined

    module = load_inlined(str(qnet), "test")
    assert is_quantized(module)
    net = DequantizedNet(module)
    assert len(net.convs) == 5 and len(net.linears) == 1
    x = torch.from_numpy(_images())
    with torch.no_grad():
        want, got = module(x), net(x)
    assert got.shape == want.shape == (6, 5)
    # only the activations' rounding differs: close, and far closer than the outputs are to each other
    err = float((got - want).abs().max())
    assert err < 0.1 * float(want.abs().mean()) + 1e-3
    assert err < float((want[0] - want[1]).abs().max())
    assert all(p.requires_grad for p in net.parameters())


def test_top_starts_at_a_block_output_and_the_rest_is_frozen(qnet: Path) -> None:
    import torch

    from iconoscope.learn.backbones.dequantize import DequantizedNet
    from iconoscope.learn.backbones.torchscript import _pool_input, cut_graph, load_inlined

    block = quantized_block_output(qnet)
    module = load_inlined(str(qnet), "test")
    pool_in = _pool_input(module.forward.graph, "test").debugName()
    full = DequantizedNet(module, outputs=(pool_in,))
    top = DequantizedNet(module, outputs=(pool_in,), start=block)
    cut = load_inlined(str(qnet), "test")
    cut_graph(cut, block, "test")
    x = torch.from_numpy(_images())
    with torch.no_grad():
        maps = cut(x).dequantize()  # what `embed ... pool=none` stores
        np.testing.assert_allclose(top(maps).numpy(), full(x).numpy(), atol=0.05 * float(full(x).abs().max()))
    assert len(top.ops) == 1  # only the head conv is replayed
    trained = [p for p in top.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trained) == 8 * 32 + 32  # the 1x1 head conv, nothing of the frozen part
    top(maps).sum().backward()
    assert all(p.grad is not None for p in trained)
    first = next(n.output().debugName() for n in module.forward.graph.nodes() if n.kind() == "quantized::conv2d_relu")
    second = [n.output().debugName() for n in module.forward.graph.nodes() if n.kind() == "quantized::conv2d_relu"][1]
    with pytest.raises(ConfigError, match="cuts through a block"):
        DequantizedNet(module, outputs=(pool_in,), start=second)  # inside the residual block
    assert DequantizedNet(module, outputs=(pool_in,), start=first).ops  # before it is fine
    with pytest.raises(ConfigError, match="not a value"):
        DequantizedNet(module, outputs=(pool_in,), start="nope")


def test_pool_none_stores_the_whole_map(qnet: Path) -> None:
    from iconoscope.learn.backbones import get_backbone

    block = quantized_block_output(qnet)
    bb = get_backbone(f"torchscript:{qnet}?size=32&layer={block}&pool=none&views=full,top", cache=False)
    X = bb.embed([draw("circle", 40), draw("square", 40)])
    assert bb.map_shape == (8, 16, 16) and X.shape == (2, 2 * 8 * 16 * 16) == (2, bb.dim)
    assert "whole map" in bb.describe()["layer"]


def _predicts_loose_files(root: Path, tmp_path: Path) -> None:
    """`predict top --images` on files the workspace never saw: one row per image and category, scores in [0, 1]."""
    from iconoscope.cli import main

    new = make_images(tmp_path / "new", per_class=2, size=32, start=900)
    out = tmp_path / "p.csv"
    try:
        main(["-w", str(root), "predict", "top", "--images", str(tmp_path / "new"), "--out", str(out)])
    except SystemExit as e:
        assert not e.code
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(new) * 3 and all(0 <= float(r["score"]) <= 1 for r in rows)


def _project(workspace: Workspace, tmp_path: Path, backbone: str, extra: str = "epochs = 3\nbatch_size = 8") -> Path:
    items = make_images(tmp_path / "img", per_class=8, size=32)
    write_labels(workspace.labels_path("top"), items)
    add_classifier(workspace.root, "top", backbone, "finetune", extra)
    return workspace.root


def test_finetune_the_top_of_an_int8_network(workspace: Workspace, qnet: Path, tmp_path: Path) -> None:
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.train import train_classifier

    block = quantized_block_output(qnet)
    root = _project(workspace, tmp_path, f"torchscript:{qnet}?size=32&layer={block}&pool=none&views=full,top")
    ws = Workspace(root)
    rep = train_classifier(ws, "top", folds=2, show_progress=False)
    assert rep.head == "finetune" and rep.backbone == "torchscript:models/top/finetuned-v1.pt?size=32&views=full,top"
    assert (root / "models" / "top" / "finetuned-v1.pt").exists()
    assert set(rep.mean) >= {"mAP", "top1", "macro_f1"} and 0 <= rep.mean["mAP"] <= 1
    card = json.loads((root / "models" / "top" / "model_card.json").read_text())
    assert "frozen" in json.dumps(card)
    clf = load_classifier(ws, "top")
    assert clf.backbone == rep.backbone
    _predicts_loose_files(root, tmp_path)
    ws.close()


def test_saved_backbone_and_head_give_the_mean_of_the_views_logits(workspace: Workspace, qnet: Path,
                                                                   tmp_path: Path) -> None:
    """The head saved on the traced file reproduces the trained network's scores on the stored maps."""
    import torch

    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.finetune import DEFAULTS
    from iconoscope.learn.finetune_top import TopNet, TopSetup, save_trained

    block = quantized_block_output(qnet)
    spec = f"torchscript:{qnet}?size=32&layer={block}&pool=none&views=full,top"
    root = _project(workspace, tmp_path, spec)
    ws = Workspace(root)
    (root / "models" / "top").mkdir(parents=True, exist_ok=True)
    setup = TopSetup.from_spec(ws, spec, "top")
    stored = get_backbone(spec, cache=False)
    net = TopNet(setup, stored.map_shape, 3, DEFAULTS, 0, "test")
    with torch.no_grad():
        for p in net.model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # not the ImageNet (here: calibration) weights any more
    imgs = [draw(s, 40, seed=i) for i, s in enumerate(["circle", "square", "triangle"])]
    want = net.scores(stored.embed(imgs))
    trained_spec, head = save_trained(ws, setup, net, "top", 1)
    got = head.predict_proba(get_backbone(trained_spec, ws=ws, cache=False).embed(imgs))
    np.testing.assert_allclose(got, want, atol=1e-4)
    ws.close()


@pytest.mark.parametrize("options, message", [("layer=logits", "whole network end to end"),
                                              ("pool=none", "pool=none"), ("views=full,top", "drop views=")])
def test_finetune_top_spec_errors(workspace: Workspace, qnet: Path, tmp_path: Path, options: str,
                                  message: str) -> None:
    from iconoscope.learn.train import train_classifier

    root = _project(workspace, tmp_path, f"torchscript:{qnet}?size=32&{options}")
    ws = Workspace(root)
    with pytest.raises(ConfigError, match=message):
        train_classifier(ws, "top", folds=2, show_progress=False)
    ws.close()


def _float_res_net(path: Path) -> Path:
    """A float scripted CNN with a residual block (stem, block with a skip add, head conv, pooling, linear)."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, 2, 1)
            self.b1, self.b2 = nn.Conv2d(8, 8, 3, 1, 1), nn.Conv2d(8, 8, 1)
            self.last = nn.Conv2d(8, 16, 1)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(16, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.stem(x))
            x = x + self.b2(torch.relu(self.b1(x)))
            x = torch.relu(self.last(x))
            return self.fc(torch.flatten(self.pool(x), 1))

    torch.jit.script(Net().eval()).save(str(path))
    return path


def _float_values(path: Path) -> tuple[str, str, str]:
    """(stem output, the block's inner value, the block's output) of :func:`_float_res_net`."""
    from iconoscope.learn.backbones.torchscript import load_inlined

    nodes = list(load_inlined(str(path), "test").forward.graph.nodes())
    relus = [n.output().debugName() for n in nodes if n.kind() == "aten::relu"]
    add = next(n.output().debugName() for n in nodes if n.kind() == "aten::add")
    return relus[0], relus[1], add


def test_float_graph_top_matches_the_whole_graph_and_refuses_a_cut_inside_a_block(tmp_path: Path) -> None:
    import torch

    from iconoscope.learn.backbones.torchscript import _pool_input, cut_graph, load_inlined
    from iconoscope.learn.finetune_top import FloatTop

    path = _float_res_net(tmp_path / "res.pt")
    stem, inner, block = _float_values(path)
    whole = load_inlined(str(path), "test")
    end = _pool_input(whole.forward.graph, "test").debugName()
    cut_graph(whole, end, "test")
    x = torch.from_numpy(_images())
    for start in (stem, block):
        prefix = load_inlined(str(path), "test")
        cut_graph(prefix, start, "test")
        top = FloatTop(load_inlined(str(path), "test"), start, end, "test")
        with torch.no_grad():
            np.testing.assert_allclose(top(prefix(x)).numpy(), whole(x).numpy(), rtol=1e-5, atol=1e-5)
    top(prefix(x)).sum().backward()
    assert top.module.last.weight.grad is not None and top.module.stem.weight.grad is None  # frozen: no gradient
    with pytest.raises(ConfigError, match="cuts through a block"):
        FloatTop(load_inlined(str(path), "test"), inner, end, "test")


def test_finetune_the_top_of_a_float_network(workspace: Workspace, tmp_path: Path) -> None:
    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.train import train_classifier

    path = _float_res_net(tmp_path / "res.pt")
    _, _, block = _float_values(path)
    root = _project(workspace, tmp_path, f"torchscript:{path}?size=32&layer={block}&pool=none")
    ws = Workspace(root)
    rep = train_classifier(ws, "top", folds=2, show_progress=False)
    assert rep.backbone == "torchscript:models/top/finetuned-v1.pt?size=32"
    import torch

    saved = torch.jit.load(str(root / "models" / "top" / "finetuned-v1.pt"))
    original = torch.jit.load(str(path))
    assert torch.equal(saved.stem.weight, original.stem.weight)  # frozen part unchanged
    assert not torch.equal(saved.last.weight, original.last.weight)  # the top was trained
    assert get_backbone(rep.backbone, ws=ws, cache=False).dim == 16
    ws.close()


def test_layers_listing_marks_the_fine_tune_starts(qnet: Path, tmp_path: Path) -> None:
    """`iconoscope layers --all` marks exactly the values a finetune project accepts as layer=."""
    from iconoscope.learn.backbones.layers import list_layers

    rows = {info.name: info for info in list_layers(f"torchscript:{qnet}", everything=True)}
    block = quantized_block_output(qnet)
    assert rows[block].clean_cut and "fine-tune start" in rows[block].row()["note"]
    inside = [n for n, info in rows.items() if info.op == "quantized::conv2d_relu"][1:3]  # the block's own convs
    assert inside and not any(rows[n].clean_cut for n in inside)
    path = _float_res_net(tmp_path / "res.pt")
    stem, inner, add = _float_values(path)
    float_rows = {info.name: info for info in list_layers(f"torchscript:{path}", everything=True)}
    assert float_rows[stem].clean_cut and float_rows[add].clean_cut and not float_rows[inner].clean_cut


def test_embed_all_stores_the_maps_a_fine_tuned_top_trains_on(workspace: Workspace, qnet: Path) -> None:
    from iconoscope.cli.learn_cmds import stored_specs

    maps = f"torchscript:{qnet}?layer=x&pool=none"
    add_classifier(workspace.root, "top", maps, "finetune")
    add_classifier(workspace.root, "cnn", "builtin:smallcnn?size=32", "finetune")
    add_classifier(workspace.root, "probe", "builtin:smallcnn?size=48", "linear")
    with Workspace(workspace.root) as ws:
        assert stored_specs(ws.config) == ["builtin:smallcnn?size=48", maps]


def test_finetune_a_whole_int8_network_end_to_end(workspace: Workspace, qnet: Path, tmp_path: Path) -> None:
    """No layer=: every layer of the int8 network, rebuilt in float, is trained on the images; the saved file is a
    float network (no int8 prefix) that predicts loose files."""
    import torch

    from iconoscope.learn.backbones.dequantize import DequantizedNet
    from iconoscope.learn.backbones.torchscript import is_quantized, load_inlined
    from iconoscope.learn.train import train_classifier

    root = _project(workspace, tmp_path, f"torchscript:{qnet}?size=32", "epochs = 3\nbatch_size = 8\nlr = 0.003")
    ws = Workspace(root)
    rep = train_classifier(ws, "top", folds=2, show_progress=False)
    assert rep.backbone == "torchscript:models/top/finetuned-v1.pt?size=32"
    card = json.loads((root / "models" / "top" / "model_card.json").read_text())
    assert "whole network is fine-tuned end to end" in json.dumps(card)
    saved = load_inlined(str(root / "models" / "top" / "finetuned-v1.pt"), "test")
    assert not is_quantized(saved)
    original = DequantizedNet(load_inlined(str(qnet), "test"))
    first = dict(saved.named_parameters())["top.convs.0.weight"]
    assert first.shape == original.convs[0].weight.shape
    assert not torch.allclose(first, original.convs[0].weight)  # the stem was trained too: nothing frozen
    _predicts_loose_files(root, tmp_path)
    ws.close()


@pytest.mark.parametrize("kind", ["int8", "float"])
def test_saved_whole_network_and_head_reproduce_the_trained_scores(workspace: Workspace, qnet: Path, tmp_path: Path,
                                                                    kind: str) -> None:
    """The file saved after end-to-end training + the head give the trained network's scores on the same images."""
    import torch

    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.finetune import DEFAULTS, Uint8Preparer
    from iconoscope.learn.finetune_top import TopSetup, pixel_network, save_trained

    path = qnet if kind == "int8" else _float_res_net(tmp_path / "res.pt")
    spec = f"torchscript:{path}?size=32"
    root = _project(workspace, tmp_path, spec)
    ws = Workspace(root)
    (root / "models" / "top").mkdir(parents=True, exist_ok=True)
    setup = TopSetup.from_spec(ws, spec, "top")
    assert setup.end_to_end
    pre = get_backbone(spec, cache=False).preprocess
    net = pixel_network(setup, pre, 3, DEFAULTS, 0, "test")
    with torch.no_grad():
        for q in net.model.parameters():
            q.add_(0.05 * torch.randn_like(q))  # not the file's weights any more
    imgs = [draw(s, 40, seed=i) for i, s in enumerate(["circle", "square", "triangle"])]
    want = net.scores(np.stack([Uint8Preparer(pre)(im) for im in imgs]))
    trained_spec, head = save_trained(ws, setup, net, "top", 1)
    got = head.predict_proba(get_backbone(trained_spec, ws=ws, cache=False).embed(imgs))
    np.testing.assert_allclose(got, want, atol=1e-4)
    ws.close()


def test_finetune_a_whole_float_network_end_to_end(workspace: Workspace, tmp_path: Path) -> None:
    import torch

    from iconoscope.learn.train import train_classifier

    path = _float_res_net(tmp_path / "res.pt")
    root = _project(workspace, tmp_path, f"torchscript:{path}?size=32&layer=pool", "epochs = 2\nbatch_size = 8")
    ws = Workspace(root)
    rep = train_classifier(ws, "top", folds=2, show_progress=False)
    assert rep.backbone == "torchscript:models/top/finetuned-v1.pt?size=32"
    saved = torch.jit.load(str(root / "models" / "top" / "finetuned-v1.pt"))
    original = torch.jit.load(str(path))
    assert not torch.equal(saved.stem.weight, original.stem.weight)  # end to end: the stem was trained too
    ws.close()
