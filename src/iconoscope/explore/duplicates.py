"""Duplicate detection: exact and near-exact copies by perceptual hash and thumbnail, near-duplicates by embedding.

A pair is an edge; groups are the connected components (union-find), so a chain of copies (original -> resized ->
watermarked) ends in one group for a reviewer. Each pair keeps its evidence (pHash and dHash distances, thumbnail
cosine, embedding cosine and margin) so the review CSV/HTML shows *why* two images were put together.

Signals, per image: a 64-bit pHash and dHash (``hashing.py``), a 16x16 colour thumbnail descriptor, and the
backbone's embedding. Rules (thresholds measured on the pomological collection: README "Exploration",
``bench/explore_duplicates.py``; they were chosen on a tuning split and reported on a held-out one):

* ``exact``: both hashes equal and the thumbnails agree (cosine >= ``thumb_min``);
* ``near-exact``: thumbnail cosine >= ``thumb_min``, or a hash pair (pHash <= ``phash_max`` and dHash <=
  ``dhash_max``) whose thumbnails agree at least to ``thumb_verify``. Resizes, re-encodes and watermarks keep both;
  sheets that merely share a layout collide on binary greyscale hashes but not on colour thumbnails;
* ``near-duplicate``: the embedding *margin* >= ``margin_min`` (and the centred cosine >= ``cosine_min``): the
  centred cosine of the pair minus the mean centred cosine of each image's 5th-15th neighbours
  (:func:`embedding_candidates`). Crops and rotations that move
  every pixel still keep the embedding, and measuring a pair against its own neighbourhood separates "a copy"
  from "a sheet like many others" where one global cosine cannot.

Hashes and thumbnails are cached per image in ``cache/hashes/hashes.parquet`` (keyed by image id and location), so a
second run only reads new images; images that cannot be read are reported, never fatal.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from iconoscope.errors import IconoscopeError
from iconoscope.explore.hashing import (
    THUMB_SIDE,
    HashPreparer,
    connected_groups,
    dhash_from_gray,
    hamming,
    hash_pairs,
    phash_from_gray,
    thumb_descriptors,
)

# chosen by F1 on the tuning split of bench/explore_duplicates.py (pomological + 1,500 transformed copies)
PHASH_MAX = 4
DHASH_MAX = 6
THUMB_MIN = 0.98
THUMB_VERIFY = 0.95
MARGIN_MIN = 0.13
COSINE_MIN = 0.6
NEIGHBOURS = 15
BASELINE = (5, 15)  # the neighbour ranks (1-based, inclusive) whose mean cosine is an image's baseline

HASH_SCHEMA = pa.schema([("image", pa.string()), ("location", pa.string()), ("phash", pa.int64()),
                         ("dhash", pa.int64()), ("thumb", pa.binary())])


@dataclass
class Pair:
    """Two images judged copies of each other, with the evidence."""

    a: str
    b: str
    kind: str  # exact | near-exact | near-duplicate
    phash: int | None = None
    dhash: int | None = None
    thumb: float | None = None
    cosine: float | None = None
    margin: float | None = None


@dataclass
class DuplicateGroup:
    """A connected component of pairs: images (with their records and locations) and the pairs that join them."""

    id: int
    images: list[str]
    records: list[str]
    locations: list[str]
    pairs: list[Pair] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return sorted({p.kind for p in self.pairs})

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "images": self.images, "records": self.records, "locations": self.locations,
                "kinds": self.kinds, "pairs": [asdict(p) for p in self.pairs]}


@dataclass(frozen=True)
class Rules:
    """The thresholds of the three kinds (see the module docstring)."""

    phash_max: int = PHASH_MAX
    dhash_max: int = DHASH_MAX
    thumb_min: float = THUMB_MIN
    thumb_verify: float = THUMB_VERIFY
    margin_min: float = MARGIN_MIN
    cosine_min: float = COSINE_MIN

    def kind(self, e: dict[str, Any]) -> str | None:
        """The kind of a candidate pair from its evidence, or None when it is not a duplicate."""
        thumb, ph, dh = e.get("thumb"), e.get("phash"), e.get("dhash")
        hashed = ph is not None and ph <= self.phash_max and dh is not None and dh <= self.dhash_max
        if thumb is not None and (thumb >= self.thumb_min or (hashed and thumb >= self.thumb_verify)):
            return "exact" if ph == 0 and dh == 0 else "near-exact"
        if thumb is None and hashed:  # no thumbnail to check with: the hashes alone decide
            return "exact" if ph == 0 and dh == 0 else "near-exact"
        margin, cosine = e.get("margin"), e.get("cosine")
        if margin is not None and margin >= self.margin_min and cosine is not None and cosine >= self.cosine_min:
            return "near-duplicate"
        return None


# ---- pure algorithms on arrays ---------------------------------------------------------------------------------------

def _unique_pairs(i: np.ndarray, j: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pairs as (lo, hi), each once (keeping the largest first value), self-pairs dropped."""
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    keep = lo != hi
    lo, hi = lo[keep], hi[keep]
    values = tuple(np.asarray(v)[keep] for v in values)
    if not len(lo):
        return (lo, hi, *values)
    order = np.lexsort((-values[0], hi, lo)) if values else np.lexsort((hi, lo))
    lo, hi = lo[order], hi[order]
    first = np.r_[True, (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])]
    return (lo[first], hi[first], *(v[order][first] for v in values))


