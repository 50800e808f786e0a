"""Vector search at scale: kNN over N x 512 vectors and the near-duplicate pass, each against brute force.

Usage (README "Exploration" reports the figures)::

    nice -n 10 python bench/vectors.py                       # 1,000,000 x 512: exact vs our IVF index
    nice -n 10 python bench/vectors.py --n 100000 --backends exact,ivf,hnsw,usearch   # the backend choice

The vectors are realistic rather than uniform: a mixture of 2,000 Gaussian clusters with Zipf-like sizes in a
96-d latent space, mapped linearly to 512-d plus isotropic noise and L2-normalised (embeddings of real collections
have a low intrinsic dimension and very uneven cluster sizes). Queries are held-out draws from the same mixture.
0.5 % of the vectors are planted near-copies (cosine 0.95-0.995) of earlier ones, so the near-duplicate pass has
something to find. The pass timed by default (``--pass knn``) is the one ``iconoscope duplicates`` runs on
embeddings: every vector's 15 nearest neighbours on centred vectors (``VectorIndex.knn_graph``); ``--pass range``
times the all-pairs-above-a-cosine pass (``VectorIndex.similar_pairs``) instead. Ground truth is brute force over
every row (or, above ``--brute-full-max``, over a random sample of rows, its time extrapolated linearly: brute force
is rows x N dot products).

For each backend: build time, index memory, single-query latency (one query at a time, as a web request), batch
throughput, recall@10 against exact search. ``ivf`` is ``iconoscope.explore.index.VectorIndex`` as shipped (nprobe
calibrated at build for recall@10 >= 0.95); ``hnsw`` is faiss IndexHNSWFlat (M=32, efConstruction=64, efSearch=64);
``usearch`` is usearch's HNSW (connectivity 16, expansion 128/64).

Peak memory at 1M was 7.5 GiB, measured (the vectors, 2 GB, a centred copy and one index at a time). Writes
``bench/results/vectors.json`` and prints tables.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from iconoscope.explore.duplicates import NEIGHBOURS  # noqa: E402
from iconoscope.explore.index import PAIR_NPROBE, ExactBackend, VectorIndex  # noqa: E402


def rss_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ---- data ------------------------------------------------------------------------------------------------------------

def mixture(d: int = 512, clusters: int = 2000, latent: int = 96, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, clusters + 1) ** 0.7
    return {"centers": rng.standard_normal((clusters, latent)).astype(np.float32), "w": w / w.sum(),
            "spread": rng.uniform(0.5, 1.0, clusters).astype(np.float32),
            "A": (rng.standard_normal((latent, d)) / np.sqrt(latent)).astype(np.float32)}


def draw(m: dict[str, np.ndarray], n: int, seed: int, out: np.ndarray | None = None,
         chunk: int = 100_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = m["A"].shape[1]
    X = np.empty((n, d), np.float32) if out is None else out
    for s in range(0, n, chunk):
        k = min(chunk, n - s)
        lab = rng.choice(len(m["w"]), k, p=m["w"])
        z = m["centers"][lab] + m["spread"][lab, None] * rng.standard_normal((k, m["centers"].shape[1]),
                                                                              dtype=np.float32)
        x = z @ m["A"] + 0.15 * rng.standard_normal((k, d), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        X[s:s + k] = x
    return X


def plant_copies(X: np.ndarray, frac: float, seed: int) -> np.ndarray:
    """Overwrite ``frac`` of the rows with noisy copies of earlier rows; returns the (source, copy) pairs."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    copies = np.sort(rng.choice(np.arange(1, n), int(n * frac), replace=False))
    sources = (rng.random(len(copies)) * copies).astype(np.int64)  # an earlier row: every prefix holds whole pairs
    sigma = rng.uniform(0.1, 0.33, len(copies)).astype(np.float32)
    for s in range(0, len(copies), 50_000):
        c, src, sg = copies[s:s + 50_000], sources[s:s + 50_000], sigma[s:s + 50_000]
        x = X[src] + sg[:, None] * rng.standard_normal((len(c), d), dtype=np.float32) / np.sqrt(d)
        X[c] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.stack([sources, copies], axis=1)


