"""Embedding a collection: images from the graph -> float32 vectors on disk, one folder per backbone spec.

Layout of ``vectors/{slug(spec)}/`` (see docs/internals.md)::

    meta.json            spec, dim, layer, preprocess, views: what the vectors mean
    part-NNNNN.npy       float32 [n, dim] shards, appended as the run goes
    part-NNNNN.parquet   the ids of those rows (image, record), same order
    failures.parquet     images that could not be embedded: image, record, location, reason

Why shards: a run writes a shard every ``flush_every`` images, so an interrupted run keeps what it did and the next
one skips it (resumable, idempotent: an image id is never stored twice). A shard counts only when its .npy and
.parquet both exist with the same row count, and both are written to temporary names then renamed, so a crash never
leaves half a shard that would be read.

Why worker processes: decoding JPEGs and resizing them is numpy/Pillow work that would otherwise stall the network
between batches; workers prepare the next images while the main process runs the current batch.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.learn.ring import open_in_worker, ring_stream, supports_ring

FAILURE_SCHEMA = pa.schema([("image", pa.string()), ("record", pa.string()), ("location", pa.string()),
                            ("reason", pa.string())])
ID_SCHEMA = pa.schema([("image", pa.string()), ("record", pa.string())])


@dataclass(frozen=True)
class PendingImage:
    """One image to embed: what the scale-out engine receives too."""

    image: str
    record: str
    location: str


@dataclass
class EmbedReport:
    spec: str
    total: int = 0
    embedded: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    dim: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (image, reason) of this run

    @property
    def rate(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (f"{self.spec}: {self.embedded} embedded, {self.skipped} already done, {self.failed} failed "
                f"of {self.total} ({self.rate:.1f} img/s, dim {self.dim})")


class EmbeddingStore:
    """The vectors of one backbone in one workspace (``ws`` may be a Workspace or a folder path)."""

    def __init__(self, ws: Any, spec: str):
        self.spec = spec
        if isinstance(ws, (str, Path)):
            from iconoscope.workspace import slug

            self.dir = Path(ws) / slug(spec)
            self.dir.mkdir(parents=True, exist_ok=True)
        else:
            self.dir = ws.vectors_dir(spec)
        self._ids_cache: tuple[tuple[str, ...], set[str]] | None = None

    # ---- reading
    def _shards(self) -> list[tuple[Path, Path]]:
        out = []
        for npy in sorted(self.dir.glob("part-*.npy")):
            pqf = npy.with_suffix(".parquet")
            if pqf.exists():
                out.append((npy, pqf))
        return out

    def meta(self) -> dict[str, Any] | None:
        p = self.dir / "meta.json"
        return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None

    def id_table(self) -> pa.Table:
        """(image, record) of every stored vector, in storage order."""
        tables = [pq.read_table(p, schema=ID_SCHEMA) for _, p in self._shards()]
        return pa.concat_tables(tables) if tables else ID_SCHEMA.empty_table()

    def ids(self) -> list[str]:
        return self.id_table().column("image").to_pylist()

    def __len__(self) -> int:
        return self.id_table().num_rows

    def has(self, ids: Iterable[str]) -> np.ndarray:
        """A boolean per id: is its vector stored?"""
        done = set(self.ids())
        return np.array([i in done for i in ids], dtype=bool)

    def load(self, ids: Sequence[str] | None = None, mmap: bool = True) -> tuple[list[str], np.ndarray]:
        """``(image ids, float32 [N, dim])``; with ``ids``, those rows in that order (missing ids raise)."""
        shards = self._shards()
        meta = self.meta() or {}
        dim = int(meta.get("dim", 0))
        if not shards:
            all_ids: list[str] = []
            X = np.zeros((0, dim), np.float32)
        else:
            all_ids = []
            parts = []
            for npy, pqf in shards:
                a = np.load(npy, mmap_mode="r" if mmap else None)
                t = pq.read_table(pqf, schema=ID_SCHEMA)
                if a.shape[0] != t.num_rows:
                    raise IconoscopeError(f"{npy}: {a.shape[0]} vectors but {t.num_rows} ids; delete the shard "
                                          "pair and re-run embed")
                all_ids += t.column("image").to_pylist()
                parts.append(a)
            X = np.concatenate(parts, axis=0).astype(np.float32, copy=False) if len(parts) > 1 else np.asarray(
                parts[0], dtype=np.float32)
        if ids is None:
            return all_ids, X
        index = {i: k for k, i in enumerate(all_ids)}
        missing = [i for i in ids if i not in index]
        if missing:
            raise IconoscopeError(f"{self.dir}: no vector for {len(missing)} image(s), e.g. {missing[:3]}; "
                                  f"run 'iconoscope embed --backbone {self.spec}'")
        return list(ids), np.asarray(X[[index[i] for i in ids]], dtype=np.float32)

    def failures(self) -> pa.Table:
        """Images that could not be embedded (image, record, location, reason)."""
        p = self.dir / "failures.parquet"
        return pq.read_table(p, schema=FAILURE_SCHEMA) if p.exists() else FAILURE_SCHEMA.empty_table()

    # ---- writing
    def check_meta(self, describe: dict[str, Any], rebuild: bool = False) -> None:
        """Write meta.json, or check that stored vectors were made the same way (else they would be mixed)."""
        old = self.meta()
        if rebuild:
            self.clear()
            old = None
        new = {"spec": self.spec, "dim": describe["dim"], "layer": describe.get("layer", ""),
               "views": describe.get("views", []), "preprocess": describe.get("preprocess", {}),
               "kind": describe.get("kind", ""), "notes": describe.get("notes", "")}
        if old is not None and self._shards():
            same = all(old.get(k) == new[k] for k in ("dim", "layer", "views", "preprocess"))
            if not same:
                diff = [k for k in ("dim", "layer", "views", "preprocess") if old.get(k) != new[k]]
                raise ConfigError(f"{self.dir}: stored vectors were made differently ({', '.join(diff)} changed); "
                                  "re-run with --rebuild to replace them")
        _atomic_write(self.dir / "meta.json", json.dumps(new, indent=1).encode("utf-8"))

    def append(self, image_ids: Sequence[str], record_ids: Sequence[str], X: np.ndarray) -> None:
        """Add a shard (ids already stored are dropped: appending twice never duplicates a vector)."""
        X = np.asarray(X, dtype=np.float32)
        if len(image_ids) != len(X) or len(record_ids) != len(X):
            raise ValueError("append: ids and vectors differ in length")
        keep = ~self.has(image_ids)
        if not keep.any():
            return
        image_ids = [i for i, k in zip(image_ids, keep, strict=True) if k]
        record_ids = [r for r, k in zip(record_ids, keep, strict=True) if k]
        X = X[keep]
        n = max([int(p.stem.split("-")[1]) for p in self.dir.glob("part-*.npy")], default=-1) + 1
        stem = self.dir / f"part-{n:05d}"
        tmp_npy = stem.with_suffix(".npy.tmp")
        with open(tmp_npy, "wb") as f:
            np.save(f, np.ascontiguousarray(X))
        table = pa.table({"image": pa.array(image_ids, pa.string()), "record": pa.array(record_ids, pa.string())})
        tmp_pq = stem.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp_pq)
        os.replace(tmp_npy, stem.with_suffix(".npy"))
        os.replace(tmp_pq, stem.with_suffix(".parquet"))
        self.clear_failures(image_ids)

    def add_failures(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """Record (image, record, location, reason) rows; a later failure of the same image replaces the earlier."""
        rows = list(rows)
        if not rows:
            return
        old = self.failures().to_pylist()
        merged = {r["image"]: r for r in old}
        for image, record, location, reason in rows:
            merged[image] = {"image": image, "record": record, "location": location, "reason": reason}
        self._write_failures(list(merged.values()))

    def clear_failures(self, image_ids: Iterable[str]) -> None:
        p = self.dir / "failures.parquet"
        if not p.exists():
            return
        drop = set(image_ids)
        old = self.failures().to_pylist()
        kept = [r for r in old if r["image"] not in drop]
        if len(kept) != len(old):
            self._write_failures(kept)

    def _write_failures(self, rows: list[dict[str, str]]) -> None:
        table = pa.Table.from_pylist(rows, schema=FAILURE_SCHEMA)
        tmp = self.dir / "failures.parquet.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, self.dir / "failures.parquet")

    def compact(self) -> None:
        """Merge all shards into one (fewer files to open; the vectors do not change)."""
        shards = self._shards()
        if len(shards) <= 1:
            return
        ids_t = self.id_table()
        _, X = self.load(mmap=False)
        for npy, pqf in shards:
            npy.rename(npy.with_suffix(".npy.old"))
            pqf.rename(pqf.with_suffix(".parquet.old"))
        self.append(ids_t.column("image").to_pylist(), ids_t.column("record").to_pylist(), X)
        for p in self.dir.glob("part-*.old"):
            p.unlink()

    def clear(self) -> None:
        for p in [*self.dir.glob("part-*"), self.dir / "failures.parquet", self.dir / "meta.json"]:
            if p.exists():
                p.unlink()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---- the images to embed ------------------------------------------------------------------------------------------

def graph_images(ws: Any, sources: Sequence[str] | None = None) -> list[PendingImage]:
    """Every ``ico:Image`` of the graph with its record and location (a IIIF service when there is no file)."""
    from iconoscope.graph.queries import Raw, load, to_sparql
    from iconoscope.images import iiif_image_url

    values = Raw(" ".join(to_sparql(s) for s in sources)) if sources else Raw("UNDEF")
    res = ws.store.select(load("learn_images", sources=values))
    out: dict[str, PendingImage] = {}
    for row in res.dicts():
        image_iri = str(row["image"])
        try:
            image = ws.iris.id_of(image_iri, "image")
        except ValueError:
            image = image_iri
        record = row.get("rid")
        if record is None and row.get("record") is not None:
            try:
                record = ws.iris.id_of(str(row["record"]), "record")
            except ValueError:
                record = str(row["record"])
        location = row.get("location")
        if location is None and row.get("service") is not None:
            location = iiif_image_url(str(row["service"]), 512)
        out.setdefault(image, PendingImage(image, str(record or image), str(location or "")))
    return list(out.values())


def pending_images(ws: Any, spec: str, sources: Sequence[str] | None = None,
                   images: Sequence[PendingImage] | None = None) -> tuple[list[PendingImage], int]:
    """The images of the graph (or ``images``) whose vectors are not stored yet, and how many are done."""
    todo = list(images) if images is not None else graph_images(ws, sources)
    store = EmbeddingStore(ws, spec)
    done = store.has([p.image for p in todo])
    return [p for p, d in zip(todo, done, strict=True) if not d], int(done.sum())


def backbone_factory(ws: Any, spec: str) -> Callable[[], Any]:
    """A picklable zero-argument callable that builds the backbone (for engines that load it in other processes)."""
    from iconoscope.learn.backbones import get_backbone

    paths = {k: str(v) for k, v in (ws.config.raw.get("paths") or {}).items()}
    return partial(get_backbone, spec, root=str(ws.root), paths=paths)


# ---- the local engine ---------------------------------------------------------------------------------------------

def _prepare_one(item: tuple[int, str], preparer: Any, cache_dir: str | None) -> tuple[int, Any, str | None]:
    """Worker: decode + views + preprocessing of one image; never raises (a failure comes back as a reason)."""
    idx, location = item
    img, reason = open_in_worker(location, cache_dir, preparer.min_side)
    if reason is not None:
        return idx, None, reason
    try:
        return idx, preparer(img), None
    except Exception as e:  # a failure on one image must never stop the run
        return idx, None, f"{type(e).__name__}: {e}"


def _worker_init() -> None:
    # keep decoding workers from competing with the network for cores through BLAS/OpenMP threads
    os.environ["OMP_NUM_THREADS"] = "1"


def default_workers() -> int:
    """Decoding workers: the cores left after the one that runs the network (at least 1, at most 8)."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def prepared_stream(preparer: Any, locations: Sequence[str], workers: int, cache_dir: Path | None = None,
                    chunksize: int = 16, ahead: int = 64) -> Iterator[tuple[int, Any, str | None]]:
    """``(index, prepared array or None, failure reason)`` in input order, decoded by ``workers`` processes.

    A preparer that declares its output (``layout``: the base and concat backbones') is prepared into shared
    memory (:mod:`iconoscope.learn.ring`), and then **an array is valid only until the next item is requested**:
    consumers copy what they keep. Other preparers' results are pickled back and are the consumer's to keep.
    ``ahead``: how many items the consumer gathers before it works on them (its batch size)."""
    items = list(enumerate(locations))
    cache = str(cache_dir) if cache_dir else None
    fn = partial(_prepare_one, preparer=preparer, cache_dir=cache)
    if workers <= 0 or len(items) < 2 * chunksize:
        yield from map(fn, items)
        return
    if supports_ring(preparer):
        yield from ring_stream(preparer, locations, workers, cache, chunksize, ahead=ahead, initializer=_worker_init)
        return
    # fork: workers start in milliseconds and a caller's script needs no ``if __name__ == "__main__"`` guard;
    # they only run Pillow/numpy, never the parent's torch threads or graph store
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "fork in a multi-threaded process" (see above)
        pool = ctx.Pool(workers, initializer=_worker_init)
    with pool:
        yield from pool.imap(fn, items, chunksize=chunksize)


