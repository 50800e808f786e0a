"""``torchscript:PATH``: a TorchScript archive, cut at the layer we want.

Many shipped models are TorchScript with the feature extractor inlined into ``forward`` (torchvision's quantized
MobileNetV2 exposes only its ``classifier`` submodule), so ``named_modules`` hooks cannot reach the pre-logit
activations. We edit the graph instead: ``layer=pool`` (the default when the graph has a global pooling) makes
``forward`` return the input of its last ``adaptive_avg_pool2d`` (the final feature map), which we pool ourselves
(``pool=avg|max|avgmax``, or ``none`` to store the whole map: what a fine-tuned top trains on, see
:mod:`iconoscope.learn.finetune_top`); the dropped classifier is removed by dead-code elimination. A welcome side
effect: the quantized MobileNetV2, traced at batch size 1 because its ``reshape([1, -1])`` precedes the quantized
linear layer, runs batched once that tail is gone. ``layer=logits`` keeps the model's own output; ``layer=VALUE``
returns any named graph value (its debug name, e.g. ``input44``), pooled when it is a feature map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError
from iconoscope.learn.backbones.base import Backbone, Preprocess, global_pool
from iconoscope.learn.backbones.spec import Spec

_POOL_KINDS = ("aten::adaptive_avg_pool2d", "aten::adaptive_max_pool2d")
#: the input ImageNet CNNs expect unless the spec says otherwise (size=, preset=, ...)
DEFAULT_PREPROCESS = Preprocess(size=(224, 224), resize="squash")


def _values(graph: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node in graph.nodes():
        for v in node.outputs():
            out[v.debugName()] = v
    return out


def _pool_input(graph: Any, where: str) -> Any:
    pools = [n for n in graph.nodes() if n.kind() in _POOL_KINDS]
    if not pools:
        raise ConfigError(f"{where}: layer=pool: the graph has no global pooling node; use layer=logits or "
                          "layer=VALUE (a graph value name)")
    return pools[-1].inputsAt(0)


def _reads(node: Any) -> list[Any]:
    """The values a node reads, including those its sub-blocks (prim::If, prim::Loop) read from outside."""
    found = list(node.inputs())
    for block in node.blocks():
        for inner in block.nodes():
            found.extend(_reads(inner))
        found.extend(block.returnNode().inputs())
    return found


def clean_cuts(graph: Any) -> set[str]:
    """The values at which the graph splits in two: nothing computed from the image before such a value is read
    after it, so the layers after it can be trained on stored copies of it (a fine-tune start, see
    :mod:`iconoscope.learn.finetune_top`). Inside a residual block the skip connection crosses every cut."""
    image = list(graph.inputs())[1]
    nodes = list(graph.nodes())
    at: dict[str, int] = {image.debugName(): -1}
    dep = {image.debugName()}
    for i, node in enumerate(nodes):
        if any(v.debugName() in dep for v in _reads(node)):
            for o in node.outputs():
                dep.add(o.debugName())
                at[o.debugName()] = i
    # after[i]: the earliest producer of an image-derived value that node i or any later node reads
    after = [len(nodes)] * (len(nodes) + 1)
    for i in range(len(nodes) - 1, -1, -1):
        after[i] = min([after[i + 1], *(at[v.debugName()] for v in _reads(nodes[i]) if v.debugName() in dep)])
    # a cut after node i is clean when the nodes after it read nothing made before it
    return {name for name, i in at.items() if i >= 0 and after[i + 1] >= i}


def check_clean_cut(graph: Any, value: str, where: str) -> None:
    """A configuration error unless ``value`` is one of :func:`clean_cuts`."""
    if value not in clean_cuts(graph):
        raise ConfigError(f"{where}: layer={value!r} cuts through a block: a later layer also reads a value computed "
                          "before it (a residual connection); pick a value between blocks (`iconoscope layers --all` "
                          "marks them 'fine-tune start')")


def cut_graph(module: Any, layer: str, where: str) -> str:
    """Make ``module.forward`` return the graph value(s) ``layer``; returns a description of the features.

    ``layer`` is ``pool`` (the last global pooling's input), a value's debug name, or several joined by ``+``
    (returned as a tuple: pooled and concatenated by the backbone, shallow to deep, like hypercolumns).
    """
    import torch

    graph = module.forward.graph
    values = _values(graph)
    picked, what = [], []
    for part in layer.split("+"):
        if part == "pool":
            v = _pool_input(graph, where)
            picked.append(v)
            what.append(f"the feature map before the last global pooling ({v.debugName()})")
        elif part in values:
            picked.append(values[part])
            what.append(f"graph value {part}")
        else:
            names = [v for v in values if not v.startswith("_")][-20:]
            raise ConfigError(f"{where}: layer={part!r} is not a value of the graph; the last ones are: "
                              f"{', '.join(names)}")
    ret = graph.return_node()
    if len(picked) == 1:
        ret.replaceInput(0, picked[0])
    else:
        tup = graph.create("prim::TupleConstruct", picked)
        tup.output().setType(torch._C.TupleType([v.type() for v in picked]))
        tup.insertBefore(ret)
        ret.replaceInput(0, tup.output())
    torch._C._jit_pass_dce(graph)
    return " + ".join(what)


def is_quantized(module: Any) -> bool:
    """Whether the (inlined) graph runs int8 kernels: it then has no backward pass (see ``dequantize``)."""
    return "quantized::" in str(module.forward.graph)


def load_inlined(path: str, spec_text: str) -> Any:
    """The TorchScript archive at ``path`` in eval mode, its submodule calls inlined so that every op of
    ``forward`` is visible (scripted modules call submodules through prim::CallMethod); a missing or unreadable
    file is a configuration error naming the spec."""
    import torch

    if not Path(path).is_file():
        raise ConfigError(f"backbone {spec_text!r}: TorchScript file {path} not found")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # a bad archive reports as configuration: the spec points at the wrong file
        raise ConfigError(f"backbone {spec_text!r}: cannot load {path} as TorchScript: {e}") from None
    module.eval()
    torch._C._jit_pass_inline(module.forward.graph)
    return module


class TorchScriptBackbone(Backbone):
    def __init__(self, spec: Spec, path: str):

        from iconoscope.learn.backbones.runtime import torch_threads

        spec.check_options({"layer", "pool", "batch"})
        torch_threads(spec.int("threads", 0) or None)
        module = load_inlined(path, spec.text)
        graph_text = str(module.forward.graph)
        self.quantized = is_quantized(module)
        has_pool = any(k in graph_text for k in _POOL_KINDS)
        layer = spec.get("layer") or ("pool" if has_pool else "logits")
        what = "the model's output (logits)"
        if layer != "logits":
            what = cut_graph(module, layer, f"backbone {spec.text!r}")
        self.module = module
        self.pool = spec.get("pool", "avg") or "avg"
        self.layer_names = tuple(layer.split("+"))
        self.map_shape: tuple[int, ...] = ()  # one output's shape per image, as last computed (pool=none: [C,H,W])
        pre = spec.preprocess(DEFAULT_PREPROCESS)
        self.max_batch_probe = spec.int("batch", 0)
        super().__init__(spec=spec.text, preprocess=pre, views=spec.views(), kind="torchscript",
                         layer=what + ("" if layer == "logits" else ", whole map (pool=none)" if self.pool == "none"
                                       else f", {self.pool}-pooled"))
        self.probe_dim()
        if self.max_batch_probe:
            self.max_batch = self.max_batch_probe
        self.notes = ("int8 quantized graph; " if self.quantized else "") + (
            "fixed batch size 1" if self.max_batch == 1 else "batched")

    def forward(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.module(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        outs = out if isinstance(out, (tuple, list)) else [out]
        parts = []
        for o in outs:
            a = (o.dequantize() if o.is_quantized else o).float().numpy()
            self.map_shape = tuple(a.shape[1:])
            parts.append(global_pool(a.reshape(a.shape[0], -1) if a.ndim == 4 and a.shape[2:] == (1, 1) else a,
                                     self.pool))
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def from_spec(spec: Spec, target: str) -> TorchScriptBackbone:
    return TorchScriptBackbone(spec, target)
