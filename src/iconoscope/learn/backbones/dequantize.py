"""A quantized TorchScript CNN rebuilt as a float, trainable ``torch.nn.Module``.

The only ImageNet MobileNetV2 we can ship is torchvision's int8 model, traced to TorchScript with its feature
extractor inlined into ``forward``. Int8 kernels have no backward pass, so the network cannot be fine-tuned as it is.
Its graph, though, is a short list of ops (``quantized::conv2d[_relu]``, ``quantized::add[_relu]``,
``quantized::linear``, pooling, flatten/reshape) whose packed parameters unpack into float weights.
:class:`DequantizedNet` walks that graph once, turns each packed convolution into an ``nn.Conv2d`` holding the
dequantized weights (batch norm is already folded in by the quantization), and replays the ops in float. The
activations then differ from the int8 ones only by the quantization error of the activations (tested), and every
weight can be trained.

Graph values keep their TorchScript debug names, so ``outputs=`` takes the same names as the ``layer=`` option of
``torchscript:`` specs (``iconoscope layers`` lists them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from iconoscope.errors import ConfigError

_CONV = ("quantized::conv2d", "quantized::conv2d_relu")
_ADD = ("quantized::add", "quantized::add_relu")
_SKIP = ("prim::Constant", "prim::GetAttr", "prim::ListConstruct")
_PASS = ("aten::quantize_per_tensor", "aten::dequantize")


@dataclass(frozen=True)
class _Op:
    kind: str  # conv | add | linear | pool | flatten | reshape | pass
    inputs: tuple[str, ...]
    output: str
    relu: bool = False
    index: int = -1  # position in the module lists (conv, linear)
    const: Any = None  # pool output size / reshape shape


def _const(value: Any) -> Any:
    node = value.node()
    if node.kind() == "prim::Constant":
        return node.output().toIValue()
    if node.kind() == "prim::ListConstruct":
        return [_const(v) for v in node.inputs()]
    raise ConfigError(f"expected a constant, got {node.kind()}")


class DequantizedNet(torch.nn.Module):
    """Float replay of an (inlined) quantized TorchScript graph; ``forward`` returns ``outputs`` (default: the
    graph's own output), as a tuple when several are asked for.

    ``start`` (a graph value) makes the network begin there: ``forward`` then takes that value (dequantized) instead
    of the image, and only the ops after it are kept. This is how a fine-tuned top is trained on feature maps that
    the int8 network computed once (the frozen part), at a fraction of the cost of a float forward over the image.
    """

    def __init__(self, module: Any, outputs: tuple[str, ...] = (), start: str | None = None, where: str = "model"):
        super().__init__()
        graph = module.forward.graph
        inputs = [v.debugName() for v in graph.inputs()]
        self.input_name = inputs[1]  # inputs[0] is self
        attrs: dict[str, Any] = {}
        ops: list[_Op] = []
        convs, linears = torch.nn.ModuleList(), torch.nn.ModuleList()
        unsupported: set[str] = set()
        for node in graph.nodes():
            kind = node.kind()
            ins = list(node.inputs())
            if kind == "prim::GetAttr":
                attrs[node.output().debugName()] = _resolve_attr(module, node)
                continue
            if kind in _SKIP:
                continue
            out = node.output().debugName()
            if kind in _CONV:
                packed = attrs[ins[1].debugName()]
                w, b = packed.unpack()
                conv = torch.nn.Conv2d(w.shape[1] * packed.groups(), w.shape[0], tuple(w.shape[2:]),
                                       stride=tuple(packed.stride()), padding=tuple(packed.padding()),
                                       dilation=tuple(packed.dilation()), groups=packed.groups(), bias=True)
                with torch.no_grad():
                    conv.weight.copy_(w.dequantize())
                    conv.bias.copy_(b if b is not None else torch.zeros(w.shape[0]))
                convs.append(conv)
                ops.append(_Op("conv", (ins[0].debugName(),), out, kind.endswith("_relu"), len(convs) - 1))
            elif kind in _ADD:
                ops.append(_Op("add", (ins[0].debugName(), ins[1].debugName()), out, kind.endswith("_relu")))
            elif kind == "quantized::linear":
                w, b = torch.ops.quantized.linear_unpack(attrs[ins[1].debugName()])
                lin = torch.nn.Linear(w.shape[1], w.shape[0])
                with torch.no_grad():
                    lin.weight.copy_(w.dequantize())
                    lin.bias.copy_(b if b is not None else torch.zeros(w.shape[0]))
                linears.append(lin)
                ops.append(_Op("linear", (ins[0].debugName(),), out, index=len(linears) - 1))
            elif kind == "aten::adaptive_avg_pool2d":
                ops.append(_Op("pool", (ins[0].debugName(),), out, const=tuple(_const(ins[1]))))
            elif kind == "aten::reshape":
                ops.append(_Op("reshape", (ins[0].debugName(),), out, const=tuple(_const(ins[1]))))
            elif kind == "aten::flatten":
                ops.append(_Op("flatten", (ins[0].debugName(),), out, const=(_const(ins[1]), _const(ins[2]))))
            elif kind in _PASS:
                ops.append(_Op("pass", (ins[0].debugName(),), out))
            else:
                unsupported.add(kind)
        if unsupported:
            raise ConfigError(f"{where}: cannot rebuild the quantized graph in float: unsupported ops "
                              f"{', '.join(sorted(unsupported))}")
        self.convs, self.linears = convs, linears
        produced = {self.input_name} | {op.output for op in ops}
        ret = graph.return_node().inputsAt(0).debugName()
        self.outputs = tuple(outputs) or (ret,)
        missing = [o for o in self.outputs if o not in produced]
        if missing:
            raise ConfigError(f"{where}: {', '.join(missing)} is not a value of the graph "
                              "(see `iconoscope layers`)")
        last = max((i for i, op in enumerate(ops) if op.output in self.outputs), default=-1)
        ops = ops[:last + 1]  # nothing after the last requested value needs computing
        if start is not None:
            at = [i for i, op in enumerate(ops) if op.output == start]
            if not at:
                raise ConfigError(f"{where}: layer={start!r} is not a value computed before "
                                  f"{', '.join(self.outputs)} (see `iconoscope layers`)")
            from iconoscope.learn.backbones.torchscript import check_clean_cut

            check_clean_cut(graph, start, where)
            ops = ops[at[0] + 1:]
            self.input_name = start
        self.ops = ops
        for kind, mods in (("conv", self.convs), ("linear", self.linears)):
            used = {op.index for op in ops if op.kind == kind}
            for i, mod in enumerate(mods):  # weights outside the replayed ops are never trained: no gradients kept
                if i not in used:
                    mod.requires_grad_(False)

    def forward(self, x: Any) -> Any:
        env = {self.input_name: x}
        for op in self.ops:
            a = env[op.inputs[0]]
            if op.kind == "conv":
                y = self.convs[op.index](a)
            elif op.kind == "add":
                y = a + env[op.inputs[1]]
            elif op.kind == "linear":
                y = self.linears[op.index](a)
            elif op.kind == "pool":
                y = torch.nn.functional.adaptive_avg_pool2d(a, op.const)
            elif op.kind == "flatten":
                y = torch.flatten(a, *op.const)
            elif op.kind == "reshape":
                shape = op.const
                y = a.reshape(a.shape[0], -1) if len(shape) == 2 else a.reshape(shape)
            else:
                y = a
            env[op.output] = torch.relu(y) if op.relu else y
        outs = tuple(env[o] for o in self.outputs)
        return outs[0] if len(outs) == 1 else outs


def _resolve_attr(module: Any, node: Any) -> Any:
    owner = node.inputsAt(0).node()
    base = module if owner.kind() == "prim::Param" else None
    if base is None:  # a chain of GetAttr (submodule attributes after inlining)
        path = []
        while owner.kind() == "prim::GetAttr":
            path.append(owner.s("name"))
            owner = owner.inputsAt(0).node()
        base = module
        for name in reversed(path):
            base = getattr(base, name)
    return getattr(base, node.s("name"))
