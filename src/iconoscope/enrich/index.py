"""The derived score index of a run: the scores a run graph holds, as one float32 matrix, for fast search and audit.

Why: at Joconde scale a run holds millions of annotations; answering "top records for this concept" or "annotated
but low score, for 40 categories" by SPARQL means joining them all (seconds to tens of seconds on Oxigraph), while a
dense ``[images, categories]`` matrix answers both in milliseconds.

Why it stays in sync: a run graph is immutable once written (a new run gets a new id and graph; see ``write``), and
the index is keyed by that run id. ``write_run`` writes the index from the very values it writes into the graph;
``ensure_index`` rebuilds it from the graph whenever it is missing or belongs to another run, and
``verify_index`` rebuilds it from the graph and compares, cell by cell (the tests do this). What the index holds is
exactly what the graph holds: a score below the run's floor is absent from both (NaN here).

Layout: ``runs/{run_id}/scores_t.npy`` (float32 ``[C, N]``, category-major; NaN = no stored score),
``rows.parquet`` (``image``,
``record`` IRIs, sorted by record then image so records are contiguous row ranges), ``meta.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from iconoscope.enrich.runs import RunInfo, run_categories
from iconoscope.enrich.tables import select_table
from iconoscope.errors import IconoscopeError
from iconoscope.graph import queries
from iconoscope.graph.queries import IRI
from iconoscope.workspace import slug

FORMAT = 1


@dataclass
class ScoreIndex:
    """Scores of one run: ``scores[i, j]`` is image ``images[i]``'s score for ``categories[j]`` (NaN: not stored)."""

    run_id: str
    classifier: str
    categories: list[str]
    images: np.ndarray          # object array of image IRIs
    records: np.ndarray         # object array of record IRIs ('' when the image has no record)
    scores: np.ndarray          # float32 [N, C]
    meta: dict[str, Any] = field(default_factory=dict)
    _col: dict[str, int] = field(default_factory=dict, repr=False)
    _groups: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _ends: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._col = {c: j for j, c in enumerate(self.categories)}

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_annotations(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.scores)))

    def column(self, concept: str) -> int | None:
        return self._col.get(concept)

    def record_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """(record IRIs, start row of each) for the rows that have a record (rows are sorted by record)."""
        if self._groups is None:
            recs = self.records
            has = recs != ""
            first = int(np.argmax(has)) if has.any() else len(recs)
            sub = recs[first:]
            if len(sub) == 0:
                self._groups = (np.zeros(0, object), np.zeros(0, np.int64))
            else:
                change = np.ones(len(sub), dtype=bool)
                change[1:] = sub[1:] != sub[:-1]
                starts = np.flatnonzero(change)
                self._groups = (sub[starts], starts + first)
        return self._groups

    def record_best(self, cols: list[int], mask: np.ndarray | None = None) -> np.ndarray:
        """Per record (``record_groups`` order) and column: the best score over its images, NaN when none is stored.

        ``mask`` (bool ``[N, len(cols)]``) hides cells (e.g. rejected suggestions) before taking the maximum.
        """
        rec, starts = self.record_groups()
        if len(rec) == 0:
            return np.zeros((0, len(cols)), np.float32)
        first = int(starts[0])
        S = np.asarray(self.scores[first:, cols], dtype=np.float32)
        if mask is not None:
            S = np.where(mask[first:], np.float32(np.nan), S)
        if len(starts) == S.shape[0]:                  # one image per record: nothing to reduce
            return S
        return np.fmax.reduceat(S, starts - first, axis=0)

    def best_rows(self, cols: list[int], rec_i: np.ndarray, col_i: np.ndarray, best: np.ndarray,
                  mask: np.ndarray | None = None) -> np.ndarray:
        """For cells (record ``rec_i``, column ``col_i``) of ``record_best``: the first index row of the record that
        holds the best score (-1 when none is stored). Only the asked cells are looked at."""
        _, starts = self.record_groups()
        ends = self._ends if self._ends is not None else np.append(starts[1:], len(self.images))
        self._ends = ends
        out = np.full(len(rec_i), -1, dtype=np.int64)
        for n, (r, c) in enumerate(zip(rec_i.tolist(), col_i.tolist(), strict=True)):
            b = best[r, c]
            if np.isnan(b):
                continue
            lo, hi = int(starts[r]), int(ends[r])
            if hi - lo == 1:
                out[n] = lo
                continue
            vals = np.asarray(self.scores[lo:hi, cols[c]], dtype=np.float32)
            if mask is not None:
                vals = np.where(mask[lo:hi, c], np.float32(np.nan), vals)
            out[n] = lo + int(np.flatnonzero(vals == b)[0])
        return out


# ---- files ---------------------------------------------------------------------------------------------------------

def index_dir(ws: Any, run_id: str) -> Path:
    """``runs/{run_id}`` (not created here: reading must not touch the disk more than it needs)."""
    return Path(ws.root) / "runs" / slug(run_id)