def _own(arr: Any) -> Any:
    """A copy of a lent prepared item (an array or a tuple of arrays)."""
    return tuple(a.copy() for a in arr) if isinstance(arr, tuple) else arr.copy()


class _Batch:
    """The images of one forward pass. With a preparer that declares its layout, they are copied into arrays
    allocated once (the stream's arrays are only lent, and the copy is the stacking the network needs anyway);
    otherwise they are kept as a list and stacked by ``forward_prepared``."""

    def __init__(self, preparer: Any, size: int, backbone: Any):
        # only a preparer with a layout is lent its arrays (the ring); a duck-typed backbone without forward_batch
        # then keeps copies in a list, and anything else keeps the arrays it was given
        self.lent = hasattr(preparer, "layout")
        self.layout = preparer.layout if self.lent and hasattr(backbone, "forward_batch") else None
        self.preparer = preparer
        self.bufs = [np.empty((size, *shape), dtype) for shape, dtype in self.layout] if self.layout else []
        self.items: list[Any] = []
        self.idx: list[int] = []

    def add(self, idx: int, arr: Any) -> None:
        if self.layout:
            n = len(self.idx)
            for buf, a in zip(self.bufs, self.preparer.unwrap(arr), strict=True):
                buf[n] = a
        else:
            self.items.append(_own(arr) if self.lent else arr)
        self.idx.append(idx)

    def forward(self, backbone: Any) -> np.ndarray:
        n = len(self.idx)
        if self.layout:
            return backbone.forward_batch(self.preparer.wrap([b[:n] for b in self.bufs]))
        return backbone.forward_prepared(self.items)

    def clear(self) -> None:
        self.items.clear()
        self.idx.clear()

    def __len__(self) -> int:
        return len(self.idx)


