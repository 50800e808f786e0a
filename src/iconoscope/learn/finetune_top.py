"""Fine-tuning an ImageNet TorchScript network: end to end on the images, or every layer after ``layer=`` on stored
feature maps.

The seeds fine-tuned Inception v3 / ResNet50 end to end on a GPU. On a 2-core CPU the shipped MobileNetV2, rebuilt in
float (:class:`~iconoscope.learn.backbones.dequantize.DequantizedNet`), trains at 8-9 images/s end to end at 224 px
(``bench/finetune_speed.py``), so 5-fold CV of 6,000 images would take most of a day. Its last blocks, fed with the
7 x 7 maps the int8 network computes once, train 20-30 times faster. So a ``finetune`` project on
``torchscript:PATH?layer=VALUE&pool=none`` works in two steps: ``embed`` stores the whole map at ``VALUE`` for
every view (the frozen part: int8, batched, resumable like any vectors), then training replays the graph from
``VALUE`` to the last global pooling in float, with its ImageNet weights as the starting point, and puts dropout + a
new linear layer on top. Each step draws one random view per image (the views are the augmentation); scores are the
mean of the views' logits.

A float TorchScript graph (a torchvision model saved with ``torch.jit.script`` or ``trace``) needs no rebuild: it is
cut at both ends (:class:`FloatTop`) and trained as it is; after training the whole file is saved again with the
fine-tuned weights. An int8 graph is replayed in float from ``layer`` on
(:class:`~iconoscope.learn.backbones.dequantize.DequantizedNet`).

Without ``layer=`` (or with ``layer=pool``) and without ``pool=none``, the *whole* network is trained end to end on
the images, as the seeds did on a GPU (``device = "cuda"``): the graph up to its last global pooling, an int8 one
rebuilt in float from the image on, with dropout and a new linear layer, on images decoded once at the network's
input size, with flips and shifts as augmentation (the ``_PixelNet`` loop of the SmallCNN). Only whole images
(``views=full``) are trained this way.

After training, the int8 prefix (none when the whole network was trained) and the fine-tuned float top are saved
together as one TorchScript file that ends in a global pooling, so ``torchscript:models/NAME/finetuned-vN.pt?views=...``
is an ordinary backbone for ``predict``, the enrichment and the web app; the new linear layer becomes a head on its
concatenated views (its weights repeated per view and divided by their number: exactly the mean of the views'
logits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iconoscope.errors import ConfigError
from iconoscope.learn.backbones.spec import Spec, format_spec, parse_spec
from iconoscope.learn.finetune import FeatureLinear, _Net

#: options of the stored-map spec that describe the cut, not the images: dropped from the trained backbone's spec
CUT_OPTIONS = ("layer", "pool", "batch")


@dataclass
class TopSetup:
    """Where the trainable top starts and what it reads: checked before any image is embedded."""

    spec: Spec
    path: Path
    layer: str  # "" = the whole network, trained end to end on the images
    pool_input: str
    views: tuple[str, ...]
    quantized: bool

    @property
    def end_to_end(self) -> bool:
        return not self.layer

    @property
    def preprocess(self) -> Any:
        """The backbone's preprocessing, from the spec alone (no need to load the network for it)."""
        from iconoscope.learn.backbones.torchscript import DEFAULT_PREPROCESS

        return self.spec.preprocess(DEFAULT_PREPROCESS)

    @classmethod
    def from_spec(cls, ws: Any, spec_text: str, name: str) -> TopSetup:
        from iconoscope.learn.backbones import workspace_target
        from iconoscope.learn.backbones.torchscript import _pool_input, is_quantized, load_inlined

        spec = parse_spec(spec_text)
        where = f"classifier '{name}'"
        layer = spec.get("layer") or ""
        if spec.get("pool") == "none":
            if not layer or "+" in layer or layer in ("pool", "logits"):
                raise ConfigError(f"{where}: head = 'finetune' on stored maps trains the layers after one graph "
                                  f"value: write ?layer=VALUE&pool=none (e.g. layer=input47.1, see `iconoscope "
                                  f"layers`), not {spec_text!r}")
        elif layer in ("", "pool"):
            layer = ""  # the whole network, end to end on the images
            if spec.views() != ("full",):
                raise ConfigError(f"{where}: head = 'finetune' trains the whole torchscript: network end to end on "
                                  f"whole images; drop views= from {spec_text!r} (several views are trained from "
                                  "stored maps: ?layer=VALUE&pool=none&views=...)")
        else:
            raise ConfigError(f"{where}: head = 'finetune' on a torchscript: backbone trains the whole network end "
                              f"to end (no layer=, or layer=pool) or the layers after one graph value on its stored "
                              f"maps (?layer=VALUE&pool=none, see `iconoscope layers`), not {spec_text!r}")
        path = Path(workspace_target(spec, ws))
        module = load_inlined(str(path), spec_text)
        setup = cls(spec, path, layer, _pool_input(module.forward.graph, where).debugName(), spec.views(),
                    is_quantized(module))
        setup.build_top(where, module)  # a bad layer= fails here, before anything is embedded
        return setup

    def build_top(self, where: str, module: Any = None) -> Any:
        """The trainable part, from ``layer`` to the final feature map, with the weights of the file (``module``: the
        file already loaded, which this consumes): an int8 graph replayed in float, or a float graph cut at both
        ends."""
        from iconoscope.learn.backbones.dequantize import DequantizedNet
        from iconoscope.learn.backbones.torchscript import load_inlined

        module = load_inlined(str(self.path), self.spec.text) if module is None else module
        if self.quantized:
            return DequantizedNet(module, outputs=(self.pool_input,), start=self.layer or None, where=where)
        return FloatTop(module, self.layer or None, self.pool_input, where)