def embedding_candidates(X: np.ndarray, k: int = NEIGHBOURS, baseline: tuple[int, int] = BASELINE,
                         show_progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each image with its ``k`` nearest neighbours (centred cosine): ``(i, j, cosine, margin)``, i < j, unique.

    ``margin`` = cosine - (baseline_i + baseline_j) / 2, where an image's baseline is the mean cosine of its
    neighbours ranked ``baseline[0]``..``baseline[1]``. Centring (subtracting the collection's mean vector) removes
    the component every embedding of a backbone shares (post-ReLU CNN features all point into one orthant), which
    makes margins comparable across backbones; the thresholds were still measured with one (MobileNetV2 on the
    pomological sheets): a weak backbone (the demo's small CNN, trained on 300 drawings) gives look-alikes margins as
    high as copies get, so re-measure (``bench/explore_duplicates.py --backbone``) or raise ``margin_min`` for
    another backbone.
    """
    from iconoscope.explore.index import build_index

    X = np.asarray(X, dtype=np.float32)
    n = len(X)
    if n < 2:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.float32), np.zeros(0, np.float32)
    k = min(k, n - 1)
    index = build_index([str(x) for x in range(n)], X - X.mean(axis=0), show_progress=show_progress)
    ids, nbr, sims = index.knn_graph(k, show_progress=show_progress)
    rows = np.array([int(x) for x in ids], dtype=np.int64)
    order = np.argsort(rows)
    nbr = np.where(nbr >= 0, rows[np.clip(nbr, 0, None)], -1)[order]
    sims = sims[order]
    lo_rank, hi_rank = min(baseline[0], k), min(baseline[1], k)
    window = sims[:, lo_rank - 1:hi_rank]
    base = np.where(np.isfinite(window), window, np.nan)
    base = np.nan_to_num(np.nanmean(base, axis=1) if base.size else np.zeros(n), nan=0.0).astype(np.float32)
    i = np.repeat(np.arange(n), k)
    j = nbr.reshape(-1)
    cos = sims.reshape(-1)
    ok = j >= 0
    i, j, cos = i[ok], j[ok], cos[ok]
    margin = cos - (base[i] + base[j]) / 2
    lo, hi, margin, cos = _unique_pairs(i, j, margin, cos)
    return lo, hi, cos.astype(np.float32), margin.astype(np.float32)


def thumb_candidates(D: np.ndarray, thumb_min: float = THUMB_MIN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs whose thumbnail descriptors have cosine >= ``thumb_min``: ``(i, j, cosine)``."""
    from iconoscope.explore.index import build_index

    if len(D) < 2:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.float32)
    index = build_index([str(x) for x in range(len(D))], D)
    ids, i, j, s = index.similar_pairs(thumb_min)
    pos = np.array([int(x) for x in ids], dtype=np.int64)
    lo, hi, s = _unique_pairs(pos[i], pos[j], s)
    return lo, hi, s


def pair_table(n: int, phashes: np.ndarray | None = None, dhashes: np.ndarray | None = None,
               thumbs: np.ndarray | None = None, emb: tuple[np.ndarray, ...] | None = None,
               hashed: np.ndarray | None = None, rules: Rules = Rules()) -> dict[tuple[int, int], dict[str, Any]]:
    """Duplicate pairs ``(i, j)`` (i < j, positions in 0..n-1) -> evidence and ``kind``.

    ``phashes``/``dhashes`` (uint64) and ``thumbs`` (descriptors from :func:`thumb_descriptors`) belong to the
    positions ``hashed`` (default: all n; unreadable images have none). ``emb`` = ``(i, j, cosine, margin)`` from
    :func:`embedding_candidates`. Candidates come from hash radii, thumbnail cosine and embedding neighbours; every
    available signal is then filled in for each candidate and :meth:`Rules.kind` decides.
    """
    where = np.arange(n, dtype=np.int64) if hashed is None else np.asarray(hashed, dtype=np.int64)
    slot = np.full(n, -1, np.int64)
    slot[where] = np.arange(len(where))
    cand: dict[tuple[int, int], dict[str, Any]] = {}
    have_hash = phashes is not None and dhashes is not None
    if have_hash:
        ph = np.asarray(phashes, dtype=np.uint64)
        dh = np.asarray(dhashes, dtype=np.uint64)
        i, j, _ = hash_pairs(ph, rules.phash_max)
        keep = hamming(dh[i], dh[j]) <= rules.dhash_max
        for a, b in zip(where[i[keep]].tolist(), where[j[keep]].tolist(), strict=True):
            cand.setdefault((min(a, b), max(a, b)), {})
    if thumbs is not None:
        i, j, _ = thumb_candidates(thumbs, rules.thumb_min)
        for a, b in zip(where[i].tolist(), where[j].tolist(), strict=True):
            cand.setdefault((min(a, b), max(a, b)), {})
    if emb is not None:
        ei, ej, ecos, emargin = emb
        for a, b, c, m in zip(np.asarray(ei).tolist(), np.asarray(ej).tolist(), np.asarray(ecos).tolist(),
                              np.asarray(emargin).tolist(), strict=True):
            if a != b and a < n and b < n:
                e = cand.setdefault((min(a, b), max(a, b)), {})
                e["cosine"], e["margin"] = float(c), float(m)
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for (a, b), e in cand.items():
        sa, sb = slot[a], slot[b]
        if sa >= 0 and sb >= 0:
            if have_hash:
                e["phash"] = int(hamming(ph[sa], ph[sb]))
                e["dhash"] = int(hamming(dh[sa], dh[sb]))
            if thumbs is not None:
                e["thumb"] = float(thumbs[sa] @ thumbs[sb])
        kind = rules.kind(e)
        if kind is not None:
            e["kind"] = kind
            out[(a, b)] = e
    return out


def group_pairs(ids: Sequence[str], pairs: dict[tuple[int, int], dict[str, Any]],
                records: Sequence[str] | None = None, locations: Sequence[str] | None = None
                ) -> list[DuplicateGroup]:
    """Connected components of the pairs as DuplicateGroups (largest first)."""
    if not pairs:
        return []
    ij = np.array(list(pairs), dtype=np.int64)
    comps = connected_groups(len(ids), ij[:, 0], ij[:, 1])
    comp_of = {m: g for g, comp in enumerate(comps) for m in comp}
    by_group: dict[int, list[Pair]] = {}
    for (a, b), e in sorted(pairs.items()):
        r5 = [None if e.get(k) is None else round(float(e[k]), 5) for k in ("thumb", "cosine", "margin")]
        by_group.setdefault(comp_of[a], []).append(Pair(ids[a], ids[b], e["kind"], e.get("phash"), e.get("dhash"), *r5))
    out = []
    for g, comp in enumerate(comps):
        out.append(DuplicateGroup(
            id=g + 1, images=[ids[m] for m in comp],
            records=[records[m] if records is not None else ids[m] for m in comp],
            locations=[locations[m] if locations is not None else "" for m in comp],
            pairs=by_group.get(g, [])))
    return out


# ---- hashes and thumbnails of a workspace's images ---------------------------------------------------------------

def compute_hashes(locations: Sequence[str], workers: int | None = None, cache_dir: Path | None = None,
                   show_progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, str]]:
    """(pHash uint64 [n], dHash uint64 [n], thumbnails uint8 [n, 16, 16, 3], {position: failure reason})."""
    from tqdm import tqdm

    from iconoscope.learn.embed import default_workers, prepared_stream

    n = len(locations)
    ph = np.zeros(n, np.uint64)
    dh = np.zeros(n, np.uint64)
    th = np.zeros((n, THUMB_SIDE, THUMB_SIDE, 3), np.uint8)
    failures: dict[int, str] = {}
    workers = default_workers() if workers is None else workers
    P, D, pos = [], [], []

    def flush() -> None:
        if pos:
            ph[pos] = phash_from_gray(np.stack(P))
            dh[pos] = dhash_from_gray(np.stack(D))
            P.clear()
            D.clear()
            pos.clear()

    with tqdm(total=n, desc="hashes and thumbnails", unit="img", disable=not show_progress,
              dynamic_ncols=True) as bar:
        for idx, arr, reason in prepared_stream(HashPreparer(), list(locations), workers, cache_dir, chunksize=32):
            if arr is None:
                failures[idx] = reason or "unknown error"
            else:
                P.append(arr[0])
                D.append(arr[1])
                th[idx] = arr[2]
                pos.append(idx)
                if len(pos) >= 4096:
                    flush()
            bar.update(1)
    flush()
    return ph, dh, th, failures


def workspace_hashes(ws: Any, images: Sequence[str], locations: Sequence[str], show_progress: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, str]]:
    """Hashes and thumbnails for the given images, from the cache where the location is unchanged (cache updated)."""
    path = ws.cache_dir("hashes") / "hashes.parquet"
    cached: dict[str, tuple[str, int, int, bytes]] = {}
    if path.exists():
        try:
            t = pq.read_table(path, schema=HASH_SCHEMA)
            cached = {i: (loc, p, d, b) for i, loc, p, d, b in zip(
                t.column("image").to_pylist(), t.column("location").to_pylist(), t.column("phash").to_pylist(),
                t.column("dhash").to_pylist(), t.column("thumb").to_pylist(), strict=True)}
        except (pa.ArrowInvalid, OSError, KeyError):
            cached = {}  # a damaged (or older) cache is recomputed
    n = len(images)
    ph = np.zeros(n, np.uint64)
    dh = np.zeros(n, np.uint64)
    th = np.zeros((n, THUMB_SIDE, THUMB_SIDE, 3), np.uint8)
    todo = []
    size = THUMB_SIDE * THUMB_SIDE * 3
    for k, (img, loc) in enumerate(zip(images, locations, strict=True)):
        c = cached.get(img)
        if c is not None and c[0] == loc and c[3] is not None and len(c[3]) == size:
            ph[k] = np.int64(c[1]).view(np.uint64)
            dh[k] = np.int64(c[2]).view(np.uint64)
            th[k] = np.frombuffer(c[3], np.uint8).reshape(THUMB_SIDE, THUMB_SIDE, 3)
        else:
            todo.append(k)
    failures: dict[str, str] = {}
    if todo:
        p2, d2, t2, fails = compute_hashes([locations[k] for k in todo], cache_dir=ws.cache_dir("images"),
                                           show_progress=show_progress)
        for t in range(len(todo)):
            if t in fails:
                continue
            k = todo[t]
            ph[k], dh[k], th[k] = p2[t], d2[t], t2[t]
            cached[images[k]] = (locations[k], int(np.uint64(p2[t]).view(np.int64)),
                                 int(np.uint64(d2[t]).view(np.int64)), t2[t].tobytes())
        failures = {images[todo[t]]: r for t, r in fails.items()}
        rows = [{"image": i, "location": v[0], "phash": v[1], "dhash": v[2], "thumb": v[3]}
                for i, v in cached.items()]
        tmp = path.with_name(f"hashes.parquet.tmp-{os.getpid()}")
        pq.write_table(pa.Table.from_pylist(rows, schema=HASH_SCHEMA), tmp)
        os.replace(tmp, path)
    return ph, dh, th, failures