def run_backbone(backbone: Any, locations: Sequence[str], batch_size: int = 64, workers: int | None = None,
                 cache_dir: Path | None = None, progress: Any = None,
                 on_batch: Callable[[list[int], np.ndarray], None] | None = None,
                 on_failure: Callable[[int, str], None] | None = None) -> None:
    """Embed ``locations`` in batches; ``on_batch(indices, X)`` / ``on_failure(index, reason)`` get the results."""
    workers = default_workers() if workers is None else workers
    preparer = backbone.preparer
    batch = _Batch(preparer, batch_size, backbone)

    def flush() -> None:
        if len(batch):
            X = batch.forward(backbone)
            if on_batch:
                on_batch(list(batch.idx), X)
            if progress is not None:
                progress.update(len(batch))
            batch.clear()

    for idx, arr, reason in prepared_stream(preparer, locations, workers, cache_dir, ahead=batch_size):
        if arr is None:
            if on_failure:
                on_failure(idx, reason or "unknown error")
            if progress is not None:
                progress.update(1)
            continue
        batch.add(idx, arr)
        if len(batch) >= batch_size:
            flush()
    flush()


def embed_pending(ws: Any, spec: str, pending: Sequence[PendingImage], store: EmbeddingStore,
                  make_backbone: Callable[[], Any], batch_size: int = 64, workers: int | None = None,
                  flush_every: int = 2048, show_progress: bool = True) -> EmbedReport:
    """The local engine: embeds ``pending`` into ``store``, writing a shard every ``flush_every`` images."""
    from tqdm import tqdm

    report = EmbedReport(spec=spec, total=len(pending))
    backbone = make_backbone()
    report.dim = backbone.dim
    t0 = time.perf_counter()
    buf_ids: list[int] = []
    buf_X: list[np.ndarray] = []
    fails: list[tuple[str, str, str, str]] = []

    def write() -> None:
        if buf_ids:
            X = np.concatenate(buf_X, axis=0)
            store.append([pending[i].image for i in buf_ids], [pending[i].record for i in buf_ids], X)
            report.embedded += len(buf_ids)
            buf_ids.clear()
            buf_X.clear()
        if fails:
            store.add_failures(fails)
            fails.clear()

    def on_batch(idx: list[int], X: np.ndarray) -> None:
        buf_ids.extend(idx)
        buf_X.append(X)
        if len(buf_ids) >= flush_every:
            write()

    def on_failure(idx: int, reason: str) -> None:
        p = pending[idx]
        fails.append((p.image, p.record, p.location, reason))
        report.failures.append((p.image, reason))

    with tqdm(total=len(pending), desc=f"embed {spec[:40]}", unit="img", disable=not show_progress,
              dynamic_ncols=True) as bar:
        try:
            run_backbone(backbone, [p.location for p in pending], batch_size, workers,
                         cache_dir=ws.cache_dir("images") if hasattr(ws, "cache_dir") else None, progress=bar,
                         on_batch=on_batch, on_failure=on_failure)
        finally:
            write()  # an interrupted run keeps every finished batch
    report.failed = len(report.failures)
    report.seconds = time.perf_counter() - t0
    return report


