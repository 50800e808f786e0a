"""Similar items: the nearest records to a record, an image or an image file, by embedding cosine.

Results are records (the unit a curator browses), each with its best-matching image: a record with several images
appears once, and the query's own record never appears. Each hit is a ``SimilarHit(record, image, score)`` named
tuple, so it unpacks as ``(record_id, image_id, score)`` and also converts to a dict (``hit._asdict()``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from iconoscope.errors import InputError
from iconoscope.explore.duplicates import duplicate_groups  # noqa: F401  (the web app looks it up here too)
from iconoscope.explore.vectors import Collection, open_collection


class SimilarHit(NamedTuple):
    record: str
    image: str
    score: float


def _hits(coll: Collection, Q: np.ndarray, k: int, exclude_images: set[str], exclude_records: set[str]
          ) -> list[SimilarHit]:
    """Merge the neighbours of the query rows into one list of records (best image and score per record)."""
    want = k + len(exclude_images) + 8
    best: dict[str, SimilarHit] = {}
    while True:
        results = coll.index.search(Q, min(want, len(coll.index)))
        best.clear()
        for row in results:
            for image, score in row:
                if image in exclude_images:
                    continue
                rec = coll.record(image)
                if rec in exclude_records:
                    continue
                if rec not in best or score > best[rec].score:
                    best[rec] = SimilarHit(rec, image, round(float(score), 6))
        # multi-image records can fill the list with repeats: ask for more until k records or the whole index
        if len(best) >= k or want >= len(coll.index):
            break
        want *= 4
    return sorted(best.values(), key=lambda h: (-h.score, h.record))[:k]


def similar(ws: Any, record_or_image_id: str, k: int = 10, spec: str | None = None) -> list[SimilarHit]:
    """The ``k`` records most similar to a record (all its images) or to one image, best first."""
    if k <= 0:
        return []
    coll = open_collection(ws, spec)
    try:
        images = coll.resolve(record_or_image_id)
    except KeyError:
        raise InputError(f"vectors of {coll.spec}", "no record or image with this id has an embedding "
                         "(is it ingested and embedded?)", record=record_or_image_id) from None
    record = coll.record(images[0]) if record_or_image_id in coll.index else record_or_image_id
    Q = coll.index.vectors(images)
    return _hits(coll, Q, k, set(images), {record})


def similar_to_vector(ws: Any, vector: np.ndarray, k: int = 10, spec: str | None = None,
                      exclude: Iterable[str] = ()) -> list[SimilarHit]:
    """The ``k`` records nearest to an embedding made with ``spec``'s backbone."""
    coll = open_collection(ws, spec)
    Q = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    ex = set(exclude)
    return _hits(coll, Q, k, ex, set())


def similar_to_file(ws: Any, path: str | Path, k: int = 10, spec: str | None = None) -> list[SimilarHit]:
    """The ``k`` records most similar to an image file (embedded now with the same backbone as the collection)."""
    from iconoscope.images import load_image
    from iconoscope.learn.backbones import get_backbone

    coll = open_collection(ws, spec)
    img = load_image(str(path))  # raises ImageError naming the file and the problem
    backbone = get_backbone(coll.spec, ws=ws)
    X = np.asarray(backbone.embed([img]), dtype=np.float32)
    return similar_to_vector(ws, X[0], k, coll.spec)