# ---- the library function -----------------------------------------------------------------------------------------

@dataclass
class DuplicateReport:
    groups: list[DuplicateGroup]
    images: int
    failures: dict[str, str]
    spec: str | None
    settings: dict[str, Any]


def embedding_pairs(ws: Any, spec: str | None, show_progress: bool = False
                    ) -> tuple[str, list[str], list[str], tuple[np.ndarray, ...]]:
    """:func:`embedding_candidates` over a backbone's embeddings: ``(spec, ids, records, (i, j, cosine, margin))``.

    Cached in ``vectors/{slug}/explore/duplicate_pairs.npz`` until the embeddings change.
    """
    from iconoscope.explore.vectors import _source_state, explore_dir, load_matrix, resolve_spec
    from iconoscope.learn.embed import EmbeddingStore

    spec = resolve_spec(ws, spec)
    key = json.dumps({"state": _source_state(EmbeddingStore(ws, spec).dir), "k": NEIGHBOURS,
                      "baseline": BASELINE, "v": 2})
    cache = explore_dir(ws, spec) / "duplicate_pairs.npz"
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    return spec, z["ids"].tolist(), z["records"].tolist(), (z["i"], z["j"], z["cos"], z["margin"])
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is recomputed
    spec, ids, records, X = load_matrix(ws, spec)
    i, j, cos, margin = embedding_candidates(X, show_progress=show_progress)
    tmp = cache.with_name(f"duplicate_pairs.tmp-{os.getpid()}.npz")
    np.savez(tmp, key=np.array(key), ids=np.array(ids, dtype=str), records=np.array(records, dtype=str), i=i, j=j,
             cos=cos, margin=margin)
    os.replace(tmp, cache)
    return spec, ids, records, (i, j, cos, margin)