def embed_images(ws: Any, spec: str | None = None, engine: str = "local", batch_size: int = 64,
                 workers: int | None = None, sources: Sequence[str] | None = None,
                 images: Sequence[PendingImage] | None = None, rebuild: bool = False,
                 show_progress: bool = True) -> EmbedReport:
    """Embed every image of the graph (or ``images``) not embedded yet with ``spec``; resumable and idempotent.

    ``engine="ray"`` hands the same work to ``iconoscope.scale.ray_engine.embed_pending`` (same signature as
    :func:`embed_pending`).
    """
    spec = spec or ws.config.default_backbone
    store = EmbeddingStore(ws, spec)
    if rebuild:
        store.clear()
    pending, done = pending_images(ws, spec, sources, images)
    if images is None and hasattr(ws, "close"):
        ws.close()  # the graph is read; release its lock for the long part (other verbs may need the store)
    if spec.startswith("concat:"):
        return _embed_concat(ws, spec, store, pending, done, engine=engine, batch_size=batch_size, workers=workers,
                             show_progress=show_progress)
    make_backbone = backbone_factory(ws, spec)
    if engine == "local":
        run = embed_pending
    elif engine == "ray":
        try:
            from iconoscope.scale.ray_engine import embed_pending as run  # type: ignore[no-redef]
        except ImportError as e:
            raise ConfigError(f"engine 'ray' is not available: {e}") from None
    else:
        raise ConfigError(f"engine {engine!r}: expected local or ray")
    backbone = make_backbone()
    store.check_meta(backbone.describe())
    if not pending:
        rep = EmbedReport(spec=spec, total=done, skipped=done, dim=backbone.dim)
        return rep
    report = run(ws, spec, pending, store, make_backbone, batch_size=batch_size, workers=workers,
                 show_progress=show_progress)
    report.skipped = done
    report.total = done + len(pending)
    return report