class FloatTop(torch.nn.Module):
    """A float TorchScript graph from the value ``start`` (``None``: the image) to ``end``: every use of ``start``
    reads the graph's input instead, so ``forward`` takes the stored map, and dead-code elimination drops the frozen
    part. A residual connection that crosses the cut would keep part of the frozen graph alive, reading the map as if
    it were the image: such a cut is refused (:func:`~iconoscope.learn.backbones.torchscript.clean_cuts`)."""

    def __init__(self, module: Any, start: str | None, end: str, where: str):
        from iconoscope.learn.backbones.torchscript import _values, check_clean_cut

        super().__init__()
        graph = module.forward.graph
        values = _values(graph)
        for v in (start, end):
            if v is not None and v not in values:
                raise ConfigError(f"{where}: layer={v!r} is not a value of the graph (see `iconoscope layers`)")
        if start is not None:
            check_clean_cut(graph, start, where)
            values[start].replaceAllUsesWith(list(graph.inputs())[1])
        graph.return_node().replaceInput(0, values[end])
        torch._C._jit_pass_dce(graph)
        self.module = module

    def forward(self, x: Any) -> Any:
        return self.module(x)


class TopNet(_Net):
    """Fine-tuned top + global average pooling + dropout + a new linear layer, trained on stored maps
    ``[N, V * C * H * W]`` (V views)."""

    def __init__(self, setup: TopSetup, map_shape: tuple[int, ...], n_classes: int, p: dict[str, Any], seed: int,
                 where: str):
        torch.manual_seed(seed)
        top = setup.build_top(where)
        with torch.no_grad():
            width = top(torch.zeros((1, *map_shape))).shape[1]
        model = torch.nn.Sequential(top, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                    torch.nn.Dropout(float(p["dropout"])), torch.nn.Linear(width, n_classes))
        super().__init__(model, n_classes, p, seed)
        self.shape = (len(setup.views), *map_shape)

    def _maps(self, data: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(data, np.float32)).view(len(data), *self.shape)

    def train_logits(self, data: np.ndarray, g: Any) -> Any:
        x = self._maps(data)
        view = self.torch.randint(0, x.shape[1], (len(x),), generator=g)  # chosen on the CPU, then moved
        return self.model(self.to_model(x[self.torch.arange(len(x)), view]))

    def eval_logits(self, data: np.ndarray) -> Any:
        x = self.to_model(self._maps(data))
        return self.torch.stack([self.model(x[:, v]) for v in range(x.shape[1])]).mean(0)