def find_duplicates(ws: Any, spec: str | None = None, rules: Rules | None = None, use_hashes: bool = True,
                    use_embeddings: bool = True, show_progress: bool = False) -> DuplicateReport:
    """Duplicate groups over every image of the graph, with the settings used and the images that failed."""
    from iconoscope.errors import ConfigError
    from iconoscope.explore.vectors import image_locations, vector_specs

    rules = rules or Rules()
    if not use_hashes and not use_embeddings:
        raise ConfigError("duplicates: nothing to compare (both hashes and embeddings are switched off)")
    where = image_locations(ws)
    emb_data = None
    if use_embeddings and (spec or vector_specs(ws)):
        emb_data = embedding_pairs(ws, spec, show_progress)
    ids = sorted(where)
    record_of = {i: r for i, (r, _loc) in where.items()}
    if emb_data is not None:
        ids = sorted(set(ids) | set(emb_data[1]))
        for i, r in zip(emb_data[1], emb_data[2], strict=True):
            record_of.setdefault(i, r)
    pos = {i: k for k, i in enumerate(ids)}
    records = [record_of.get(i, i) for i in ids]
    locations = [where[i][1] if i in where else "" for i in ids]
    ph = dh = th = hashed = None
    failures: dict[str, str] = {}
    if use_hashes:
        readable = [k for k, loc in enumerate(locations) if loc]
        ph, dh, thumbs, failures = workspace_hashes(ws, [ids[k] for k in readable], [locations[k] for k in readable],
                                                    show_progress=show_progress)
        ok = np.array([ids[k] not in failures for k in readable], dtype=bool)
        hashed = np.array(readable, dtype=np.int64)[ok]
        ph, dh, th = ph[ok], dh[ok], thumb_descriptors(thumbs[ok])
    emb = None
    if emb_data is not None:
        _, e_ids, _, (i, j, cos, margin) = emb_data
        to_pos = np.array([pos[x] for x in e_ids], dtype=np.int64)
        emb = (to_pos[i], to_pos[j], cos, margin)
    pairs = pair_table(len(ids), ph, dh, th, emb, hashed=hashed, rules=rules)
    groups = group_pairs(ids, pairs, records, locations)
    settings = {**asdict(rules), "hashes": use_hashes, "embeddings": emb_data is not None}
    return DuplicateReport(groups, len(ids), failures, emb_data[0] if emb_data else None, settings)