def _embed_concat(ws: Any, spec: str, store: EmbeddingStore, pending: list[PendingImage], done: int,
                  **kw: Any) -> EmbedReport:
    """A concat store is filled from its parts' stores (each embedded first, resumably): no vector is computed
    twice, and an image failed by any part is failed here with that part's reason."""
    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.backbones.concat import split_concat

    t0 = time.perf_counter()
    backbone = get_backbone(spec, ws=ws)
    store.check_meta(backbone.describe())
    report = EmbedReport(spec=spec, total=done + len(pending), skipped=done, dim=backbone.dim)
    if not pending:
        return report
    parts = split_concat(spec)
    for part in parts:
        embed_images(ws, part, images=pending, **kw)
    stores = [EmbeddingStore(ws, p) for p in parts]
    ok = np.ones(len(pending), dtype=bool)
    reasons: dict[str, str] = {}
    for p, st in zip(parts, stores, strict=True):
        ok &= st.has([x.image for x in pending])
        for r in st.failures().to_pylist():
            reasons.setdefault(r["image"], f"{p}: {r['reason']}")
    good = [x for x, k in zip(pending, ok, strict=True) if k]
    for i in range(0, len(good), 4096):
        chunk = good[i:i + 4096]
        ids = [x.image for x in chunk]
        X = np.concatenate([st.load(ids)[1] for st in stores], axis=1)
        store.append(ids, [x.record for x in chunk], X)
    report.embedded = len(good)
    bad = [(x.image, x.record, x.location, reasons.get(x.image, "missing in a part store"))
           for x, k in zip(pending, ok, strict=True) if not k]
    store.add_failures(bad)
    report.failures = [(b[0], b[3]) for b in bad]
    report.failed = len(bad)
    report.seconds = time.perf_counter() - t0
    return report
