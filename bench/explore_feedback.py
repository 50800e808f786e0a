"""Relevance feedback on the pomological collection with a simulated curator: rounds of 5 clicks to precision@50.

Usage::

    nice -n 10 python bench/explore_feedback.py [--data ../shared/data] [--genera Mangifera,Diospyros,Persea]

The curator wants every sheet of one rare genus. They start from one sheet of it (the seed), then, each round, look
at the top of the current ranked list, skip what they already labelled and click the first 5 sheets: relevant
(same genus) or not. Labels come from the genus column of ``records.csv``. After each round the collection is
re-ranked and precision@50 is measured on the list the curator sees (their own positives included, as a saved
category would be). We report how many rounds it takes to reach precision@50 >= 0.9, and how many of the 50 were
found by the model rather than clicked. Each genus is run from ``--seeds`` different seed sheets.

Peer in the same run: the same curator with a kNN ranking (cosine to the mean of the positives; negatives unused),
the "more like these" of a plain similarity search.

Embeddings: the shipped MobileNetV2 (``--backbone`` to change), cached under ``--work`` (shared with
``bench/explore_duplicates.py``). Writes ``bench/results/explore_feedback.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from iconoscope.explore.feedback import feedback_scores  # noqa: E402
from iconoscope.explore.index import normalize  # noqa: E402

DEFAULT_BACKBONE = ("torchscript:{data}/weights/mobilenet_v2_quantized_torchscript/mobilenet_quantized.pt"
                    "?layer=pool")


def knn_scores(X: np.ndarray, positives: list[int], negatives: list[int]) -> np.ndarray:
    Xn = normalize(X)
    return Xn @ normalize(Xn[positives].mean(axis=0, keepdims=True))[0]


def simulate(X: np.ndarray, relevant: np.ndarray, seed_row: int, method: str, clicks: int = 5, k: int = 50,
             target: float = 0.9, max_rounds: int = 25) -> dict:
    pos, neg = [seed_row], []
    history = []
    reached = None
    for rnd in range(max_rounds + 1):
        scores = feedback_scores(X, pos, neg) if method == "svm" else knn_scores(X, pos, neg)
        scores = scores.copy()
        scores[pos] = np.inf  # the curator's positives head the list, their negatives leave it
        scores[neg] = -np.inf
        order = np.argsort(-scores, kind="stable")
        top = order[:k]
        p = float(relevant[top].mean())
        found_by_model = int(relevant[top].sum()) - len(pos) if len(pos) <= k else 0
        history.append({"round": rnd, "precision_at_50": round(p, 3), "positives_clicked": len(pos),
                        "negatives_clicked": len(neg), "relevant_found_by_model": max(0, found_by_model)})
        if p >= target and reached is None:
            reached = rnd
            break
        labeled = set(pos) | set(neg)
        shown = [int(i) for i in order if int(i) not in labeled][:clicks]
        pos += [i for i in shown if relevant[i]]
        neg += [i for i in shown if not relevant[i]]
    return {"rounds_to_target": reached, "history": history}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--genera", default="Mangifera,Diospyros,Persea")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--work", type=Path, default=Path("/tmp/iconoscope-dups"))
    ap.add_argument("--backbone", default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "explore_feedback.json")
    args = ap.parse_args()
    spec = args.backbone or DEFAULT_BACKBONE.format(data=args.data)
    pom = args.data / "pomological"
    with open(pom / "records.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    paths = [pom / "images" / r["image"] for r in rows]
    genus = np.array([r["genus"] for r in rows])
    from iconoscope.workspace import slug

    cached = sorted(args.work.glob(f"emb-{slug(spec)[-60:]}-*.npy"))
    if cached:  # the duplicate benchmark's cache starts with the originals, in records.csv order
        X = np.load(cached[0])[:len(paths)]
    else:
        from PIL import Image

        from iconoscope.learn.backbones import get_backbone

        bb = get_backbone(spec)
        X = np.concatenate([bb.embed([Image.open(p).convert("RGB") for p in paths[s:s + 64]])
                            for s in range(0, len(paths), 64)])
    t0 = time.perf_counter()
    out: dict = {"backbone": spec, "images": len(paths), "clicks_per_round": 5, "target_precision_at_50": 0.9,
                 "genera": {}}
    print("genus (images) | method | rounds to p@50>=0.9: median [min-max] | reached | p@50 at round 0 | "
          "relevant in top 50 found by the model (median, when reached)")
    for g in [x.strip() for x in args.genera.split(",") if x.strip()]:
        relevant = genus == g
        n_rel = int(relevant.sum())
        seeds = np.random.default_rng(0).choice(np.flatnonzero(relevant), min(args.seeds, n_rel), replace=False)
        out["genera"][g] = {"images": n_rel}
        for method in ("svm", "knn"):
            runs = [simulate(X, relevant, int(s), method) for s in seeds]
            rounds = [r["rounds_to_target"] for r in runs]
            ok = [r for r in rounds if r is not None]
            by_model = [r["history"][-1]["relevant_found_by_model"] for r in runs if r["rounds_to_target"] is not None]
            summary = {"rounds_median": float(np.median(ok)) if ok else None, "rounds_min": min(ok) if ok else None,
                       "rounds_max": max(ok) if ok else None, "reached": f"{len(ok)}/{len(runs)}",
                       "p50_round0_median": float(np.median([r["history"][0]["precision_at_50"] for r in runs])),
                       "found_by_model_median": float(np.median(by_model)) if by_model else None, "runs": runs}
            out["genera"][g][method] = summary
            print(f"{g} ({n_rel}) | {method} | {summary['rounds_median']} [{summary['rounds_min']}-"
                  f"{summary['rounds_max']}] | {summary['reached']} | {summary['p50_round0_median']:.2f} | "
                  f"{summary['found_by_model_median']}", flush=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