def duplicate_groups(ws: Any, spec: str | None = None, rules: Rules | None = None, use_hashes: bool = True,
                     use_embeddings: bool = True) -> list[dict[str, Any]]:
    """The duplicate groups of a workspace, largest first, as plain dicts (what the web app and the demo show):
    ``{"id", "images", "records", "locations", "kinds", "pairs": [{a, b, kind, phash, dhash, thumb, cosine,
    margin}]}``."""
    report = find_duplicates(ws, spec, rules, use_hashes, use_embeddings)
    return [g.to_dict() for g in report.groups]


# ---- review files ---------------------------------------------------------------------------------------------------

CSV_COLUMNS = ("group", "size", "image", "record", "location", "other_image", "other_record", "kind", "phash",
               "dhash", "thumb", "cosine", "margin")


def review_rows(groups: Sequence[DuplicateGroup]) -> list[list[Any]]:
    """One row per pair (grouped), the columns of CSV_COLUMNS."""
    rows = []
    for g in groups:
        rec = dict(zip(g.images, g.records, strict=True))
        loc = dict(zip(g.images, g.locations, strict=True))
        for p in g.pairs:
            rows.append([g.id, len(g.images), p.a, rec.get(p.a, ""), loc.get(p.a, ""), p.b, rec.get(p.b, ""),
                         p.kind, p.phash, p.dhash, p.thumb, p.cosine, p.margin])
    return rows


