"""Training data: the label table made by ``iconoscope labels`` joined with stored embeddings (or with pixels).

The label table (``labels/{name}.parquet``, docs/internals.md) has one row per image with the category IRIs its
record is positive for; its schema metadata carries the ordered categories, their labels and hashes of the query
and the graph, which go into the model card so a model can be traced to the exact data it learned from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from iconoscope.errors import ConfigError, IconoscopeError


@dataclass
class LabelSet:
    """Rows = images. ``Y`` [N, C] bool in the order of ``categories`` (concept IRIs)."""

    images: list[str]
    records: list[str]
    locations: list[str]
    Y: np.ndarray
    categories: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    #: each row's record subjects in the vocabulary (fine keys for ``fine_labels`` heads); empty for older tables
    subjects: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, mask: np.ndarray) -> LabelSet:
        idx = np.flatnonzero(mask)
        return LabelSet([self.images[i] for i in idx], [self.records[i] for i in idx],
                        [self.locations[i] for i in idx], self.Y[idx], self.categories, self.labels, self.meta,
                        [self.subjects[i] for i in idx] if self.subjects else [])

    def label(self, iri: str) -> str:
        return self.labels.get(iri) or iri.rstrip("/").rsplit("/", 1)[-1]

    def sha256(self) -> str:
        """A hash of the dataset itself: every (image, record, positive categories) row, in order."""
        h = hashlib.sha256()
        h.update(json.dumps(self.categories).encode())
        for i, r, y in zip(self.images, self.records, self.Y, strict=True):
            h.update(f"{i}\t{r}\t{''.join('1' if v else '0' for v in y)}\n".encode())
        return h.hexdigest()


def read_labels(path: Any) -> LabelSet:
    """Read a label table file (the documented schema); errors name the file and the problem."""
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as e:
        raise IconoscopeError(f"{path}: cannot read the label table: {e}") from None
    need = {"record", "image", "categories"}
    missing = need - set(table.column_names)
    if missing:
        raise IconoscopeError(f"{path}: label table lacks column(s) {', '.join(sorted(missing))}")
    raw = (table.schema.metadata or {}).get(b"iconoscope")
    meta: dict[str, Any] = json.loads(raw) if raw else {}
    cats_rows = table.column("categories").to_pylist()
    categories = list(meta.get("categories") or sorted({c for cs in cats_rows for c in (cs or [])}))
    if not categories:
        raise IconoscopeError(f"{path}: no categories (empty label table: is the vocabulary loaded and are records "
                              "annotated with its concepts?)")
    index = {c: j for j, c in enumerate(categories)}
    Y = np.zeros((table.num_rows, len(categories)), dtype=bool)
    for i, cs in enumerate(cats_rows):
        for c in cs or []:
            if c in index:
                Y[i, index[c]] = True
    locations = table.column("location").to_pylist() if "location" in table.column_names else [""] * len(Y)
    subjects = ([list(s or []) for s in table.column("subjects").to_pylist()]
                if "subjects" in table.column_names else [])
    return LabelSet(images=[str(x) for x in table.column("image").to_pylist()],
                    records=[str(x) for x in table.column("record").to_pylist()],
                    locations=[str(x or "") for x in locations], Y=Y, categories=categories,
                    labels=dict(meta.get("labels") or {}), meta=meta, subjects=subjects)


def load_labels(ws: Any, name: str) -> LabelSet:
    """The label table of classifier ``name``; a clear error when ``iconoscope labels NAME`` has not run."""
    path = ws.labels_path(name)
    if not path.exists():
        raise ConfigError(f"{path}: no label table for classifier '{name}'; run 'iconoscope labels {name}' first")
    ls = read_labels(path)
    if not ls.Y.any():
        raise IconoscopeError(f"{path}: no image is positive for any category of '{name}'")
    return ls


def embeddings_for(ws: Any, labels: LabelSet, spec: str, embed_missing: bool = True,
                   show_progress: bool = True) -> tuple[LabelSet, np.ndarray, list[tuple[str, str]]]:
    """(labels restricted to images with a vector, X aligned with them, [(image, reason)] left out).

    Missing vectors are computed first (resumable), so ``train`` works right after ``labels``.
    """
    from iconoscope.learn.embed import EmbeddingStore, PendingImage, embed_images

    store = EmbeddingStore(ws, spec)
    have = store.has(labels.images)
    if embed_missing and not have.all():
        todo = [PendingImage(i, r, loc) for i, r, loc, h in
                zip(labels.images, labels.records, labels.locations, have, strict=True) if not h]
        embed_images(ws, spec, images=todo, show_progress=show_progress)
        have = store.has(labels.images)
    fail = {r["image"]: r["reason"] for r in store.failures().to_pylist()}
    left_out = [(i, fail.get(i, "no vector")) for i, h in zip(labels.images, have, strict=True) if not h]
    kept = labels.subset(have)
    if not len(kept):
        raise IconoscopeError(f"no image of the label table has a '{spec}' vector ({len(left_out)} failed, e.g. "
                              f"{left_out[:2]})")
    _, X = store.load(kept.images)
    return kept, X, left_out
