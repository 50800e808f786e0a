"""Each backbone kind loads and embeds (tiny models built here), layers are cut where they say, specs fail clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from learn_helpers import draw, save_tiny_hf, tiny_convnet

from iconoscope.errors import ConfigError
from iconoscope.learn.backbones import Preprocess, get_backbone, parse_spec, register_backbone

IMAGES = [draw(s, 40, seed=i) for i, s in enumerate(["circle", "square", "triangle"])]


def test_smallcnn_embeds_and_onnx_runtime_agrees_with_torch() -> None:
    a = get_backbone("builtin:smallcnn?size=64&engine=torch", cache=False)
    b = get_backbone("builtin:smallcnn?size=64&engine=onnx", cache=False)
    Xa, Xb = a.embed(IMAGES), b.embed(IMAGES)
    assert Xa.shape == (3, 256) and Xa.dtype == np.float32
    assert a.dim == 256 and "penultimate" in a.describe()["layer"]
    assert "engine onnx" in b.notes
    np.testing.assert_allclose(Xa, Xb, rtol=1e-3, atol=1e-4)
    assert not np.allclose(Xa[0], Xa[1])  # different images, different vectors


def test_colorhist_is_a_weight_free_colour_descriptor() -> None:
    from PIL import Image

    bb = get_backbone("builtin:colorhist?bins=6,2,2&grid=2", cache=False)
    red, blue = Image.new("RGB", (40, 60), (230, 20, 20)), Image.new("RGB", (40, 60), (20, 20, 230))
    X = bb.embed([red, blue, red])
    assert X.shape == (3, 24 * 5) and bb.dim == 120
    np.testing.assert_allclose(X[0], X[2])
    assert X[0, 0 * 4 + 1 * 2 + 1] == pytest.approx(1.0)  # hue bin 0, saturated, bright: the whole image
    assert X[1, 4 * 4 + 1 * 2 + 1] == pytest.approx(1.0)  # blue: hue 2/3 -> bin 4 of 6
    assert float(X[0] @ X[1]) == pytest.approx(0.0)


def test_views_concatenate_and_are_recorded() -> None:
    bb = get_backbone("builtin:smallcnn?size=32&views=full,top,flip&engine=torch", cache=False)
    X = bb.embed(IMAGES[:2])
    assert X.shape == (2, 3 * 256)
    assert bb.describe()["views"] == ["full", "top", "flip"]
    single = get_backbone("builtin:smallcnn?size=32&engine=torch", cache=False).embed(IMAGES[:2])
    np.testing.assert_allclose(X[:, :256], single, rtol=1e-4, atol=1e-5)


def test_torchscript_cut_at_pool_gives_prelogit_features(tmp_path: Path) -> None:
    import torch

    net = tiny_convnet(num_classes=5, width=8)
    path = tmp_path / "net.pt"
    torch.jit.script(net).save(str(path))
    pooled = get_backbone(f"torchscript:{path}?size=32", cache=False)
    logits = get_backbone(f"torchscript:{path}?size=32&layer=logits", cache=False)
    Xp, Xl = pooled.embed(IMAGES), logits.embed(IMAGES)
    assert Xp.shape == (3, 16) and Xl.shape == (3, 5)
    assert "pooling" in pooled.describe()["layer"]
    # the pooled features are exactly what the classifier layer receives
    with torch.no_grad():
        expect = net.classifier(torch.from_numpy(Xp)).numpy()
    np.testing.assert_allclose(expect, Xl, rtol=1e-4, atol=1e-4)
    avgmax = get_backbone(f"torchscript:{path}?size=32&pool=avgmax", cache=False)
    assert avgmax.embed(IMAGES[:1]).shape == (1, 32)


def test_torchscript_several_layers_concatenate(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "net.pt"
    torch.jit.script(tiny_convnet(width=8)).save(str(path))
    m = torch.jit.load(str(path))
    torch._C._jit_pass_inline(m.forward.graph)
    relus = [n.output().debugName() for n in m.forward.graph.nodes() if n.kind() == "aten::relu"]
    bb = get_backbone(f"torchscript:{path}?size=32&layer={relus[0]}+pool", cache=False)
    X = bb.embed(IMAGES)
    assert X.shape == (3, 8 + 16)  # first block (8 channels) + last feature map (16), each pooled
    pooled = get_backbone(f"torchscript:{path}?size=32", cache=False).embed(IMAGES)
    np.testing.assert_allclose(X[:, 8:], pooled, rtol=1e-5, atol=1e-6)


def test_torchscript_unknown_layer_lists_values(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "net.pt"
    torch.jit.script(tiny_convnet()).save(str(path))
    with pytest.raises(ConfigError, match="not a value of the graph"):
        get_backbone(f"torchscript:{path}?layer=nope", cache=False)


def test_onnx_fixed_batch_model_gets_prelogit_output_and_batches(tmp_path: Path) -> None:
    import torch

    net = tiny_convnet(num_classes=7, width=4)
    path = tmp_path / "net.onnx"
    x = torch.randn(1, 3, 32, 32)
    torch.onnx.export(net, (x,), str(path), input_names=["data"], output_names=["logits"], dynamo=False,
                      opset_version=13)  # no dynamic axes: batch fixed at 1, as in many zoo models
    (tmp_path / "net.onnx.preprocess.json").write_text(json.dumps(Preprocess(size=(32, 32)).to_dict()))
    bb = get_backbone(f"onnx:{path}", cache=False)
    out = get_backbone(f"onnx:{path}?layer=output", cache=False)
    assert bb.preprocess.size == (32, 32)
    X = bb.embed(IMAGES)
    assert X.shape == (3, 8) and bb.max_batch is None  # the batch axis was freed
    with torch.no_grad():
        ref = net(torch.from_numpy(np.stack([bb.prepare(im)[0] for im in IMAGES])))
    np.testing.assert_allclose(out.embed(IMAGES), ref.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(net.classifier(torch.from_numpy(X)).detach().numpy(), ref.numpy(), rtol=1e-4,
                               atol=1e-4)
    both = get_backbone(f"onnx:{path}?layer=pool+output", cache=False)
    np.testing.assert_allclose(both.embed(IMAGES), np.concatenate([X, ref.numpy()], axis=1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("kind", "dim", "layer"), [("vit", 32, "cls"), ("resnet", 16, "pooler"),
                                                    ("clip", 12, "embeds")])
def test_hf_tiny_models_load_with_their_own_preprocessing(tmp_path: Path, kind: str, dim: int, layer: str) -> None:
    folder = save_tiny_hf(tmp_path, kind)
    bb = get_backbone(f"hf:{folder}", cache=False)
    X = bb.embed(IMAGES)
    assert X.shape == (3, dim) and np.isfinite(X).all()
    assert bb.describe()["layer"].endswith(layer)
    if kind == "vit":
        assert bb.preprocess.mean == (0.5, 0.5, 0.5) and bb.preprocess.size == (32, 32)
        mean_layer = get_backbone(f"hf:{folder}?layer=clsmean&engine=torch", cache=False)
        assert mean_layer.embed(IMAGES[:1]).shape == (1, 64)
    if kind == "clip":
        assert bb.preprocess.resize == "crop" and bb.preprocess.resample == "bicubic"
    if kind == "resnet":
        assert bb.preprocess.size == (40, 40)


def test_hf_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothing is downloaded"):
        get_backbone(f"hf:{tmp_path / 'absent'}", cache=False)


def test_spec_errors_name_the_spec() -> None:
    with pytest.raises(ConfigError, match="unknown kind 'nope'"):
        get_backbone("nope:x")
    with pytest.raises(ConfigError, match="expected KIND:TARGET"):
        parse_spec("smallcnn")
    with pytest.raises(ConfigError, match="unknown option"):
        get_backbone("builtin:smallcnn?colour=red", cache=False)
    with pytest.raises(ConfigError, match="unknown view"):
        get_backbone("builtin:smallcnn?views=full,sideways", cache=False)
    with pytest.raises(ConfigError, match="not found"):
        get_backbone("onnx:/nonexistent/model.onnx")


def test_placeholders_resolve_from_paths(tmp_path: Path) -> None:
    import torch

    (tmp_path / "w").mkdir()
    torch.jit.script(tiny_convnet()).save(str(tmp_path / "w" / "net.pt"))
    bb = get_backbone("torchscript:${models}/net.pt?size=32", root=tmp_path, paths={"models": "w"}, cache=False)
    assert bb.embed(IMAGES[:1]).shape == (1, 16)
    with pytest.raises(ConfigError, match="unknown placeholder"):
        get_backbone("torchscript:${nowhere}/net.pt", cache=False)


def test_register_backbone_adds_a_kind() -> None:
    class Constant:
        def __init__(self, spec: str) -> None:
            self.spec = spec
            self.dim = 2

    register_backbone("const", lambda spec, target: Constant(spec.text))
    bb = get_backbone("const:anything")
    assert isinstance(bb, Constant) and bb.spec == "const:anything"


def test_layers_lists_feature_maps_with_shapes_and_names_that_work(tmp_path: Path) -> None:
    """`iconoscope layers` shows the names layer= takes: each listed name embeds with its channel count."""
    import torch
    from click.testing import CliRunner

    from iconoscope.cli import cli
    from iconoscope.learn.backbones.layers import list_layers

    net = tiny_convnet(num_classes=5, width=4)
    ts, ox = tmp_path / "net.pt", tmp_path / "net.onnx"
    torch.jit.script(net).save(str(ts))
    torch.onnx.export(net, (torch.randn(1, 3, 32, 32),), str(ox), input_names=["data"], dynamo=False,
                      opset_version=13)
    only_blocks = list_layers(f"torchscript:{ts}")  # no residual add or concat: the pre-logits alone
    assert [(i.op, i.shape, i.prelogit) for i in only_blocks] == [("pre-logits", (8, 56, 56), True)]
    every = list_layers(f"torchscript:{ts}", everything=True)
    relus = [i for i in every if i.op == "aten::relu"]
    assert [i.shape for i in relus] == [(4, 112, 112), (8, 56, 56)] and relus[-1].prelogit
    X = get_backbone(f"torchscript:{ts}?size=32&layer={relus[0].name}+pool", cache=False).embed(IMAGES)
    assert X.shape == (3, 4 + 8)
    onnx_every = list_layers(f"onnx:{ox}", everything=True)  # probed at the model's own fixed 32 x 32
    assert {i.op for i in onnx_every} >= {"Conv", "Relu"} and any(i.shape == (4, 16, 16) for i in onnx_every)
    assert sum(i.prelogit for i in onnx_every) == 1
    first = next(i for i in onnx_every if i.op == "Relu")
    assert get_backbone(f"onnx:{ox}?layer={first.name}", cache=False).embed(IMAGES).shape == (3, first.shape[0])
    res = CliRunner().invoke(cli, ["-w", str(tmp_path / "none"), "layers", f"onnx:{ox}", "--all", "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert "layer,op,shape,note" in res.output and first.name in res.output
    bad = CliRunner().invoke(cli, ["-w", str(tmp_path / "none"), "layers", "builtin:smallcnn"])
    assert bad.exit_code != 0 and "torchscript: and onnx:" in bad.output + str(bad.exception)


@pytest.mark.parametrize("preset", ["imagenet", "caffe", "clip"])
def test_preparer_normalises_like_the_textbook_formula(preset: str) -> None:
    """The fused multiply-add into a channel-first array equals ((pixel * scale) - mean) / std, channel-first, per
    view, in the preset's channel order."""
    from PIL import Image

    from iconoscope.learn.backbones.base import PRESETS, VIEWS, Preparer

    pre = Preprocess(size=(40, 56), **PRESETS[preset])
    img = draw("circle", 48, seed=3).resize((48, 72))
    got = Preparer(pre, ("full", "top", "bottom"))(img)
    assert got.shape == (3, 3, 40, 56) and got.dtype == np.float32 and got.flags.c_contiguous
    for i, v in enumerate(("full", "top", "bottom")):
        a = np.asarray(VIEWS[v](img).resize((56, 40), Image.Resampling.BILINEAR), np.float64)
        if pre.channels == "BGR":
            a = a[:, :, ::-1]
        want = ((a * pre.scale - np.asarray(pre.mean)) / np.asarray(pre.std)).transpose(2, 0, 1)
        np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-4)
