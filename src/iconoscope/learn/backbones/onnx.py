"""``onnx:PATH``: an ONNX model run by ONNX Runtime, with an extra graph output at the layer we want.

``layer=pool`` (the default) finds the pre-logit tensor: the input of the last Gemm/MatMul/Conv (the classifier),
walking back through Dropout/Flatten/Reshape/pooling, and adds it as a graph output; a feature map is then pooled
(``pool=avg|max|avgmax``). For the ONNX-zoo SqueezeNet 1.1 that is ``fire9/concat_1`` (512 x 13 x 13), well before
``conv10`` squashes everything into ImageNet classes. ``layer=output`` keeps the model's own output; ``layer=NAME``
any named tensor; several joined by ``+`` are pooled and concatenated (e.g. ``fire7/concat_1+pool``).

The model's own preprocessing comes from its metadata (``iconoscope.preprocess``, which our exporter writes) or a
``PATH.preprocess.json`` beside it, else ImageNet defaults; ``preset=caffe`` (BGR, 0-255) fits Caffe-born models.
Fixed batch dimensions (common in zoo models) are made symbolic so that batches run; when the graph really cannot
batch, images go one at a time. float16 models are fed float16.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError
from iconoscope.learn.backbones.base import Backbone, Preprocess, global_pool
from iconoscope.learn.backbones.runtime import ort_session
from iconoscope.learn.backbones.spec import Spec

_PASS_THROUGH = {"Dropout", "Flatten", "Reshape", "GlobalAveragePool", "AveragePool", "Squeeze", "Identity"}
_CLASSIFIERS = {"Gemm", "MatMul", "Conv"}
PREPROCESS_KEY = "iconoscope.preprocess"


def find_prelogit(graph: Any) -> str:
    """The tensor feeding the model's classifier (the last Gemm/MatMul/Conv), before pooling and dropout."""
    producers = {o: n for n in graph.node for o in n.output}
    cls = [n for n in graph.node if n.op_type in _CLASSIFIERS]
    if not cls:
        raise ConfigError("no Gemm/MatMul/Conv node: cannot find the pre-logit layer; use layer=NAME")
    name = cls[-1].input[0]
    while name in producers and producers[name].op_type in _PASS_THROUGH and producers[name].input:
        name = producers[name].input[0]
    return name


def prepare_model(model: Any, layer: str) -> tuple[Any, list[str], str]:
    """Add the ``layer`` tensor(s) as the first graph outputs and free the batch dimension.

    ``layer``: ``output``, ``pool`` (the pre-logit tensor), a tensor name, or several joined by ``+``.
    Returns (model, output tensor names, description).
    """
    from onnx import helper

    g = model.graph
    inits = {i.name for i in g.initializer}
    data_inputs = [i for i in g.input if i.name not in inits]
    known = {o for n in g.node for o in n.output}
    tensors, what = [], []
    for part in layer.split("+"):
        if part == "output":
            tensors.append(g.output[0].name)
            what.append(f"the model's output {g.output[0].name}")
        elif part == "pool":
            t = find_prelogit(g)
            tensors.append(t)
            what.append(f"tensor {t} (input of the classifier)")
        elif part in known:
            tensors.append(part)
            what.append(f"tensor {part}")
        else:
            raise ConfigError(f"layer={part!r}: no tensor of that name in the graph")
    elem = data_inputs[0].type.tensor_type.elem_type
    outputs = [o for o in g.output if o.name not in tensors]
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info(t, elem, None) for t in tensors])
    g.output.extend(outputs)
    del g.value_info[:]  # fixed intermediate shapes would contradict a free batch axis
    for v in [*data_inputs, *g.output]:
        dims = v.type.tensor_type.shape.dim
        if len(dims):
            dims[0].dim_param = "batch"
    for v in g.output:
        for d in list(v.type.tensor_type.shape.dim)[1:]:
            d.Clear()
    return model, tensors, " + ".join(what)


def load_model(path: str, spec_text: str) -> Any:
    """The ONNX model at ``path``; a missing or unreadable file is a configuration error naming the spec."""
    import onnx

    if not Path(path).is_file():
        raise ConfigError(f"backbone {spec_text!r}: ONNX file {path} not found")
    try:
        return onnx.load(str(path))
    except Exception as e:
        raise ConfigError(f"backbone {spec_text!r}: cannot read {path} as ONNX: {e}") from None


class OnnxBackbone(Backbone):
    def __init__(self, spec: Spec, path: str):
        import onnx

        spec.check_options({"layer", "pool", "threads"})
        p = Path(path)
        model = load_model(path, spec.text)
        base = Preprocess(size=(224, 224), resize="squash")
        meta = {m.key: m.value for m in model.metadata_props}
        sidecar = p.with_name(p.name + ".preprocess.json")
        if PREPROCESS_KEY in meta:
            base = Preprocess.from_dict(json.loads(meta[PREPROCESS_KEY]))
        elif sidecar.is_file():
            base = Preprocess.from_dict(json.loads(sidecar.read_text(encoding="utf-8")))
        layer = spec.get("layer", "pool") or "pool"
        try:
            model, self.tensors, what = prepare_model(model, layer)
        except ConfigError as e:
            raise ConfigError(f"backbone {spec.text!r}: {e}") from None
        data_input = next(i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer})
        self.input_name = data_input.name
        self.input_dtype = np.float16 if data_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 \
            else np.float32
        dims = data_input.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[2].dim_value and dims[3].dim_value and "size" not in spec.options:
            base = base.with_options(size=(dims[2].dim_value, dims[3].dim_value))
        self.session = ort_session(model.SerializeToString(), spec.int("threads", 0) or None)
        self.pool = spec.get("pool", "avg") or "avg"
        pre = spec.preprocess(base)
        super().__init__(spec=spec.text, preprocess=pre, views=spec.views(), kind="onnx",
                         layer=what + (f", {self.pool}-pooled" if layer != "output" else ""))
        self.probe_dim()
        self.notes = (f"{'float16' if self.input_dtype == np.float16 else 'float32'} ONNX Runtime; "
                      + ("fixed batch size 1" if self.max_batch == 1 else "batched"))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        outs = self.session.run(self.tensors, {self.input_name: batch.astype(self.input_dtype, copy=False)})
        parts = []
        for out in outs:
            a = np.asarray(out, dtype=np.float32)
            if a.ndim == 4 and a.shape[2:] == (1, 1):
                a = a.reshape(a.shape[0], -1)
            parts.append(global_pool(a, self.pool))
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def from_spec(spec: Spec, target: str) -> OnnxBackbone:
    return OnnxBackbone(spec, target)
