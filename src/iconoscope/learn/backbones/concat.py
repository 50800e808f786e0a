"""``concat:SPEC_A|SPEC_B|...``: several backbones (or views of one) side by side, as one backbone.

Different networks fail on different images (an int8 MobileNetV2 and a Caffe SqueezeNet see a watercolour very
differently), and different crops of a sheet show different things (the whole sheet, the fruit above its caption),
so concatenating their vectors gives a head more to work with. Each part keeps its own preprocessing; the prepared
input of an image is a tuple with one array per part. ``embed_images`` fills a concat store from the parts' own
stores when they exist, so combining backbones never recomputes a vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError

SEPARATOR = "|"


def split_concat(spec: str) -> list[str]:
    """The part specs of a ``concat:`` spec."""
    if not spec.startswith("concat:"):
        raise ValueError(f"{spec!r} is not a concat: spec")
    parts = [p.strip() for p in spec[len("concat:"):].split(SEPARATOR) if p.strip()]
    if len(parts) < 2:
        raise ConfigError(f"backbone {spec!r}: concat needs at least two specs separated by '{SEPARATOR}'")
    if any(p.startswith("concat:") for p in parts):
        raise ConfigError(f"backbone {spec!r}: a concat part cannot itself be a concat")
    return parts


@dataclass(frozen=True)
class ConcatPreparer:
    parts: tuple[Any, ...]

    @property
    def min_side(self) -> int:
        return max(p.min_side for p in self.parts)

    def __call__(self, img: Any) -> tuple[np.ndarray, ...]:
        return tuple(p(img) for p in self.parts)

    @property
    def layout(self) -> tuple[tuple[tuple[int, ...], str], ...]:
        """One ``(shape, dtype)`` per part, in order (see :attr:`Preparer.layout`)."""
        return tuple(x for p in self.parts for x in p.layout)

    def wrap(self, arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
        return tuple(arrays)

    def unwrap(self, prepared: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        return tuple(prepared)

    def into(self, img: Any, outs: Sequence[np.ndarray]) -> None:
        k = 0
        for p in self.parts:
            n = len(p.layout)
            p.into(img, outs[k:k + n])
            k += n


class ConcatBackbone:
    """Duck-typed like :class:`Backbone`: ``embed``, ``prepare``/``preparer``, ``forward_prepared``, ``describe``."""

    kind = "concat"

    def __init__(self, spec: str, parts: Sequence[Any]):
        self.spec = spec
        self.parts = list(parts)
        self.dim = sum(p.dim for p in self.parts)
        self.views = tuple(v for p in self.parts for v in p.views)
        self.preprocess = self.parts[0].preprocess
        self.layer = " | ".join(f"{p.kind}: {p.layer}" for p in self.parts)
        self.notes = " | ".join(p.notes for p in self.parts)
        self.max_batch = None

    @property
    def preparer(self) -> ConcatPreparer:
        return ConcatPreparer(tuple(p.preparer for p in self.parts))

    def prepare(self, img: Any) -> tuple[np.ndarray, ...]:
        return self.preparer(img)

    def forward_prepared(self, prepared: Sequence[tuple[np.ndarray, ...]]) -> np.ndarray:
        if not prepared:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate([p.forward_prepared([x[i] for x in prepared]) for i, p in enumerate(self.parts)],
                              axis=1)

    def forward_batch(self, batches: Sequence[np.ndarray]) -> np.ndarray:
        """One stacked batch per part (as :attr:`ConcatPreparer.layout` orders them) -> ``[N, dim]``."""
        return np.concatenate([p.forward_batch(b) for p, b in zip(self.parts, batches, strict=True)], axis=1)

    def embed(self, images: Sequence[Any]) -> np.ndarray:
        return self.forward_prepared([self.prepare(im) for im in images])

    def describe(self) -> dict[str, Any]:
        parts = [p.describe() for p in self.parts]
        return {"spec": self.spec, "kind": "concat", "layer": self.layer, "dim": self.dim,
                "feature_dim": self.dim, "views": list(self.views), "preprocess": parts[0]["preprocess"],
                "parts": parts, "notes": self.notes}