def save_index(ws: Any, index: ScoreIndex) -> Path:
    """Write atomically: a half-written index is never visible under the run's folder."""
    final = index_dir(ws, index.run_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        # stored category-major, so one category's scores (what a search reads) are contiguous on disk
        np.save(tmp / "scores_t.npy", np.ascontiguousarray(np.asarray(index.scores, dtype=np.float32).T))
        pq.write_table(pa.table({"image": pa.array(index.images.tolist(), pa.string()),
                                 "record": pa.array(index.records.tolist(), pa.string())}), tmp / "rows.parquet")
        meta = {**index.meta, "format": FORMAT, "run_id": index.run_id, "classifier": index.classifier,
                "categories": index.categories, "n_images": len(index), "n_annotations": index.n_annotations}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _CACHE.pop(str(final), None)
    return final


_CACHE: dict[str, tuple[float, ScoreIndex]] = {}


def load_index(ws: Any, run_id: str) -> ScoreIndex | None:
    """The stored index of ``run_id`` (memory-mapped, cached per process), or None when there is none."""
    d = index_dir(ws, run_id)
    meta_path = d / "meta.json"
    try:
        mtime = meta_path.stat().st_mtime
    except FileNotFoundError:
        return None
    hit = _CACHE.get(str(d))
    if hit and hit[0] == mtime:
        return hit[1]
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT or meta.get("run_id") != run_id:
        return None
    rows = pq.read_table(d / "rows.parquet")
    scores = np.load(d / "scores_t.npy", mmap_mode="r").T
    if scores.shape != (rows.num_rows, len(meta["categories"])):
        raise IconoscopeError(f"{d}: score index is inconsistent ({scores.shape} for {rows.num_rows} images and "
                              f"{len(meta['categories'])} categories); delete the folder to rebuild it")
    idx = ScoreIndex(run_id=run_id, classifier=meta["classifier"], categories=list(meta["categories"]),
                     images=rows.column("image").to_numpy(zero_copy_only=False).astype(object),
                     records=rows.column("record").to_numpy(zero_copy_only=False).astype(object), scores=scores,
                     meta=meta)
    _CACHE[str(d)] = (mtime, idx)
    return idx


def drop_index(ws: Any, run_id: str) -> None:
    d = index_dir(ws, run_id)
    _CACHE.pop(str(d), None)
    shutil.rmtree(d, ignore_errors=True)


def build_index(run_id: str, classifier: str, categories: list[str], images: list[str], records: list[str],
                scores: np.ndarray, meta: dict[str, Any] | None = None) -> ScoreIndex:
    """An index from arrays (rows in any order; they are sorted by record, then image)."""
    imgs = np.asarray(images, dtype=object)
    recs = np.asarray(["" if r is None else r for r in records], dtype=object)
    order = np.lexsort((imgs.astype(str), recs.astype(str))) if len(imgs) else np.zeros(0, np.int64)
    S = np.asarray(scores, dtype=np.float32).reshape(len(imgs), len(categories))
    return ScoreIndex(run_id=run_id, classifier=classifier, categories=list(categories), images=imgs[order],
                      records=recs[order], scores=np.ascontiguousarray(S[order]), meta=dict(meta or {}))


def index_from_graph(ws: Any, run: RunInfo) -> ScoreIndex:
    """Read a run's scores back from its graph (the source of truth) into an index."""
    store = ws.store
    cats = run_categories(ws, run)
    rows = select_table(store, queries.load("enrich_run_images", graph=IRI(run.graph), run=IRI(run.iri)))
    rows = rows.group_by("image").aggregate([("record", "min")]).rename_columns(["image", "record"])
    images = rows.column("image").to_pylist()
    records = [r or "" for r in rows.column("record").to_pylist()]
    S = np.full((len(images), len(cats)), np.nan, dtype=np.float32)
    t = select_table(store, queries.load("enrich_run_scores", graph=IRI(run.graph), run=IRI(run.iri)))
    if t.num_rows:
        img_pos = pc.index_in(t.column("image"), value_set=pa.array(images, pa.string())).to_numpy(
            zero_copy_only=False)
        cat_pos = pc.index_in(t.column("concept"), value_set=pa.array(cats, pa.string())).to_numpy(
            zero_copy_only=False)
        vals = pc.cast(t.column("score"), pa.float32()).to_numpy(zero_copy_only=False)
        ok = ~(np.isnan(img_pos.astype(float)) | np.isnan(cat_pos.astype(float)))
        if not ok.all():
            raise IconoscopeError(f"run graph {run.graph}: {int((~ok).sum())} annotation(s) target an image not "
                                  "marked ico:scoredImage or a concept not listed as ico:category")
        S[img_pos.astype(np.int64), cat_pos.astype(np.int64)] = vals
    return build_index(run.run_id, run.classifier, cats, images, records, S, meta=dict(run.params))


def ensure_index(ws: Any, run: RunInfo) -> ScoreIndex:
    """The index of ``run``: the stored one, or rebuilt from the graph (and stored) when missing."""
    idx = load_index(ws, run.run_id)
    if idx is None:
        idx = index_from_graph(ws, run)
        save_index(ws, idx)
        idx = load_index(ws, run.run_id) or idx
    return idx


def indexes_equal(a: ScoreIndex, b: ScoreIndex) -> bool:
    """Same run, same cells (NaN equal to NaN), whatever the row and column order."""
    if a.run_id != b.run_id or set(a.categories) != set(b.categories) or len(a) != len(b):
        return False
    ka = dict(zip(a.images.tolist(), range(len(a)), strict=True))
    try:
        rows = np.asarray([ka[i] for i in b.images.tolist()], dtype=np.int64)
    except KeyError:
        return False
    cols = [a.column(c) for c in b.categories]
    if not np.array_equal(a.records[rows], b.records):
        return False
    return bool(np.array_equal(np.asarray(a.scores)[rows][:, cols], np.asarray(b.scores), equal_nan=True))


def verify_index(ws: Any, run: RunInfo) -> bool:
    """Rebuild the run's index from the graph and compare it with the stored one."""
    stored = load_index(ws, run.run_id)
    return stored is not None and indexes_equal(stored, index_from_graph(ws, run))
