"""The thin glue between a workspace and the exploration algorithms: which embeddings, which index, which record.

Everything in ``iconoscope.explore`` works on plain numpy arrays and id lists; this module is the one place that
knows where they live: the learning stage's ``EmbeddingStore`` (``vectors/{slug(spec)}/part-*.npy|parquet``) and our
index folder beside it (``vectors/{slug(spec)}/index/``). The index is brought up to date with the embeddings
whenever their shard files changed (new images embedded, a rebuild), so ``similar`` never answers from stale vectors
and never rebuilds what did not change.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.explore.index import EXACT_BELOW, VectorIndex

INDEX_DIR = "index"
EXPLORE_DIR = "explore"


def vector_specs(ws: Any) -> list[str]:
    """Backbone specs that have embeddings in this workspace (read from each folder's meta.json)."""
    root = ws.root / "vectors"
    out = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            meta = d / "meta.json"
            if d.is_dir() and meta.exists() and any(d.glob("part-*.npy")):
                try:
                    out.append(str(json.loads(meta.read_text(encoding="utf-8"))["spec"]))
                except (json.JSONDecodeError, KeyError):
                    continue
    return out


def pick_embedded(ws: Any, have: list[str]) -> str | None:
    """Among embedded specs ``have``: the workspace default when it is one of them, else the only one, else None."""
    default = ws.config.default_backbone
    if default in have:
        return default
    return have[0] if len(have) == 1 else None


def resolve_spec(ws: Any, spec: str | None = None) -> str:
    """The backbone to explore with: ``spec``, else the workspace default when embedded, else the only one embedded."""
    if spec:
        return spec
    have = vector_specs(ws)
    default = ws.config.default_backbone
    picked = pick_embedded(ws, have)
    if picked:
        return picked
    if not have:
        raise ConfigError(f"{ws.root}: no embeddings yet; run 'iconoscope embed' (backbone {default}) first")
    raise ConfigError(f"{ws.root}: embeddings exist for several backbones ({', '.join(have)}) and none is the "
                      f"default ({default}); say which with --backbone")


def _source_state(vec_dir: Path) -> list[list[Any]]:
    """Names, sizes and mtimes of the shard files: changes whenever the embeddings change."""
    state = []
    for p in sorted([*vec_dir.glob("part-*.npy"), *vec_dir.glob("part-*.parquet"), vec_dir / "meta.json"]):
        if p.exists():
            st = p.stat()
            state.append([p.name, st.st_size, st.st_mtime_ns])
    return state


@dataclass
class Collection:
    """One backbone's embeddings as the explorers need them: the index and the image <-> record maps."""

    spec: str
    index: VectorIndex
    record_of: dict[str, str]
    images_of: dict[str, list[str]] = field(default_factory=dict)
    explore_dir: Path | None = None

    def resolve(self, id_: str) -> list[str]:
        """Image ids for a record id or an image id (an image id wins when both exist)."""
        if id_ in self.index:
            return [id_]
        images = [i for i in self.images_of.get(id_, []) if i in self.index]
        if images:
            return images
        raise KeyError(id_)

    def record(self, image: str) -> str:
        return self.record_of.get(image, image)


_CACHE: dict[str, tuple[Any, Collection]] = {}
_LOCK = threading.Lock()


def open_collection(ws: Any, spec: str | None = None, kind: str = "auto", rebuild: bool = False,
                    exact_below: int = EXACT_BELOW, show_progress: bool = False) -> Collection:
    """The (cached, up-to-date) index and id maps for ``spec``; syncs and saves the index when embeddings changed."""
    from iconoscope.learn.embed import EmbeddingStore

    spec = resolve_spec(ws, spec)
    store = EmbeddingStore(ws, spec)
    vec_dir = store.dir
    state = _source_state(vec_dir)
    if not any(name.startswith("part-") for name, _, _ in state):
        raise ConfigError(f"{vec_dir}: no embeddings for backbone {spec}; run 'iconoscope embed --backbone {spec}'")
    key = str(vec_dir)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached and cached[0] == (state, kind) and not rebuild:
            return cached[1]
        index_dir = vec_dir / INDEX_DIR
        index: VectorIndex | None = None
        if not rebuild and (index_dir / "meta.json").exists():
            try:
                index = VectorIndex.load(index_dir)
            except IconoscopeError:
                index = None  # a corrupt or old index is rebuilt from the embeddings, never trusted
            if index is not None and kind != "auto" and index.kind != kind:
                index = None
        ids_table = store.id_table()
        if index is None or index.source_state != state:
            ids, X = store.load()
            if X.ndim != 2 or len(ids) != len(X):
                raise IconoscopeError(f"{vec_dir}: embeddings are not a [N, D] matrix ({X.shape})")
            if index is None or index.dim != X.shape[1]:
                index = VectorIndex(X.shape[1], kind=kind, exact_below=exact_below)
            index.sync(ids, X, show_progress=show_progress)
            index.source_state = state
            try:
                index.save(index_dir)
            except OSError as e:
                raise IconoscopeError(f"{index_dir}: cannot write the index: {e}") from e
        images = ids_table.column("image").to_pylist()
        records = ids_table.column("record").to_pylist()
        record_of = {i: (r or i) for i, r in zip(images, records, strict=True)}
        images_of: dict[str, list[str]] = {}
        for i, r in record_of.items():
            images_of.setdefault(r, []).append(i)
        coll = Collection(spec, index, record_of, images_of, explore_dir=vec_dir / EXPLORE_DIR)
        _CACHE[key] = ((state, kind), coll)
        return coll


def load_matrix(ws: Any, spec: str | None = None) -> tuple[str, list[str], list[str], np.ndarray]:
    """``(spec, image ids, record ids, X float32 [N, D])`` straight from the embeddings (for clusters, maps, SVMs)."""
    from iconoscope.learn.embed import EmbeddingStore

    spec = resolve_spec(ws, spec)
    store = EmbeddingStore(ws, spec)
    ids, X = store.load()
    if not ids:
        raise ConfigError(f"{store.dir}: no embeddings for backbone {spec}; run 'iconoscope embed --backbone {spec}'")
    table = store.id_table()
    rec = dict(zip(table.column("image").to_pylist(), table.column("record").to_pylist(), strict=True))
    return spec, ids, [rec.get(i) or i for i in ids], np.ascontiguousarray(X, dtype=np.float32)


def explore_dir(ws: Any, spec: str) -> Path:
    """``vectors/{slug(spec)}/explore/``: clusters, map and feedback state derived from one backbone."""
    d = ws.vectors_dir(spec) / EXPLORE_DIR
    d.mkdir(parents=True, exist_ok=True)
    return d


def image_locations(ws: Any) -> dict[str, tuple[str, str]]:
    """image id -> (record id, location) for every image of the graph (the learning stage's query)."""
    from iconoscope.learn.embed import graph_images

    return {p.image: (p.record, p.location) for p in graph_images(ws)}