# ---- kNN ----------------------------------------------------------------------------------------------------------

def exact_view(X: np.ndarray) -> ExactBackend:
    """Brute force over X without copying it."""
    b = ExactBackend(X.shape[1])
    b.keys = np.arange(len(X), dtype=np.int64)
    b.X = X
    return b


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(g, t)) / len(t) for g, t in zip(got, truth, strict=True)]))


def latency_ms(fn: Any, Q: np.ndarray) -> tuple[float, float]:
    times = []
    for q in Q:
        t = time.perf_counter()
        fn(q[None])
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times)), float(np.percentile(times, 95))


def make_backend(name: str, X: np.ndarray, k: int) -> tuple[Any, float, dict[str, Any]]:
    """Build ``name`` over X: (search(Q) -> [nq, k] row ids, index GiB, parameters)."""
    import faiss

    if name == "exact":
        b = exact_view(X)
        return (lambda Q: b.search(Q, k)[1]), 0.0, {"note": "searches the vectors in place"}
    if name in ("ivf", "ivf-sq8", "ivf-fp16"):
        idx = VectorIndex(X.shape[1], kind="ivf", codec={"ivf": "flat", "ivf-sq8": "sq8", "ivf-fp16": "fp16"}[name])
        idx.add([str(i) for i in range(len(X))], X, show_progress=True)
        ivf = idx.backend.index  # size from its parts: serialising it would hold a second copy in memory
        mem = (ivf.ntotal * (ivf.code_size + 8) + ivf.nlist * ivf.d * 4) / 2**30
        return (lambda Q: idx.search_keys(Q, k)[1]), mem, {"nlist": idx.backend.nlist, "nprobe": idx.backend.nprobe,
                                                           "codec": idx.codec, "calibration": idx.calibration}
    if name == "hnsw":
        h = faiss.IndexHNSWFlat(X.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        h.hnsw.efConstruction = 64
        h.add(X)
        h.hnsw.efSearch = 64
        return (lambda Q: h.search(Q, k)[1]), faiss.serialize_index(h).nbytes / 2**30, {
            "M": 32, "efConstruction": 64, "efSearch": 64}
    if name == "usearch":
        from usearch.index import Index

        u = Index(ndim=X.shape[1], metric="ip", dtype="f32", connectivity=16, expansion_add=128,
                  expansion_search=64)
        u.add(np.arange(len(X)), X, threads=os.cpu_count() or 2)
        return (lambda Q: np.asarray(u.search(Q, k, threads=os.cpu_count() or 2).keys).reshape(len(Q), -1)), \
            u.memory_usage / 2**30, {"connectivity": 16, "expansion_add": 128, "expansion_search": 64}
    raise ValueError(f"unknown backend {name!r}")


def bench_backend(name: str, X: np.ndarray, Q: np.ndarray, truth: np.ndarray, n_latency: int) -> dict[str, Any]:
    rss0 = rss_gib()
    t0, c0 = time.perf_counter(), time.process_time()
    search, mem, params = make_backend(name, X, truth.shape[1])
    build, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    n_latency = min(n_latency, 30 if name == "exact" else n_latency, len(Q))
    med, p95 = latency_ms(search, Q[:n_latency])
    t = time.perf_counter()
    got = search(Q)
    qps = len(Q) / (time.perf_counter() - t)
    res = {"backend": name, "n": len(X), "build_s": round(build, 2), "build_cpu_s": round(build_cpu, 1),
           "index_gib": round(mem, 3),
           "rss_delta_gib": round(rss_gib() - rss0, 3), "latency_ms_median": round(med, 3),
           "latency_ms_p95": round(p95, 3), "queries_for_latency": n_latency, "batch_qps": round(qps, 1),
           "recall_at_10": round(recall(got, truth), 4), **params}
    print(json.dumps(res), flush=True)
    return res


# ---- near-duplicate pass ------------------------------------------------------------------------------------------

def brute_pairs(X: np.ndarray, threshold: float, rows: np.ndarray | None = None) -> tuple[set[tuple[int, int]], float]:
    """Pairs (i < j) with cosine >= threshold among rows (all when None) x all columns; and the seconds taken."""
    b = exact_view(X)
    Q = X if rows is None else X[rows]
    t = time.perf_counter()
    r, c, _ = b.range_search(Q, threshold)
    secs = time.perf_counter() - t
    r = r if rows is None else rows[r]
    pairs = {(int(min(a, bb)), int(max(a, bb))) for a, bb in zip(r.tolist(), c.tolist(), strict=True) if a != bb}
    return pairs, secs


def bench_dups(X: np.ndarray, planted: np.ndarray, threshold: float, brute_full_max: int, sample: int,
               seed: int) -> dict[str, Any]:
    n = len(X)
    rss0 = rss_gib()
    t = time.perf_counter()
    idx = VectorIndex(X.shape[1], kind="auto")
    idx.add([str(i) for i in range(n)], X, show_progress=True)
    build = time.perf_counter() - t
    t = time.perf_counter()
    ids, i, j, _s = idx.similar_pairs(threshold, show_progress=True)  # nprobe: PAIR_NPROBE, as shipped
    ann_s = time.perf_counter() - t
    pos = np.array([int(x) for x in ids], dtype=np.int64)
    a, b = pos[i], pos[j]
    found = {(int(min(x, y)), int(max(x, y))) for x, y in zip(a.tolist(), b.tolist(), strict=True)}
    mem = rss_gib() - rss0
    idx_kind = idx.backend_kind
    pair_nprobe = min(PAIR_NPROBE, idx.backend.nprobe) if idx_kind == "ivf" else None
    del idx
    if n <= brute_full_max:
        truth, brute_s = brute_pairs(X, threshold)
        scope, measured = "all rows", brute_s
        recall_pairs = len(found & truth) / max(1, len(truth))
        precision_pairs = len(found & truth) / max(1, len(found))
    else:
        rows = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
        truth, measured = brute_pairs(X, threshold, rows)
        brute_s = measured * n / sample
        scope = f"{sample} sampled rows, extrapolated x{n / sample:.0f}"
        rowset = set(rows.tolist())
        mine = {p for p in found if p[0] in rowset or p[1] in rowset}
        recall_pairs = len(mine & truth) / max(1, len(truth))
        precision_pairs = len(mine & truth) / max(1, len(mine))
    in_prefix = planted[(planted[:, 1] < n)]
    planted_hit = np.mean([(int(s), int(c)) in found for s, c in in_prefix.tolist()]) if len(in_prefix) else 1.0
    res = {"n": n, "threshold": threshold, "index": idx_kind, "pair_nprobe": pair_nprobe,
           "index_build_s": round(build, 1), "ann_pass_s": round(ann_s, 1), "ann_total_s": round(build + ann_s, 1),
           "pairs_found": len(found), "brute_force_s": round(brute_s, 1), "brute_force_measured_s": round(measured, 1),
           "brute_force_scope": scope, "speedup_vs_brute": round(brute_s / max(1e-9, build + ann_s), 2),
           "pair_recall_vs_brute": round(recall_pairs, 4), "pair_precision_vs_brute": round(precision_pairs, 4),
           "planted_pairs": len(in_prefix), "planted_recall": round(float(planted_hit), 4),
           "rss_delta_gib": round(mem, 3)}
    print(json.dumps(res), flush=True)
    return res


def bench_knn_pass(X: np.ndarray, planted: np.ndarray, brute_full_max: int, sample: int, seed: int,
                   k: int = NEIGHBOURS) -> dict[str, Any]:
    """The embedding near-duplicate pass the library runs (``duplicates.embedding_candidates``): every vector's k
    nearest neighbours on centred vectors, from the index (IVF above 20k, probing PAIR_NPROBE lists), vs brute force."""
    n = len(X)
    rss0 = rss_gib()
    Xc = X - X.mean(axis=0)
    t, c0 = time.perf_counter(), time.process_time()
    idx = VectorIndex(X.shape[1], kind="auto")
    idx.add([str(i) for i in range(n)], Xc, show_progress=True)
    build = time.perf_counter() - t
    t = time.perf_counter()
    ids, nbr, _ = idx.knn_graph(k, show_progress=True)
    graph_s = time.perf_counter() - t
    ann_cpu = time.process_time() - c0  # CPU seconds, all threads: on a shared machine wall time depends on the load
    pos = np.array([int(x) for x in ids], dtype=np.int64)
    graph = np.empty_like(nbr)
    graph[pos] = np.where(nbr >= 0, pos[np.clip(nbr, 0, None)], -1)
    kind, nprobe = idx.backend_kind, (min(PAIR_NPROBE, idx.backend.nprobe) if idx.backend_kind == "ivf" else None)
    mem = rss_gib() - rss0
    del idx
    Xc /= np.linalg.norm(Xc, axis=1, keepdims=True)  # in place: brute force on the same unit vectors
    Xn = Xc
    rows = np.arange(n) if n <= brute_full_max else np.sort(np.random.default_rng(seed).choice(n, sample,
                                                                                             replace=False))
    b = exact_view(Xn)
    t = time.perf_counter()
    truth = b.search(Xn[rows], k + 1)[1]
    measured = time.perf_counter() - t
    brute_s = measured * n / len(rows)
    rec = np.mean([len(np.intersect1d(tr[tr != r][:k], graph[r])) / k for tr, r in zip(truth, rows, strict=True)])
    in_prefix = planted[planted[:, 1] < n]
    src, cp = in_prefix[:, 0], in_prefix[:, 1]
    hit = (graph[src] == cp[:, None]).any(axis=1) | (graph[cp] == src[:, None]).any(axis=1)
    res = {"n": n, "k": k, "index": kind, "pair_nprobe": nprobe, "index_build_s": round(build, 1),
           "graph_s": round(graph_s, 1), "ann_total_s": round(build + graph_s, 1), "ann_cpu_s": round(ann_cpu, 1),
           "brute_force_s": round(brute_s, 1),
           "brute_force_measured_s": round(measured, 1),
           "brute_force_scope": "all rows" if len(rows) == n else f"{len(rows)} sampled rows, extrapolated "
                                                                   f"x{n / len(rows):.0f}",
           "speedup_vs_brute": round(brute_s / max(1e-9, build + graph_s), 2),
           "recall_at_k_vs_brute": round(float(rec), 4), "planted_pairs": len(in_prefix),
           "planted_in_graph": round(float(hit.mean()) if len(hit) else 1.0, 4), "rss_delta_gib": round(mem, 3)}
    print(json.dumps(res), flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="vectors in the kNN benchmark")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--latency-queries", type=int, default=300)
    ap.add_argument("--backends", default="exact,ivf", help="comma-separated: exact, ivf, ivf-sq8, ivf-fp16, hnsw, "
                    "usearch")
    ap.add_argument("--dup-n", default="100000,1000000", help="sizes of the near-duplicate pass ('' to skip)")
    ap.add_argument("--pass", dest="passes", default="knn", help="near-duplicate passes to time: knn (the k-nearest-"
                    "neighbour graph the duplicates verb uses), range (all pairs above --threshold), or both")
    ap.add_argument("--threshold", type=float, default=0.92, help="cosine of a near-duplicate (range pass)")
    ap.add_argument("--brute-full-max", type=int, default=150_000, help="above this, brute force on a row sample")
    ap.add_argument("--brute-sample", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "vectors.json")
    args = ap.parse_args()
    dup_ns = [int(x) for x in args.dup_n.split(",") if x.strip()]
    n_total = max([args.n, *dup_ns])
    m = mixture(args.dim, seed=args.seed)
    t = time.perf_counter()
    X = draw(m, n_total, seed=args.seed + 1)
    planted = plant_copies(X, 0.005, seed=args.seed + 2)
    Q = draw(m, args.queries, seed=args.seed + 3)
    print(f"data: {n_total} x {args.dim} in {time.perf_counter() - t:.1f} s, rss {rss_gib():.2f} GiB; "
          f"threads {os.cpu_count()}", flush=True)
    out: dict[str, Any] = {"n": args.n, "dim": args.dim, "queries": args.queries, "cpu_count": os.cpu_count(),
                           "loadavg_start": os.getloadavg(), "knn": [], "near_duplicates": []}
    Xk = X[:args.n]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if backends:
        t = time.perf_counter()
        truth = exact_view(Xk).search(Q, 10)[1]
        out["ground_truth_s"] = round(time.perf_counter() - t, 1)
    for name in backends:
        out["knn"].append(bench_backend(name, Xk, Q, truth, args.latency_queries))
    passes = {"both": ("knn", "range")}.get(args.passes, (args.passes,))
    out["near_duplicate_knn"] = []
    for n in dup_ns:
        if "knn" in passes:
            out["near_duplicate_knn"].append(bench_knn_pass(X[:n], planted, args.brute_full_max, args.brute_sample,
                                                            args.seed))
        if "range" in passes:
            out["near_duplicates"].append(bench_dups(X[:n], planted, args.threshold, args.brute_full_max,
                                                     args.brute_sample, args.seed))
    out["peak_rss_gib"] = round(peak_gib(), 2)
    out["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")
    exact = next((r for r in out["knn"] if r["backend"] == "exact"), None)
    if out["knn"]:
        print(f"\nkNN over {args.n:,} x {args.dim} ({args.queries} held-out queries, recall@10 vs exact)")
        print("backend | build s (CPU s) | index GiB | latency ms (median/p95) | x faster than exact | batch q/s | "
              "recall@10")
    for r in out["knn"]:
        ratio = exact["latency_ms_median"] / r["latency_ms_median"] if exact else float("nan")
        print(f"{r['backend']} | {r['build_s']} ({r.get('build_cpu_s')}) | {r['index_gib']} | "
              f"{r['latency_ms_median']}/{r['latency_ms_p95']} | "
              f"{ratio:.1f} | {r['batch_qps']} | {r['recall_at_10']}")
    if out["near_duplicate_knn"]:
        print(f"\nnear-duplicate pass: the {NEIGHBOURS}-nearest-neighbour graph on centred vectors (duplicates verb)")
        print("n | index | ANN total s (CPU s) | brute force s | speed-up | recall@k vs brute | planted pairs in graph")
        for r in out["near_duplicate_knn"]:
            print(f"{r['n']:,} | {r['index']} (nprobe {r['pair_nprobe']}) | {r['ann_total_s']} "
                  f"({r.get('ann_cpu_s')}) | {r['brute_force_s']} "
                  f"({r['brute_force_scope']}) | {r['speedup_vs_brute']} | {r['recall_at_k_vs_brute']} | "
                  f"{r['planted_in_graph']}")
    if out["near_duplicates"]:
        print(f"\nnear-duplicate pass: all pairs with cosine >= {args.threshold} (range search)")
        print("n | ANN total s | brute force s | speed-up | pair recall vs brute | planted recall | pairs")
    for r in out["near_duplicates"]:
        print(f"{r['n']:,} | {r['ann_total_s']} | {r['brute_force_s']} ({r['brute_force_scope']}) | "
              f"{r['speedup_vs_brute']} | {r['pair_recall_vs_brute']} | {r['planted_recall']} | {r['pairs_found']}")
    print(f"peak RSS {out['peak_rss_gib']} GiB; wrote {args.out}")


if __name__ == "__main__":
    main()