def top_network(ws: Any, name: str, spec: str, labels: Any, p: dict[str, Any], seed: int,
                show_progress: bool = True) -> tuple[Any, np.ndarray, list[Any], Callable[[], _Net], TopSetup]:
    """Everything a ``finetune`` project on a ``torchscript:`` network trains from: (the labelled rows kept, their
    stored maps, or their decoded images when the whole network is trained, the rows left out and why, a factory of
    fresh networks with the file's weights, the setup). The spec is checked before anything is embedded or decoded;
    missing maps are embedded (resumable)."""
    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.datasets import embeddings_for

    setup = TopSetup.from_spec(ws, spec, name)
    n = len(labels.categories)
    if setup.end_to_end:
        from iconoscope.learn.finetune import decode_images

        pre = setup.preprocess
        labels, data, left_out = decode_images(labels, pre, show_progress=show_progress)

        def make_pixels() -> _Net:
            return pixel_network(setup, pre, n, p, seed, f"classifier '{name}'")

        return labels, data, left_out, make_pixels, setup
    labels, data, left_out = embeddings_for(ws, labels, spec, show_progress=show_progress)
    map_shape = get_backbone(spec, ws=ws).map_shape

    def make() -> TopNet:
        return TopNet(setup, map_shape, n, p, seed, f"classifier '{name}'")

    return labels, data, left_out, make, setup


def pixel_network(setup: TopSetup, pre: Any, n_classes: int, p: dict[str, Any], seed: int, where: str) -> _Net:
    """The whole network (the file's weights, in float) + global average pooling + dropout + a new linear layer,
    trained end to end on uint8 images (flips and shifts, normalised by the backbone's own preprocessing)."""
    from iconoscope.learn.finetune import _PixelNet

    torch.manual_seed(seed)
    top = setup.build_top(where)
    with torch.no_grad():
        width = top(torch.zeros((1, 3, *pre.size))).shape[1]
    model = torch.nn.Sequential(top, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Dropout(float(p["dropout"])), torch.nn.Linear(width, n_classes))
    return _PixelNet(pre, model, n_classes, p, seed)


def save_trained(ws: Any, setup: TopSetup, net: _Net, name: str, version: int) -> tuple[str, FeatureLinear]:
    """Save int8 prefix (if any) + fine-tuned float network as one TorchScript file; returns (its backbone spec, the
    head on it)."""
    from iconoscope.learn.backbones.torchscript import cut_graph, load_inlined
    from iconoscope.workspace import slug

    rel = f"models/{slug(name)}/finetuned-v{version}.pt"
    linear = net.model[-1]
    if not setup.quantized:  # the file's own graph, whole, with the fine-tuned weights
        whole = load_inlined(str(setup.path), setup.spec.text)
        whole.load_state_dict(net.model[0].module.state_dict())
        whole.save(str(ws.root / rel))
        return _trained_spec(setup, rel), FeatureLinear.from_linear(linear, len(setup.views))
    prefix = None
    if not setup.end_to_end:
        prefix = load_inlined(str(setup.path), setup.spec.text)
        cut_graph(prefix, setup.layer, f"backbone {setup.spec.text!r}")
    top = net.model[0].eval()

    class Trained(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.prefix, self.top = prefix, top

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = x
            if self.prefix is not None:  # decided once, at tracing
                f = self.prefix(x)
                f = f.dequantize() if f.is_quantized else f
            return torch.nn.functional.adaptive_avg_pool2d(self.top(f), 1)

    size = setup.preprocess.size
    with torch.no_grad():
        traced = torch.jit.trace(Trained().eval(), torch.zeros((2, 3, *size)), check_trace=False)
    traced.save(str(ws.root / rel))
    return _trained_spec(setup, rel), FeatureLinear.from_linear(linear, len(setup.views))


def _trained_spec(setup: TopSetup, rel: str) -> str:
    return format_spec("torchscript", rel, {k: v for k, v in setup.spec.options.items() if k not in CUT_OPTIONS})
