"""A cosine-similarity vector index: exact below a size, faiss IVF-Flat above; persisted; incremental add/delete.

Why these two backends (measured with ``bench/vectors.py`` on the 2-core CI machine, see the README):

* **exact** (a float32 matrix and one BLAS product per query batch) is exact by construction and fastest to build;
  below ``EXACT_BELOW`` vectors it answers a single query in a few milliseconds, so an ANN index would only add
  recall loss.
* **ivf** (``faiss.IndexIVFFlat``, inner product on L2-normalised vectors) is used above that: on 100k clustered
  512-d vectors (``bench/vectors.py --n 100000 --backends exact,ivf,hnsw,usearch``, 2 shared cores) it built 2.6x
  faster than faiss HNSW and 6.4x faster than usearch's HNSW (14 / 37 / 121 CPU seconds) and answered a query in
  0.26 ms (median) at recall@10 0.95, where HNSW took 0.38 ms at 0.998 and usearch 0.61 ms at 0.995: HNSW buys
  recall above the target, IVF buys build time, deletes natively (``remove_ids``: HNSW in faiss cannot) and adds
  without a rebuild. At 1M vectors it answers in 1.2 ms at recall@10 0.96 (README, "Exploration").
  Its one tuning knob, ``nprobe``, is calibrated on the collection itself when the index is trained: the smallest
  value whose recall@10 against exact search, on a sample of the indexed vectors, reaches ``target_recall``.

Vectors are L2-normalised on the way in, so scores are cosine similarities in [-1, 1]. Ids are strings (image ids);
each gets a stable int64 key. ``kind="auto"`` switches to IVF when the index grows past ``exact_below`` and back to
exact when it shrinks below half of it.

On disk (a folder, written atomically: a new folder is filled, then swapped in)::

    meta.json      kind, dim, count, nlist, nprobe, next key, the state of the source it mirrors
    ids.parquet    key (int64), id (string), fp (float64 fingerprint of the vector, to notice changed vectors)
    exact.npy      float32 [n, dim] rows in ids.parquet order        (kind exact)
    ivf.faiss      the faiss index, keys as faiss ids                  (kind ivf)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from iconoscope.errors import IconoscopeError

FORMAT = 1
EXACT_BELOW = 20_000
TARGET_RECALL = 0.95
PAIR_NPROBE = 8  # lists probed per vector by the near-duplicate pass (measured in bench/vectors.py)
KINDS = ("auto", "exact", "ivf")
CODECS = ("flat", "sq8", "fp16")  # how IVF stores vectors: float32, 8-bit or 16-bit scalar quantisation

_FP_SEED = 20240611


def normalize(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32, a copy); zero rows stay zero."""
    X = np.array(X, dtype=np.float32, copy=True, ndmin=2)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    X /= norms
    return X


def fingerprints(X: np.ndarray) -> np.ndarray:
    """A float64 per row that changes when the row changes (a random projection): cheap change detection."""
    if len(X) == 0:
        return np.zeros(0, np.float64)
    r = np.random.default_rng(_FP_SEED).standard_normal(X.shape[1])
    out = np.empty(len(X), np.float64)
    for s in range(0, len(X), 65536):  # in float64 a whole 1M x 512 matrix would be 4 GB
        out[s:s + 65536] = np.asarray(X[s:s + 65536], dtype=np.float64) @ r
    return out


