"""Exploration: vector index, similar items, duplicates, clusters, 2-D map, relevance feedback, zero-shot search.

The functions other stages call (the web app, the demo) are re-exported here and imported lazily, so importing
``iconoscope.explore`` never loads faiss, scikit-learn, UMAP or torch until one of them is used::

    similar(ws, record_or_image_id, k=10, spec=None) -> [(record_id, image_id, score)]
    similar_to_file(ws, path, k=10, spec=None)        -> [(record_id, image_id, score)]
    duplicate_groups(ws, ...)                           -> [DuplicateGroup]
    build_map(ws, spec=None, ...) / load_map(ws, spec=None) -> {"points": [{record, image, x, y, cluster}], ...}
    render_map_png(ws, out=None, spec=None, ...)        -> Path of the PNG
    feedback_rank(ws, positives, negatives, spec=None, limit=50) -> [(record_id, image_id, score)]
    text_search(ws, text, k=10, spec=None)              -> [(record_id, image_id, score)]
"""

from __future__ import annotations

import importlib
from typing import Any

# The module iconoscope.explore.similar shares its name with its main function; importing it here makes the package
# attribute the function (a lazy lookup would be shadowed by the submodule once anything imported it).
from iconoscope.explore.similar import SimilarHit, similar, similar_to_file, similar_to_vector

_EXPORTS = {
    "duplicate_groups": "duplicates", "find_duplicates": "duplicates", "DuplicateGroup": "duplicates",
    "cluster_collection": "clusters", "load_clusters": "clusters",
    "build_map": "map", "load_map": "map", "render_map_png": "map",
    "feedback_rank": "feedback", "FeedbackSession": "feedback", "save_category": "feedback",
    "text_search": "zeroshot", "zero_shot_scores": "zeroshot",
    "VectorIndex": "index", "build_index": "index", "open_collection": "vectors",
}

__all__ = ["SimilarHit", "similar", "similar_to_file", "similar_to_vector", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'iconoscope.explore' has no attribute {name!r}")
    return getattr(importlib.import_module(f"iconoscope.explore.{module}"), name)
