"""A multimodal classifier project: its config, its raw inputs and targets from the graph, and the feature pipeline.

``load_project`` validates ``[classifiers.NAME]`` once (inputs, targets, params); ``gather`` reads every input
and target of every record in scope (image vectors from the workspace's embeddings, text through the cached text
encoder, fields from the graph); ``FeaturePipeline`` turns them into the network's two matrices, fitted on
training rows only, so cross-validation never sees a test fold's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError, InputError
from iconoscope.learn.multimodal.features import (
    Block,
    DenseEncoder,
    NumericEncoder,
    VocabEncoder,
    encoder_from_state,
    input_values,
    numbers_of,
    target_values,
)
from iconoscope.learn.multimodal.model import BlockSlot, NetConfig
from iconoscope.learn.multimodal.records import RecordTable, load_records
from iconoscope.learn.multimodal.specs import InputSpec, TargetSpec, parse_specs
from iconoscope.learn.text import DEFAULT_TEXT_ENCODER

DEFAULT_SUBSETS = (0, 50, 100, 300)
_OWN_PARAMS = {"text_encoder", "separator", "min_count", "input_min_count", "max_classes", "top_k", "subsets",
               "task_weights", "languages"}


@dataclass
class Project:
    """A validated ``head = "multimodal"`` classifier."""

    name: str
    inputs: list[InputSpec]
    targets: list[TargetSpec]
    backbone: str
    sources: tuple[str, ...]
    folds: int
    text_encoder: str = DEFAULT_TEXT_ENCODER
    separators: dict[str, str] = field(default_factory=dict)
    min_count: dict[str, int] = field(default_factory=dict)
    # a value seen once in training still tells about other records with it; per input: {"set:field:depicts" = 2}
    input_min_count: dict[str, int] = field(default_factory=lambda: {"*": 1})
    max_classes: int | None = None
    top_k: int = 3
    subsets: tuple[int, ...] = DEFAULT_SUBSETS
    task_weights: dict[str, float] = field(default_factory=dict)
    languages: tuple[str, ...] = ("en",)
    net: NetConfig = field(default_factory=NetConfig)
    where: str = ""

    def image_backbone(self, spec: InputSpec) -> str:
        return spec.backbone or self.backbone

    def separator(self, key: str) -> str | None:
        return self.separators.get(key, self.separators.get("*"))

    @property
    def image_inputs(self) -> list[InputSpec]:
        return [i for i in self.inputs if i.kind == "image"]

    def only_images(self) -> Project:
        """The same project with its image inputs only (the single-input baseline of the paper's protocol)."""
        from dataclasses import replace

        if not self.image_inputs:
            raise ConfigError(f"{self.where}: --compare-single-input compares with an image-only model, but the "
                              "inputs have no 'image'")
        return replace(self, inputs=self.image_inputs)


def _per_key(value: Any, where: str, key: str, typ: type, keys: list[str]) -> dict[str, Any]:
    """A param given once for all (``min_count = 5``) or per target/field (``min_count = {creator = 50}``)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(v, typ) or isinstance(v, bool):
                raise ConfigError(f"{where}: key '{key}.{k}' = {v!r}: expected a {typ.__name__}")
            if keys and k not in keys and k != "*":
                raise ConfigError(f"{where}: key '{key}.{k}': no such target or field (known: {', '.join(keys)})")
            out[k] = v
        return out
    if not isinstance(value, typ) or isinstance(value, bool):
        raise ConfigError(f"{where}: key '{key}' = {value!r}: expected a {typ.__name__} or a table of them")
    return {"*": value}


def load_project(ws: Any, name: str) -> Project:
    """The classifier ``name`` as a multimodal project; ConfigError naming the key when something is off."""
    cc = ws.config.classifier(name)
    where = f"{ws.config_path} [classifiers.{name}]"
    if cc.head != "multimodal":
        raise ConfigError(f"{where}: head = {cc.head!r}, not 'multimodal'")
    inputs, targets = parse_specs(cc.inputs, cc.targets, where)
    params = dict(cc.params)
    net_keys = {f.name for f in fields(NetConfig)}
    unknown = sorted(set(params) - net_keys - _OWN_PARAMS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} for a multimodal head; allowed: "
                          f"{', '.join(sorted(net_keys | _OWN_PARAMS | {'inputs', 'targets', 'backbone', 'folds'}))}")
    net = NetConfig.from_params({k: v for k, v in params.items() if k in net_keys}, where)
    tnames = [t.name for t in targets]
    fnames = sorted({i.field.key for i in inputs if i.field is not None} | {t.field.key for t in targets})
    text_encoder = params.get("text_encoder", DEFAULT_TEXT_ENCODER)
    if not isinstance(text_encoder, str) or not text_encoder.startswith("text:"):
        raise ConfigError(f"{where}: key 'text_encoder' = {text_encoder!r}: expected a text: spec "
                          f"(e.g. {DEFAULT_TEXT_ENCODER})")
    seps = _per_key(params["separator"], where, "separator", str, fnames) if "separator" in params else {}
    mins = _per_key(params.get("min_count", 1), where, "min_count", int, tnames)
    weights = {k: float(v) for k, v in _per_key(params.get("task_weights", {}), where, "task_weights", float,
                                                tnames).items()} if "task_weights" in params else {}
    subsets = params.get("subsets", list(DEFAULT_SUBSETS))
    if not (isinstance(subsets, list) and all(isinstance(s, int) and s >= 0 for s in subsets)):
        raise ConfigError(f"{where}: key 'subsets' = {subsets!r}: expected a list of minimum class sizes, "
                          "e.g. [0, 50, 100, 300]")
    langs = params.get("languages", list(ws.config.languages))
    langs = (langs,) if isinstance(langs, str) else tuple(langs)
    top_k = params.get("top_k", 3)
    if not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"{where}: key 'top_k' = {top_k!r}: expected a positive integer")
    imc = _per_key(params.get("input_min_count", 1), where, "input_min_count", int, [i.text for i in inputs])
    imc.setdefault("*", 1)
    if any(v < 1 for v in imc.values()):
        raise ConfigError(f"{where}: key 'input_min_count' = {imc!r}: expected positive integers")
    maxc = params.get("max_classes")
    if maxc is not None and (not isinstance(maxc, int) or maxc < 2):
        raise ConfigError(f"{where}: key 'max_classes' = {maxc!r}: expected an integer of at least 2")
    return Project(name=name, inputs=inputs, targets=targets, backbone=cc.backbone, sources=cc.sources,
                   folds=cc.folds, text_encoder=text_encoder, separators=seps, min_count=mins,
                   input_min_count=imc, max_classes=maxc, top_k=top_k, subsets=tuple(sorted(set(subsets))),
                   task_weights=weights, languages=langs, net=net, where=where)


# ---------------------------------------------------------------- raw data
@dataclass
class RawData:
    """Every input and target of the records in scope, before any fitting."""

    table: RecordTable
    inputs: dict[str, Any]
    targets: dict[str, list[list[str]]]

    def __len__(self) -> int:
        return len(self.table)


def image_matrix(ws: Any, backbone: str, table: RecordTable, input_name: str = "image") -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """Per record, the mean embedding of its images (a record may have several); rows without one are absent."""
    try:
        from iconoscope.learn.embed import EmbeddingStore
    except ImportError as e:  # pragma: no cover - the learning stage provides it
        raise InputError(f"input {input_name!r}", "image embeddings need iconoscope.learn.embed") from e
    ids, X = EmbeddingStore(ws, backbone).load()
    if len(ids) == 0:
        raise InputError(f"input {input_name!r} (backbone {backbone})",
                         f"no image embeddings in {ws.vectors_dir(backbone)}; run "
                         f"'iconoscope embed --backbone {backbone}' first, or drop the input")
    pos = {str(i): k for k, i in enumerate(ids)}
    out = np.zeros((len(table), X.shape[1]), dtype=np.float32)
    present = np.zeros(len(table), dtype=bool)
    for r, imgs in enumerate(table.images):
        rows = [pos[i] for i in imgs if i in pos]
        if rows:
            out[r] = X[rows].mean(axis=0)
            present[r] = True
    return out, present


def gather(ws: Any, project: Project, table: RecordTable | None = None, targets: bool = True,
           progress: bool = True) -> RawData:
    """Read every input (and target) for the records of the project's sources."""
    table = table if table is not None else load_records(ws, project.sources)
    if len(table) == 0:
        scope = f"sources {', '.join(project.sources)}" if project.sources else "the graph"
        raise InputError(project.where, f"no records in {scope}; run 'iconoscope ingest' first")
    raw: dict[str, Any] = {}
    for spec in project.inputs:
        if spec.kind == "image":
            raw[spec.text] = image_matrix(ws, project.image_backbone(spec), table, spec.text)
        elif spec.kind == "text":
            from iconoscope.learn.text import cached_embedder

            assert spec.field is not None
            texts = table.text(spec.field, project.languages)
            present = np.array([bool(t.strip()) for t in texts], dtype=bool)
            embed = cached_embedder(ws, project.text_encoder)
            idx = np.flatnonzero(present)
            vecs = embed([texts[i] for i in idx], progress=progress)
            X = np.zeros((len(texts), vecs.shape[1] if len(idx) else embed(["x"]).shape[1]), dtype=np.float32)
            X[idx] = vecs
            raw[spec.text] = (X, present)
        elif spec.kind == "num":
            assert spec.field is not None
            raw[spec.text] = numbers_of(table, spec.field)
        else:
            assert spec.field is not None
            raw[spec.text] = input_values(table, spec, project.separator(spec.field.key))
    tv = {t.name: target_values(table, t, project.separator(t.field.key)) for t in project.targets} if targets \
        else {}
    return RawData(table, raw, tv)


# ---------------------------------------------------------------- features
class FeaturePipeline:
    """Fits one encoder per input on training rows and lays the blocks out for the two branches."""

    def __init__(self, inputs: list[InputSpec], input_min_count: dict[str, int] | int = 1):
        self.inputs = inputs
        self.input_min_count = ({"*": input_min_count} if isinstance(input_min_count, int)
                                else dict(input_min_count))
        self.encoders: dict[str, Any] = {}

    def _new(self, spec: InputSpec) -> Any:
        if spec.kind == "image":
            return DenseEncoder(spec.text)
        if spec.kind == "text":  # shares the metadata layer with one-hot blocks: scale it like one
            return DenseEncoder(spec.text, unit_block=True)
        if spec.kind == "num":
            return NumericEncoder(spec.text)
        return VocabEncoder(spec.text, multi=spec.kind == "set",
                            min_count=1 if spec.kind == "date" else
                            self.input_min_count.get(spec.text, self.input_min_count.get("*", 1)))

    def fit(self, raw: RawData, rows: np.ndarray | None = None) -> FeaturePipeline:
        rows = np.arange(len(raw)) if rows is None else rows
        for spec in self.inputs:
            enc = self._new(spec)
            value = raw.inputs[spec.text]
            if isinstance(enc, DenseEncoder):
                enc.fit(value[0][rows], value[1][rows])
            else:
                enc.fit([value[i] for i in rows])
            self.encoders[spec.text] = enc
        return self

    def blocks(self, raw: RawData, rows: np.ndarray | None = None) -> list[Block]:
        rows = np.arange(len(raw)) if rows is None else rows
        out = []
        for spec in self.inputs:
            enc = self.encoders[spec.text]
            value = raw.inputs.get(spec.text)
            if value is None:
                raise InputError(f"input {spec.text!r}", "not available for prediction")
            if isinstance(enc, DenseEncoder):
                out.append(enc.transform(value[0][rows], value[1][rows]))
            else:
                out.append(enc.transform([value[i] for i in rows]))
        return out

    def slots(self) -> list[BlockSlot]:
        slots, ends = [], {"image": 0, "meta": 0}
        for spec in self.inputs:
            branch = "image" if spec.kind == "image" else "meta"
            width = self.encoders[spec.text].dim + 1
            slots.append(BlockSlot(spec.text, branch, ends[branch], ends[branch] + width))
            ends[branch] += width
        return slots

    def transform(self, raw: RawData, rows: np.ndarray | None = None) -> tuple[np.ndarray | None,
                                                                               np.ndarray | None,
                                                                               dict[str, np.ndarray]]:
        """(image matrix, metadata matrix, present mask per input) for ``rows``."""
        blocks = self.blocks(raw, rows)
        parts: dict[str, list[np.ndarray]] = {"image": [], "meta": []}
        for spec, b in zip(self.inputs, blocks, strict=True):
            parts["image" if spec.kind == "image" else "meta"].append(b.with_flag())
        Xi = np.concatenate(parts["image"], axis=1) if parts["image"] else None
        Xm = np.concatenate(parts["meta"], axis=1) if parts["meta"] else None
        return Xi, Xm, {b.name: b.present for b in blocks}

    def state(self) -> dict[str, Any]:
        return {"inputs": [s.text for s in self.inputs], "input_min_count": self.input_min_count,
                "encoders": {k: e.state() for k, e in self.encoders.items()}}

    @classmethod
    def from_state(cls, s: dict[str, Any], inputs: list[InputSpec]) -> FeaturePipeline:
        if [i.text for i in inputs] != list(s["inputs"]):
            raise ConfigError(f"the model was trained on inputs {s['inputs']}, the config now says "
                              f"{[i.text for i in inputs]}; retrain with 'iconoscope train'")
        p = cls(inputs, s["input_min_count"])
        p.encoders = {k: encoder_from_state(v) for k, v in s["encoders"].items()}
        return p