def topk(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the positions and values of the ``k`` largest scores, best first."""
    k = min(k, S.shape[1])
    if k == 0:
        return np.zeros((len(S), 0), np.int64), np.zeros((len(S), 0), np.float32)
    part = np.argpartition(-S, k - 1, axis=1)[:, :k] if k < S.shape[1] else np.tile(np.arange(S.shape[1]),
                                                                                     (len(S), 1))
    vals = np.take_along_axis(S, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


# ---- backends: int64 keys -> unit vectors ---------------------------------------------------------------------------

class ExactBackend:
    """All vectors in one matrix; search is a blocked matrix product (exact)."""

    kind = "exact"

    def __init__(self, dim: int):
        self.dim = dim
        self.X = np.zeros((0, dim), np.float32)
        self.keys = np.zeros(0, np.int64)
        self._pos: dict[int, int] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def _positions(self) -> dict[int, int]:
        if self._pos is None:
            self._pos = {int(k): i for i, k in enumerate(self.keys)}
        return self._pos

    def add(self, keys: np.ndarray, X: np.ndarray) -> None:
        self.X = np.concatenate([self.X, X.astype(np.float32, copy=False)]) if len(self.X) else np.array(X)
        self.keys = np.concatenate([self.keys, keys.astype(np.int64)])
        self._pos = None

    def remove(self, keys: np.ndarray) -> None:
        keep = ~np.isin(self.keys, keys)
        if not keep.all():
            self.X, self.keys = self.X[keep], self.keys[keep]
            self._pos = None

    def get(self, keys: Sequence[int]) -> np.ndarray:
        pos = self._positions()
        return self.X[[pos[int(k)] for k in keys]]

    def all(self) -> tuple[np.ndarray, np.ndarray]:
        return self.keys, self.X

    def iter_blocks(self, block: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for s in range(0, len(self.keys), block):
            yield self.keys[s:s + block], self.X[s:s + block]

    def _block(self, cap: int) -> int:
        """Query rows per matrix product, so a block of scores stays near 256 MB whatever the index size."""
        return int(max(1, min(cap, (1 << 26) // max(len(self.keys), 1))))

    def search(self, Q: np.ndarray, k: int, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.keys)
        block = self._block(block)
        K = np.full((len(Q), k), -1, np.int64)
        S = np.full((len(Q), k), -np.inf, np.float32)
        if n == 0:
            return S, K
        for s in range(0, len(Q), block):
            pos, vals = topk(Q[s:s + block] @ self.X.T, k)
            K[s:s + block, :pos.shape[1]] = self.keys[pos]
            S[s:s + block, :pos.shape[1]] = vals
        return S, K

    def range_search(self, Q: np.ndarray, threshold: float, block: int = 1024
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All (query row, key, score) with score >= threshold."""
        block = self._block(block)
        rows, keys, scores = [], [], []
        for s in range(0, len(Q), block):
            sims = Q[s:s + block] @ self.X.T
            r, c = np.nonzero(sims >= threshold)
            rows.append(r + s)
            keys.append(self.keys[c])
            scores.append(sims[r, c])
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        return np.concatenate(rows).astype(np.int64), np.concatenate(keys), np.concatenate(scores)

    def save(self, folder: Path) -> dict[str, Any]:
        np.save(folder / "exact.npy", self.X)
        return {}

    @classmethod
    def load(cls, folder: Path, dim: int, keys: np.ndarray, meta: dict[str, Any]) -> ExactBackend:
        b = cls(dim)
        b.X = np.load(folder / "exact.npy")
        b.keys = keys
        if b.X.shape != (len(keys), dim):
            raise IconoscopeError(f"{folder}: exact.npy has shape {b.X.shape}, expected ({len(keys)}, {dim}); "
                                  "rebuild the index ('iconoscope index --rebuild')")
        return b


class IVFBackend:
    """faiss IndexIVFFlat on inner product, with a hash-table direct map so vectors can be read back by key."""

    kind = "ivf"

    def __init__(self, dim: int, nlist: int, nprobe: int = 16, codec: str = "flat"):
        import faiss

        if codec not in CODECS:
            raise IconoscopeError(f"index codec {codec!r}: expected one of {', '.join(CODECS)}")
        self.dim = dim
        self.nlist = nlist
        self.codec = codec
        quantizer = faiss.IndexFlatIP(dim)
        if codec == "flat":
            self.index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            qtype = {"sq8": faiss.ScalarQuantizer.QT_8bit, "fp16": faiss.ScalarQuantizer.QT_fp16}[codec]
            self.index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, qtype, faiss.METRIC_INNER_PRODUCT)
            self.index.by_residual = False  # codes decode on their own: vectors can be read back list by list
        self.index.own_fields = True
        quantizer.this.disown()
        self.index.set_direct_map_type(faiss.DirectMap.Hashtable)
        self.index.nprobe = nprobe
        self.trained_on = 0

    def _decode(self, codes: np.ndarray, n: int) -> np.ndarray:
        if self.codec == "flat":
            return np.asarray(codes).view(np.float32).reshape(n, self.dim)
        return np.asarray(self.index.sq.decode(np.ascontiguousarray(codes).reshape(n, -1)), dtype=np.float32)

    @property
    def nprobe(self) -> int:
        return int(self.index.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self.index.nprobe = int(max(1, min(value, self.nlist)))

    @staticmethod
    def choose_nlist(n: int) -> int:
        """About 4 sqrt(n) lists (the faiss guideline), with at least 39 training points per list."""
        return int(max(1, min(int(4 * np.sqrt(max(n, 1))), n // 39, 65536)))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def train(self, X: np.ndarray, seed: int = 0, max_points: int = 64) -> None:
        rng = np.random.default_rng(seed)
        cap = self.nlist * max_points
        sample = X if len(X) <= cap else X[np.sort(rng.choice(len(X), cap, replace=False))]
        self.index.train(normalize(sample))
        self.trained_on = len(X)

    def add(self, keys: np.ndarray, X: np.ndarray) -> None:
        self.index.add_with_ids(np.ascontiguousarray(X, dtype=np.float32), np.ascontiguousarray(keys, np.int64))

    def remove(self, keys: np.ndarray) -> None:
        if len(keys):
            self.index.remove_ids(np.ascontiguousarray(keys, np.int64))

    def get(self, keys: Sequence[int]) -> np.ndarray:
        return np.stack([self.index.reconstruct(int(k)) for k in keys]) if len(keys) else np.zeros((0, self.dim),
                                                                                                   np.float32)

    def all(self) -> tuple[np.ndarray, np.ndarray]:
        from faiss.contrib.inspect_tools import get_invlist

        keys, vecs = [], []
        for lst in range(self.nlist):
            ids, codes = get_invlist(self.index.invlists, lst)
            if len(ids):
                keys.append(np.asarray(ids, np.int64))
                vecs.append(self._decode(codes, len(ids)))
        if not keys:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return np.concatenate(keys), np.concatenate(vecs)

    def iter_blocks(self, block: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(keys, vectors) a run of inverted lists at a time (about ``block`` vectors): no full copy in memory."""
        from faiss.contrib.inspect_tools import get_invlist

        keys: list[np.ndarray] = []
        vecs: list[np.ndarray] = []
        size = 0
        for lst in range(self.nlist):
            ids, codes = get_invlist(self.index.invlists, lst)
            if len(ids):
                keys.append(np.asarray(ids, np.int64))
                vecs.append(self._decode(codes, len(ids)))
                size += len(ids)
            if size >= block or (lst == self.nlist - 1 and size):
                yield np.concatenate(keys), np.concatenate(vecs)
                keys, vecs, size = [], [], 0

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self) == 0:
            return np.full((len(Q), k), -np.inf, np.float32), np.full((len(Q), k), -1, np.int64)
        S, K = self.index.search(np.ascontiguousarray(Q, dtype=np.float32), k)
        S[K < 0] = -np.inf
        return S, K

    def range_search(self, Q: np.ndarray, threshold: float, block: int = 8192
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, keys, scores = [], [], []
        # faiss returns scores > radius for inner product; step just below the threshold to keep ">="
        radius = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
        for s in range(0, len(Q), block):
            lims, D, found = self.index.range_search(np.ascontiguousarray(Q[s:s + block], dtype=np.float32), radius)
            counts = np.diff(lims).astype(np.int64)
            rows.append(np.repeat(np.arange(len(counts), dtype=np.int64) + s, counts))
            keys.append(found.astype(np.int64))
            scores.append(D.astype(np.float32))
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        return np.concatenate(rows), np.concatenate(keys), np.concatenate(scores)

    def save(self, folder: Path) -> dict[str, Any]:
        import faiss

        faiss.write_index(self.index, str(folder / "ivf.faiss"))
        return {"nlist": self.nlist, "nprobe": self.nprobe, "trained_on": self.trained_on, "codec": self.codec}

    @classmethod
    def load(cls, folder: Path, dim: int, keys: np.ndarray, meta: dict[str, Any]) -> IVFBackend:
        import faiss

        b = cls.__new__(cls)
        b.dim = dim
        b.index = faiss.read_index(str(folder / "ivf.faiss"))  # returns the concrete IndexIVFFlat
        b.nlist = int(b.index.nlist)
        b.codec = str(meta.get("codec", "flat"))
        b.trained_on = int(meta.get("trained_on", 0))
        if b.index.ntotal != len(keys) or b.index.d != dim:
            raise IconoscopeError(f"{folder}: ivf.faiss holds {b.index.ntotal} vectors of dim {b.index.d}, "
                                  f"ids.parquet {len(keys)} of dim {dim}; rebuild ('iconoscope index --rebuild')")
        return b


Backend = ExactBackend | IVFBackend


# ---- the index ------------------------------------------------------------------------------------------------------

class VectorIndex:
    """String ids -> unit vectors, searchable by cosine similarity. See the module docstring for the choices."""

    def __init__(self, dim: int, kind: str = "auto", exact_below: int = EXACT_BELOW,
                 target_recall: float = TARGET_RECALL, nprobe: int | None = None, codec: str = "flat"):
        if kind not in KINDS:
            raise IconoscopeError(f"index kind {kind!r}: expected one of {', '.join(KINDS)}")
        self.dim = int(dim)
        self.kind = kind
        self.exact_below = int(exact_below)
        self.target_recall = float(target_recall)
        self.fixed_nprobe = nprobe
        if codec not in CODECS:
            raise IconoscopeError(f"index codec {codec!r}: expected one of {', '.join(CODECS)}")
        self.codec = codec
        self.backend: Backend = ExactBackend(self.dim)
        self._key_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._fp: dict[int, float] = {}
        self.next_key = 0
        self.source_state: Any = None
        self.calibration: dict[str, Any] = {}

    # ---- sizes and ids
    def __len__(self) -> int:
        return len(self._key_of)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._key_of

    @property
    def ids(self) -> list[str]:
        return list(self._key_of)

    @property
    def backend_kind(self) -> str:
        return self.backend.kind

    def keys_of(self, ids: Sequence[str]) -> np.ndarray:
        missing = [i for i in ids if i not in self._key_of]
        if missing:
            raise KeyError(f"not in the index: {missing[:5]}")
        return np.array([self._key_of[i] for i in ids], dtype=np.int64)

    def ids_of(self, keys: np.ndarray) -> list[str]:
        return [self._id_of[int(k)] for k in keys]

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored (normalised) vectors of ``ids``."""
        return self.backend.get(self.keys_of(ids))

    # ---- changes
    def add(self, ids: Sequence[str], X: np.ndarray, show_progress: bool = False) -> int:
        """Insert or replace; returns how many ids were new. Re-adding an unchanged vector is a no-op."""
        ids = list(ids)
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] != len(ids):
            raise IconoscopeError(f"index add: {len(ids)} ids but vectors of shape {X.shape}")
        if len(ids) and X.shape[1] != self.dim:
            raise IconoscopeError(f"index add: vectors of dim {X.shape[1]}, the index holds dim {self.dim}")
        if len(set(ids)) != len(ids):
            raise IconoscopeError("index add: the same id twice in one batch")
        fps = fingerprints(X)
        replace, new_rows = [], []
        for row, (i, fp) in enumerate(zip(ids, fps, strict=True)):
            key = self._key_of.get(i)
            if key is None:
                new_rows.append(row)
            elif not np.isclose(self._fp[key], fp, rtol=1e-9, atol=1e-9):
                replace.append(row)
        if replace:
            self.backend.remove(np.array([self._key_of[ids[r]] for r in replace], np.int64))
        rows = sorted(replace + new_rows)
        if not rows:
            return 0
        for r in new_rows:
            self._key_of[ids[r]] = self.next_key
            self._id_of[self.next_key] = ids[r]
            self.next_key += 1
        keys = np.array([self._key_of[ids[r]] for r in rows], np.int64)
        for r, k in zip(rows, keys, strict=True):
            self._fp[int(k)] = float(fps[r])
        # vectors are normalised batch by batch as they go in: no second full-size copy of a big collection
        Xsel = X if len(rows) == len(X) else X[rows]
        if self.backend.kind == "exact" and self._wants_ivf(len(self)):
            old_keys, old_X = self.backend.all()
            if len(old_keys):
                keys, Xsel = np.concatenate([old_keys, keys]), np.concatenate([old_X, Xsel])
            self._build_ivf(keys, Xsel, show_progress)
        else:
            self._add_batched(keys, Xsel, show_progress)
            self._maybe_retrain(show_progress)
        return len(new_rows)

    def remove(self, ids: Sequence[str]) -> int:
        """Delete ids (unknown ones are ignored); returns how many were removed."""
        keys = [self._key_of.pop(i) for i in ids if i in self._key_of]
        for k in keys:
            self._id_of.pop(k, None)
            self._fp.pop(k, None)
        if keys:
            self.backend.remove(np.array(keys, np.int64))
            if self.backend.kind == "ivf" and self.kind == "auto" and len(self) < self.exact_below // 2:
                k_all, X_all = self.backend.all()
                self.backend = ExactBackend(self.dim)
                self.backend.add(k_all, X_all)
        return len(keys)

    def sync(self, ids: Sequence[str], X: np.ndarray, show_progress: bool = False) -> dict[str, int]:
        """Make the index hold exactly ``ids`` -> ``X`` (adds new, replaces changed, deletes gone)."""
        keep = set(ids)
        removed = self.remove([i for i in self._key_of if i not in keep])
        before = len(self)
        changed = self.add(ids, X, show_progress=show_progress)
        return {"added": changed, "removed": removed, "total": len(self), "kept": before}

    def _wants_ivf(self, n: int) -> bool:
        return self.kind == "ivf" or (self.kind == "auto" and n >= self.exact_below)

    def _build_ivf(self, keys: np.ndarray, X: np.ndarray, show_progress: bool) -> None:
        """A new IVF index trained on (a sample of) X, then filled; X need not be normalised yet."""
        backend = IVFBackend(self.dim, IVFBackend.choose_nlist(len(X)), codec=self.codec)
        backend.train(X)
        self.backend = backend
        self._add_batched(keys, X, show_progress)
        self.calibrate()

    def _maybe_retrain(self, show_progress: bool) -> None:
        """IVF lists trained on few points grow too long as the index grows: retrain past 4x the training size."""
        b = self.backend
        if isinstance(b, IVFBackend) and len(b) > 4 * max(b.trained_on, 1) and \
                IVFBackend.choose_nlist(len(b)) > 2 * b.nlist:
            keys, X = b.all()
            self._build_ivf(keys, X, show_progress)

    def _add_batched(self, keys: np.ndarray, X: np.ndarray, show_progress: bool, batch: int = 65536) -> None:
        from tqdm import tqdm

        with tqdm(total=len(keys), desc="index add", unit="vec", disable=not show_progress or len(keys) < batch,
                  dynamic_ncols=True) as bar:
            for s in range(0, len(keys), batch):
                self.backend.add(keys[s:s + batch], normalize(X[s:s + batch]))
                bar.update(min(batch, len(keys) - s))

    def calibrate(self, n_queries: int = 200, k: int = 10, seed: int = 0) -> dict[str, Any]:
        """IVF: the smallest nprobe whose recall@k vs exact search (indexed vectors as queries) >= target."""
        b = self.backend
        if not isinstance(b, IVFBackend):
            return {}
        if self.fixed_nprobe:
            b.nprobe = self.fixed_nprobe
            self.calibration = {"nprobe": b.nprobe, "fixed": True}
            return self.calibration
        all_keys = np.fromiter(self._key_of.values(), np.int64, len(self._key_of))
        rng = np.random.default_rng(seed)
        qkeys = np.sort(rng.choice(all_keys, min(n_queries, len(all_keys)), replace=False))
        Q = b.get(qkeys)
        # exact top-(k+1) streamed over the inverted lists: no full copy of the collection in memory
        best_s = np.full((len(Q), 0), -np.inf, np.float32)
        best_k = np.zeros((len(Q), 0), np.int64)
        for keys, X in b.iter_blocks(65536):
            S = np.concatenate([best_s, Q @ X.T], axis=1)
            K = np.concatenate([best_k, np.broadcast_to(keys, (len(Q), len(keys)))], axis=1)
            pos, best_s = topk(S, k + 1)
            best_k = np.take_along_axis(K, pos, axis=1)

        def without_self(K: np.ndarray) -> list[np.ndarray]:
            # a query that is an indexed vector always finds itself: leave it out, or recall looks better than it is
            return [row[(row != q) & (row >= 0)][:k] for row, q in zip(K, qkeys, strict=True)]

        gt = without_self(best_k)
        chosen, recall = b.nlist, 1.0
        nprobe = 1
        while nprobe <= b.nlist:
            b.nprobe = nprobe
            got = without_self(b.search(Q, k + 1)[1])
            recall = float(np.mean([len(np.intersect1d(g, r)) / max(len(g), 1) for g, r in zip(gt, got,
                                                                                              strict=True)]))
            if recall >= self.target_recall:
                chosen = nprobe
                break
            nprobe *= 2
        b.nprobe = min(chosen, b.nlist)
        self.calibration = {"nprobe": b.nprobe, "recall_at_k": round(recall, 4), "k": k, "queries": len(qkeys),
                            "target": self.target_recall}
        return self.calibration

    # ---- queries
    def search(self, Q: np.ndarray, k: int = 10) -> list[list[tuple[str, float]]]:
        """For each query row: up to ``k`` (id, cosine) pairs, best first."""
        S, K = self.search_keys(Q, k)
        out = []
        for srow, krow in zip(S, K, strict=True):
            out.append([(self._id_of[int(key)], float(s)) for s, key in zip(srow, krow, strict=True) if key >= 0])
        return out

    def search_keys(self, Q: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        Qn = normalize(Q)
        if Qn.shape[1] != self.dim:
            raise IconoscopeError(f"query of dim {Qn.shape[1]}, the index holds dim {self.dim}")
        return self.backend.search(Qn, int(k))

    def similar_pairs(self, threshold: float, show_progress: bool = False, block: int = 8192,
                      nprobe: int | None = PAIR_NPROBE) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Every pair of indexed vectors with cosine >= ``threshold``, each once.

        Returns ``(ids, i, j, score)`` with ``i < j`` positions into ``ids``. The vectors are visited block by block
        (an IVF index one run of inverted lists at a time, so no second copy of the collection is made). With IVF a
        pair is seen when one of its vectors lies in a list the other probes: near-duplicates (high cosine) almost
        always do, which ``bench/vectors.py`` measures against brute force. ``nprobe`` (IVF; None = the calibrated
        kNN value) can be far smaller than kNN needs, for the same reason: the pass then costs a few list scans per
        vector.
        """
        from tqdm import tqdm

        if isinstance(self.backend, IVFBackend) and nprobe:
            saved = self.backend.nprobe
            self.backend.nprobe = min(nprobe, saved)
            try:
                return self.similar_pairs(threshold, show_progress, block, nprobe=None)
            finally:
                self.backend.nprobe = saved

        all_keys = np.sort(np.fromiter(self._key_of.values(), np.int64, len(self._key_of)))
        n = len(all_keys)
        codes, scores_out = [], []
        with tqdm(total=n, desc="near-duplicate pass", unit="vec", disable=not show_progress,
                  dynamic_ncols=True) as bar:
            for keys, X in self.backend.iter_blocks(block):
                rows, rkeys, scores = self.backend.range_search(X, threshold)
                a = np.searchsorted(all_keys, keys[rows])
                b = np.searchsorted(all_keys, rkeys)
                keep = a != b
                lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
                codes.append(lo * n + hi)
                scores_out.append(scores[keep])
                bar.update(len(keys))
        ids = self.ids_of(all_keys)
        if not codes:
            return ids, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        code = np.concatenate(codes)
        uniq, first = np.unique(code, return_index=True)  # a pair found from both sides counts once
        return ids, uniq // n, uniq % n, np.concatenate(scores_out)[first]

    def knn_graph(self, k: int, nprobe: int | None = PAIR_NPROBE, show_progress: bool = False, block: int = 8192
                  ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every indexed vector's ``k`` nearest other vectors: ``(ids, neighbours [N, k] positions, cosines)``.

        Rows follow ``ids``; missing neighbours (tiny indexes, IVF lists too short) are -1 with cosine -inf. IVF
        probes ``nprobe`` lists per vector (None = the calibrated kNN value): the duplicate pass needs the close
        neighbours only, and ``bench/vectors.py`` measures what the cheaper probe loses against brute force.
        """
        from tqdm import tqdm

        saved = self.backend.nprobe if isinstance(self.backend, IVFBackend) else None
        if saved is not None and nprobe:
            self.backend.nprobe = min(nprobe, saved)
        all_keys = np.sort(np.fromiter(self._key_of.values(), np.int64, len(self._key_of)))
        n = len(all_keys)
        nbr = np.full((n, k), -1, np.int64)
        sims = np.full((n, k), -np.inf, np.float32)
        try:
            with tqdm(total=n, desc="neighbour graph", unit="vec", disable=not show_progress,
                      dynamic_ncols=True) as bar:
                for keys, X in self.backend.iter_blocks(block):
                    S, K = self.backend.search(X, k + 1)
                    rows = np.searchsorted(all_keys, keys)
                    self_hit = keys[:, None] == K
                    # drop the vector itself (or, when it was not returned, the last neighbour)
                    drop = np.where(self_hit.any(axis=1), self_hit.argmax(axis=1), k)
                    keep = np.ones_like(self_hit)
                    keep[np.arange(len(keys)), drop] = False
                    K2 = K[keep].reshape(len(keys), k)
                    S2 = S[keep].reshape(len(keys), k)
                    valid = K2 >= 0
                    nbr[rows] = np.where(valid, np.searchsorted(all_keys, np.where(valid, K2, 0)), -1)
                    sims[rows] = np.where(valid, S2, -np.inf)
                    bar.update(len(keys))
        finally:
            if saved is not None:
                self.backend.nprobe = saved
        return self.ids_of(all_keys), nbr, sims

    # ---- persistence
    def save(self, folder: Path | str) -> None:
        """Write to ``folder`` atomically (a crash leaves the previous index readable)."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        ids = list(self._key_of)
        keys = np.array([self._key_of[i] for i in ids], np.int64)
        if self.backend.kind == "exact":  # rows of exact.npy must follow ids.parquet
            b_keys, b_X = self.backend.all()
            order = np.argsort(b_keys)
            rank = np.searchsorted(b_keys[order], keys)
            self.backend.keys, self.backend.X = keys, b_X[order[rank]]
            self.backend._pos = None  # type: ignore[union-attr]
        extra = self.backend.save(tmp)
        table = pa.table({"key": pa.array(keys, pa.int64()), "id": pa.array(ids, pa.string()),
                          "fp": pa.array([self._fp[int(k)] for k in keys], pa.float64())})
        pq.write_table(table, tmp / "ids.parquet")
        meta = {"format": FORMAT, "kind": self.kind, "backend": self.backend.kind, "dim": self.dim,
                "count": len(ids), "next_key": self.next_key, "exact_below": self.exact_below,
                "target_recall": self.target_recall, "fixed_nprobe": self.fixed_nprobe, "codec": self.codec,
                "calibration": self.calibration, "source_state": self.source_state, **extra}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        old = folder.with_name(f"{folder.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        if old.exists():
            shutil.rmtree(old)

    @classmethod
    def load(cls, folder: Path | str) -> VectorIndex:
        folder = Path(folder)
        if not (folder / "meta.json").exists() and folder.with_name(f"{folder.name}.old").exists():
            folder = folder.with_name(f"{folder.name}.old")  # a crash between the two renames of save()
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IconoscopeError(f"{folder}: no index here (run 'iconoscope index')") from None
        except json.JSONDecodeError as e:
            raise IconoscopeError(f"{folder}/meta.json: corrupt ({e}); rebuild with 'iconoscope index --rebuild'") \
                from None
        if meta.get("format") != FORMAT:
            raise IconoscopeError(f"{folder}: index format {meta.get('format')} (expected {FORMAT}); rebuild it")
        idx = cls(meta["dim"], kind=meta["kind"], exact_below=meta["exact_below"],
                  target_recall=meta["target_recall"], nprobe=meta.get("fixed_nprobe"), codec=meta.get("codec", "flat"))
        table = pq.read_table(folder / "ids.parquet")
        keys = table.column("key").to_numpy().astype(np.int64)
        ids = table.column("id").to_pylist()
        fps = table.column("fp").to_numpy()
        idx._key_of = dict(zip(ids, (int(k) for k in keys), strict=True))
        idx._id_of = {int(k): i for i, k in zip(ids, keys, strict=True)}
        idx._fp = {int(k): float(f) for k, f in zip(keys, fps, strict=True)}
        idx.next_key = int(meta["next_key"])
        idx.source_state = meta.get("source_state")
        idx.calibration = meta.get("calibration") or {}
        loader: Callable[..., Backend] = ExactBackend.load if meta["backend"] == "exact" else IVFBackend.load
        idx.backend = loader(folder, idx.dim, keys, meta)
        return idx

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": len(self), "dim": self.dim, "kind": self.kind, "backend": self.backend.kind}
        if isinstance(self.backend, IVFBackend):
            out.update(nlist=self.backend.nlist, nprobe=self.backend.nprobe, codec=self.backend.codec, **{
                f"calibration_{k}": v for k, v in self.calibration.items() if k != "nprobe"})
        return out


def build_index(ids: Sequence[str], X: np.ndarray, kind: str = "auto", exact_below: int = EXACT_BELOW,
                nprobe: int | None = None, codec: str = "flat", show_progress: bool = False) -> VectorIndex:
    """A new index over ``ids`` -> ``X``."""
    X = np.asarray(X, dtype=np.float32)
    idx = VectorIndex(X.shape[1] if X.ndim == 2 else 0, kind=kind, exact_below=exact_below, nprobe=nprobe,
                      codec=codec)
    idx.add(ids, X, show_progress=show_progress)
    return idx
