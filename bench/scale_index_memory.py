"""Vector index memory per image, measured, for the 25M-image arithmetic in docs/scaling.md.

Builds, on the same clustered vectors, the index the exploration stage uses (faiss IVF-Flat, the peer) and IVF-PQ
variants (``m`` sub-quantizers of 8 bits: ``m`` bytes per vector), serializes them, and reports bytes per vector
and recall@10 against exact search, so the extrapolation to 25M vectors rests on measured sizes, not on the formula
alone (the formula: IVF-PQ costs ``m`` code bytes + 8 id bytes per vector, plus ``nlist * d * 4`` for centroids).

Usage: python bench/scale_index_memory.py [--n 100000] [--dim 512]
Prints a table and writes bench/results/scale_index_memory.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 200 centres: a stand-in for image embeddings, which are far from uniform."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, dim)).astype(np.float32)
    X = centres[rng.integers(0, 200, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def main() -> None:
    import faiss

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=500)
    args = ap.parse_args()
    faiss.omp_set_num_threads(2)
    X = clustered(args.n, args.dim)
    Q = clustered(args.queries, args.dim, seed=1)
    nlist = int(4 * np.sqrt(args.n))
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(X)
    _, truth = exact.search(Q, 10)

    specs = [("IVF-Flat (exploration stage)", f"IVF{nlist},Flat"), ("IVF-PQ m=64", f"IVF{nlist},PQ64"),
             ("IVF-PQ m=32", f"IVF{nlist},PQ32"), ("IVF-PQ m=16", f"IVF{nlist},PQ16")]
    rows = []
    print(f"{args.n:,} vectors of {args.dim} dims, nlist {nlist}, nprobe 16; raw float32 = "
          f"{args.n * args.dim * 4 / 2**20:.0f} MiB")
    for name, factory in specs:
        index = faiss.index_factory(args.dim, factory, faiss.METRIC_INNER_PRODUCT)
        t0 = time.perf_counter()
        index.train(X[: min(len(X), 50 * nlist)])
        index.add(X)
        build_s = time.perf_counter() - t0
        faiss.extract_index_ivf(index).nprobe = 16
        _, found = index.search(Q, 10)
        recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))
        size = len(faiss.serialize_index(index))
        centroids = nlist * args.dim * 4
        per_vec = (size - centroids) / args.n
        rows.append({"index": name, "factory": factory, "bytes": size, "bytes_per_vector": round(per_vec, 1),
                     "centroid_bytes": centroids, "recall_at_10": round(recall, 3), "build_s": round(build_s, 1),
                     "gib_for_25M": round((per_vec * 25e6 + centroids) / 2**30, 2)})
        r = rows[-1]
        print(f"  {name:<30} {size / 2**20:8.1f} MiB  {per_vec:7.1f} B/vector  recall@10 {recall:.3f}  "
              f"-> 25M vectors: {r['gib_for_25M']} GiB", flush=True)
    out = ROOT / "bench" / "results" / "scale_index_memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"n": args.n, "dim": args.dim, "nlist": nlist, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
