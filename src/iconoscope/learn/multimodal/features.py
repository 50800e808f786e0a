"""Input fields -> numeric blocks, and target fields -> class indices; fitted on training rows only.

Each input becomes one *block*: a float32 matrix plus a ``present`` mask. The model sees a block's values and, as
its last column, a "missing" flag, so a record without a title or an image is predicted from what it has: the flag
is what a missing input looks like, in training (where we also hide inputs at random, see ``model.py``) and at
prediction time. A category never seen in training is treated as missing, not as an error.

Encoders keep their fitted state as plain JSON-able dicts, so a trained model is a ``state_dict`` plus JSON, not a
pickle of our classes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from iconoscope.errors import InputError
from iconoscope.learn.multimodal.dates import DateBins, parse_year
from iconoscope.learn.multimodal.specs import FieldRef, InputSpec, TargetSpec


@dataclass
class Block:
    """One input's features for N rows: ``X`` [N, d] and which rows actually have the input."""

    name: str
    X: np.ndarray
    present: np.ndarray  # bool [N]

    def with_flag(self) -> np.ndarray:
        """X with the 'missing' flag appended as the last column (what the network takes)."""
        return np.concatenate([self.X, (~self.present).astype(np.float32)[:, None]], axis=1)


# ---------------------------------------------------------------- inputs
class VocabEncoder:
    """Values -> one-hot (``cat``: weights sum to 1 when a record has several) or multi-hot (``set``)."""

    def __init__(self, name: str, multi: bool, min_count: int = 1, max_values: int = 5000):
        self.name, self.multi, self.min_count, self.max_values = name, multi, min_count, max_values
        self.vocab: list[str] = []

    def fit(self, values: Sequence[Sequence[str]]) -> VocabEncoder:
        counts = Counter(v for vals in values for v in set(vals))
        kept = [v for v, c in counts.most_common() if c >= self.min_count][: self.max_values]
        self.vocab = sorted(kept)
        return self

    @property
    def dim(self) -> int:
        return len(self.vocab)

    def transform(self, values: Sequence[Sequence[str]]) -> Block:
        index = {v: i for i, v in enumerate(self.vocab)}
        X = np.zeros((len(values), self.dim), dtype=np.float32)
        for r, vals in enumerate(values):
            hits = [index[v] for v in vals if v in index]
            if hits:
                X[r, hits] = 1.0 if self.multi else 1.0 / len(hits)
        return Block(self.name, X, X.sum(axis=1) > 0)

    def state(self) -> dict[str, Any]:
        return {"type": "vocab", "name": self.name, "multi": self.multi, "vocab": self.vocab}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> VocabEncoder:
        enc = cls(s["name"], s["multi"])
        enc.vocab = list(s["vocab"])
        return enc


