"""Which intermediate layers a ``torchscript:`` or ``onnx:`` backbone offers as features (``iconoscope layers``).

``layer=NAME+NAME+pool`` pools several feature maps side by side (hypercolumn-like features); on the pomological
watercolours, mid-level stages beside the pre-logits raised the 5-fold CV mAP of the genera from 0.963 to 0.969
(README, rows h-j). The names are graph-internal (a TorchScript value such as ``input29.1``, an ONNX tensor such as
``fire5/concat_1``), so a user needs a way to see them with their shapes: this module lists the block outputs
(residual additions and concatenations) or, with ``everything``, every convolution/activation output, and runs one
blank image through the network to report each one's channels and spatial size. TorchScript values that no skip
connection crosses are marked "fine-tune start": the ``finetune`` head can train the layers after them on stored
maps (``layer=VALUE&pool=none``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError
from iconoscope.learn.backbones.spec import parse_spec

#: node kinds whose outputs end a block (always listed) / any other feature map (listed with ``everything``)
_TS_BLOCKS = ("quantized::add", "quantized::add_relu", "quantized::cat", "aten::add", "aten::add_", "aten::cat")
_TS_MORE = ("quantized::conv2d", "quantized::conv2d_relu", "aten::_convolution", "aten::conv2d", "aten::relu",
            "aten::relu_", "aten::hardtanh", "aten::hardtanh_", "aten::max_pool2d", "quantized::max_pool2d")
_ONNX_BLOCKS = ("Add", "Concat", "Sum")
_ONNX_MORE = ("Conv", "Relu", "Clip", "MaxPool", "AveragePool", "HardSwish", "Sigmoid", "Mul")


@dataclass(frozen=True)
class LayerInfo:
    """One candidate feature map: its name for ``layer=``, the op that makes it and its shape for one image."""

    name: str
    op: str
    shape: tuple[int, ...]
    prelogit: bool = False  # what ``layer=pool`` picks
    clean_cut: bool = False  # a torchscript value the finetune head can start from (no skip connection crosses it)

    def row(self) -> dict[str, str]:
        notes = ["layer=pool (pre-logits, the default)"] if self.prelogit else []
        if self.clean_cut:
            notes.append("fine-tune start")
        return {"layer": self.name, "op": self.op, "shape": " x ".join(map(str, self.shape)), "note": "; ".join(notes)}


def list_layers(spec: str, *, ws: Any = None, everything: bool = False) -> list[LayerInfo]:
    """The candidate feature layers of ``spec`` (a ``torchscript:`` or ``onnx:`` spec), shallow to deep.

    ``ws``: a workspace whose folder and ``[paths]`` resolve ``${data}`` and relative targets (as for training).
    """
    from iconoscope.learn.backbones import workspace_target

    parsed = parse_spec(spec)
    target = workspace_target(parsed, ws)
    if parsed.kind == "torchscript":
        return _torchscript_layers(spec, target, everything)
    if parsed.kind == "onnx":
        return _onnx_layers(spec, target, everything)
    raise ConfigError(f"backbone {spec!r}: layers are listed for torchscript: and onnx: specs; builtin: and hf: "
                      "backbones name their feature layers in the README's backbone table")


def _with_prelogit(found: list[tuple[str, str]], pre: str | None, spec: str) -> list[tuple[str, str]]:
    """The (name, op) candidates plus the pre-logit map when it is not among them; none at all is an error."""
    if pre is not None and pre not in {name for name, _ in found}:
        found = [*found, (pre, "pre-logits")]
    if not found:
        raise ConfigError(f"backbone {spec!r}: no block output found; try everything=True (--all)")
    return found


def _torchscript_layers(spec: str, path: str, everything: bool) -> list[LayerInfo]:
    import torch

    from iconoscope.learn.backbones.torchscript import _pool_input, clean_cuts, cut_graph, load_inlined

    kinds = _TS_BLOCKS + (_TS_MORE if everything else ())
    module = load_inlined(path, spec)
    graph = module.forward.graph
    clean = clean_cuts(graph)
    try:
        pre = _pool_input(graph, spec).debugName()
    except ConfigError:
        pre = None
    found = _with_prelogit([(o.debugName(), n.kind()) for n in graph.nodes() if n.kind() in kinds
                            for o in n.outputs()], pre, spec)
    cut_graph(module, "+".join(name for name, _ in found), spec)
    with torch.inference_mode():
        outs = module(torch.zeros(1, 3, 224, 224))
    outs = outs if isinstance(outs, (tuple, list)) else [outs]
    out: list[LayerInfo] = []
    for (name, op), t in zip(found, outs, strict=True):
        if t.dim() == 4:  # feature maps only: poolable per channel
            out.append(LayerInfo(name, op, tuple(int(s) for s in t.shape[1:]), name == pre, name in clean))
    return out


def _onnx_layers(spec: str, path: str, everything: bool) -> list[LayerInfo]:
    from onnx import helper

    from iconoscope.learn.backbones.onnx import find_prelogit, load_model, prepare_model
    from iconoscope.learn.backbones.runtime import ort_session

    model = load_model(path, spec)
    kinds = _ONNX_BLOCKS + (_ONNX_MORE if everything else ())
    try:
        pre = find_prelogit(model.graph)
    except ConfigError:
        pre = None
    found = _with_prelogit([(o, n.op_type) for n in model.graph.node if n.op_type in kinds for o in n.output],
                           pre, spec)
    model, tensors, _ = prepare_model(model, "+".join(name for name, _ in found))
    inits = {i.name for i in model.graph.initializer}
    data_input = next(i for i in model.graph.input if i.name not in inits)
    dims = [d.dim_value or 1 for d in data_input.type.tensor_type.shape.dim]  # the batch axis is free: 1
    dtype = helper.tensor_dtype_to_np_dtype(data_input.type.tensor_type.elem_type)
    session = ort_session(model.SerializeToString(), 1)
    outs = session.run(tensors, {data_input.name: np.zeros([1, *dims[1:]], dtype=dtype)})
    result: list[LayerInfo] = []
    for (name, op), a in zip(found, outs, strict=True):
        arr: Any = np.asarray(a)
        if arr.ndim == 4:
            result.append(LayerInfo(name, op, tuple(int(s) for s in arr.shape[1:]), name == pre))
    return result