def write_csv(groups: Sequence[DuplicateGroup], path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in review_rows(groups):
            w.writerow(["" if v is None else v for v in r])
    return path


def _thumb_uri(location: str, cache_dir: Path | None, side: int) -> str:
    from iconoscope.images import ImageError, load_image

    try:
        img = load_image(location, cache_dir, min_side=side)
    except ImageError:
        return ""
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def write_html(groups: Sequence[DuplicateGroup], path: Path | str, cache_dir: Path | None = None,
               thumb: int = 160, title: str = "Duplicate review") -> Path:
    """A self-contained page (thumbnails inlined) showing each group side by side with its pairs' evidence."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>"
             "body{font-family:sans-serif;margin:1em;background:#fafafa}section{background:#fff;margin:1em 0;"
             "padding:.6em;border:1px solid #ddd}figure{display:inline-block;margin:.3em;text-align:center;"
             "vertical-align:top;font-size:12px;max-width:180px;word-break:break-all}img{max-height:"
             f"{thumb}px;border:1px solid #999}}table{{font-size:12px;border-collapse:collapse}}td,th{{padding:"
             "2px 6px;border-bottom:1px solid #eee}</style></head><body>",
             f"<h1>{e(title)}</h1><p>{len(groups)} groups, {sum(len(g.images) for g in groups)} images.</p>"]
    for g in groups:
        parts.append(f"<section id='g{g.id}'><h2>Group {g.id} ({len(g.images)} images: "
                     f"{e(', '.join(g.kinds))})</h2>")
        for img, rec, loc in zip(g.images, g.records, g.locations, strict=True):
            uri = _thumb_uri(loc, cache_dir, thumb) if loc else ""
            pic = f"<img src='{uri}' alt='{e(img)}'>" if uri else "<div>(no image)</div>"
            parts.append(f"<figure>{pic}<figcaption>{e(img)}<br>record {e(rec)}</figcaption></figure>")
        parts.append("<table><tr><th>image</th><th>other</th><th>kind</th><th>pHash</th><th>dHash</th>"
                     "<th>thumbnail</th><th>cosine</th><th>margin</th></tr>")
        for p in g.pairs:
            cells = [p.a, p.b, p.kind, "" if p.phash is None else p.phash, "" if p.dhash is None else p.dhash,
                     *("" if v is None else f"{v:.4f}" for v in (p.thumb, p.cosine, p.margin))]
            parts.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
        parts.append("</table></section>")
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8")
    return path


def write_review(groups: Sequence[DuplicateGroup], path: Path | str, fmt: str | None = None,
                 cache_dir: Path | None = None) -> Path:
    """CSV or HTML by ``fmt`` or by the file suffix."""
    fmt = fmt or Path(path).suffix.lower().lstrip(".")
    if fmt == "csv":
        return write_csv(groups, path)
    if fmt in ("html", "htm"):
        return write_html(groups, path, cache_dir=cache_dir)
    raise IconoscopeError(f"{path}: unknown review format {fmt!r} (expected csv or html)")