class NumericEncoder:
    """A number -> (x - mean) / std; missing values are 0 with the flag set."""

    def __init__(self, name: str):
        self.name = name
        self.mean, self.std = 0.0, 1.0

    def fit(self, values: Sequence[float | None]) -> NumericEncoder:
        xs = np.array([v for v in values if v is not None], dtype=np.float64)
        if len(xs):
            self.mean, self.std = float(xs.mean()), float(xs.std() or 1.0)
        return self

    @property
    def dim(self) -> int:
        return 1

    def transform(self, values: Sequence[float | None]) -> Block:
        present = np.array([v is not None for v in values], dtype=bool)
        X = np.zeros((len(values), 1), dtype=np.float32)
        X[present, 0] = (np.array([v for v in values if v is not None], dtype=np.float64) - self.mean) / self.std
        return Block(self.name, X, present)

    def state(self) -> dict[str, Any]:
        return {"type": "numeric", "name": self.name, "mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> NumericEncoder:
        enc = cls(s["name"])
        enc.mean, enc.std = float(s["mean"]), float(s["std"])
        return enc


class DenseEncoder:
    """Precomputed vectors (image embeddings, text embeddings) -> standardised per dimension.

    Rows whose vector is missing are marked by ``present``; statistics are fitted on present training rows.
    ``unit_block`` further divides by sqrt(dim), so the block's vector has a norm near 1, like a one-hot: a
    384-d title vector then does not drown the artist's single 1 in the layer they share (the metadata branch)."""

    def __init__(self, name: str, standardize: bool = True, unit_block: bool = False):
        self.name, self.standardize, self.unit_block = name, standardize, unit_block
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self._dim = 0

    def fit(self, X: np.ndarray, present: np.ndarray) -> DenseEncoder:
        self._dim = int(X.shape[1])
        rows = X[present] if present.any() else X
        if self.standardize and len(rows):
            self.mean = rows.mean(axis=0).astype(np.float32)
            self.std = (rows.std(axis=0) + 1e-6).astype(np.float32)
        return self

    @property
    def dim(self) -> int:
        return self._dim

    def transform(self, X: np.ndarray, present: np.ndarray) -> Block:
        if X.shape[1] != self._dim:
            raise InputError(f"input {self.name!r}", f"vectors have {X.shape[1]} dimensions, the model was trained "
                             f"on {self._dim} (was the backbone or text encoder changed? retrain)")
        out = X.astype(np.float32, copy=True)
        if self.mean is not None and self.std is not None:
            out = (out - self.mean) / self.std
        if self.unit_block and self._dim:
            out /= np.sqrt(self._dim)
        out[~present] = 0.0
        return Block(self.name, out, present.copy())

    def state(self) -> dict[str, Any]:
        return {"type": "dense", "name": self.name, "dim": self._dim, "standardize": self.standardize,
                "unit_block": self.unit_block,
                "mean": None if self.mean is None else self.mean.tolist(),
                "std": None if self.std is None else self.std.tolist()}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> DenseEncoder:
        enc = cls(s["name"], s["standardize"], bool(s.get("unit_block", False)))
        enc._dim = int(s["dim"])
        enc.mean = None if s["mean"] is None else np.asarray(s["mean"], dtype=np.float32)
        enc.std = None if s["std"] is None else np.asarray(s["std"], dtype=np.float32)
        return enc


def encoder_from_state(s: dict[str, Any]) -> VocabEncoder | NumericEncoder | DenseEncoder:
    kinds: dict[str, Callable[[dict[str, Any]], Any]] = {
        "vocab": VocabEncoder.from_state, "numeric": NumericEncoder.from_state, "dense": DenseEncoder.from_state}
    return kinds[s["type"]](s)


# ---------------------------------------------------------------- targets
class TargetEncoder:
    """A target field -> class indices (``cat``/``date``: soft one-hot over a record's values) or multi-hot (``set``).

    Classes with fewer than ``min_count`` training records are dropped: a record whose values are all dropped has no
    label for this task (masked out of the loss and of the metrics), rather than a catch-all 'other' class that
    would swamp the rare ones.
    """

    def __init__(self, spec: TargetSpec, min_count: int = 1, max_classes: int | None = None):
        self.spec, self.min_count, self.max_classes = spec, min_count, max_classes
        self.classes: list[str] = []

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def multilabel(self) -> bool:
        return self.spec.kind == "set"

    def fit(self, values: Sequence[Sequence[str]]) -> TargetEncoder:
        counts = Counter(v for vals in values for v in set(vals))
        kept = [v for v, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= self.min_count]
        if self.max_classes:
            kept = kept[: self.max_classes]
        if self.spec.kind == "date":
            kept.sort(key=lambda lab: DateBins.parse_label(lab)[0])
        else:
            kept.sort()
        self.classes = kept
        return self

    def transform(self, values: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(Y [N, C] float32 target distribution or multi-hot, has_label bool [N])."""
        index = {c: i for i, c in enumerate(self.classes)}
        Y = np.zeros((len(values), len(self.classes)), dtype=np.float32)
        for r, vals in enumerate(values):
            hits = sorted({index[v] for v in vals if v in index})
            if hits:
                Y[r, hits] = 1.0 if self.multilabel else 1.0 / len(hits)
        return Y, Y.sum(axis=1) > 0

    def state(self) -> dict[str, Any]:
        return {"spec": self.spec.text, "classes": self.classes, "min_count": self.min_count}


def years_of(table: Any, f: FieldRef) -> list[int | None]:
    """Years per record: core date fields through ``ico:year``/``dcterms:created``, others parsed from their text."""
    if not f.extra and f.name in ("date", "year"):
        return table.years()
    out: list[int | None] = []
    for vals in table.values(f):
        ys = [y for v in vals if (y := parse_year(v)) is not None]
        out.append(ys[0] if ys else None)
    return out


def numbers_of(table: Any, f: FieldRef) -> list[float | None]:
    """Numbers per record (the first value that parses); years for the date fields."""
    if not f.extra and f.name in ("date", "year"):
        return [None if y is None else float(y) for y in table.years()]
    out: list[float | None] = []
    for vals in table.values(f):
        num = None
        for v in vals:
            try:
                num = float(v)
                break
            except ValueError:
                continue
        out.append(num)
    return out


def target_values(table: Any, spec: TargetSpec, separator: str | None = None) -> list[list[str]]:
    """A target field's values per record, as class names (date bins as ``start/end``)."""
    if spec.kind == "date":
        bins = DateBins(spec.width)
        return [[lab] if (lab := bins.label(y)) else [] for y in years_of(table, spec.field)]
    return table.values(spec.field, separator if spec.kind == "set" or separator else None)


def input_values(table: Any, spec: InputSpec, separator: str | None = None) -> list[list[str]]:
    """Categorical/set input values per record (date inputs as bins)."""
    assert spec.field is not None
    if spec.kind == "date":
        bins = DateBins(spec.width)
        return [[lab] if (lab := bins.label(y)) else [] for y in years_of(table, spec.field)]
    return table.values(spec.field, separator)
