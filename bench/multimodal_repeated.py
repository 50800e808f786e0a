"""Issue 5: the paper's protocol repeated with other fold assignments, for a more precise estimate of the gain.

Usage::

    nice -n 10 python bench/multimodal_repeated.py [--work /tmp/iconoscope-mm-pom] [--seeds 1,2]

Why. The artist gain of ``eval artist_year --compare-single-input`` is +4.9 ± 0.8 points over 5 folds (seed 0), and
its t interval (+3.9 to +5.9) contains the goal of +5: one 5-fold split cannot say on which side of the goal the
gain lies. Repeated cross-validation (the same protocol with other fold assignments, then averaged; Bouckaert &
Frank 2004) estimates the same quantity with less variance. Nothing is tuned: ``artist_year``'s settings are kept
and only ``seed`` changes, which draws new folds (iterative stratification is a function of the labels and the
seed), new initial weights and new hidden inputs, for the multimodal model and its image-only baseline alike.

Fixed before the runs (session 8), and reported whatever the outcome: repetitions = seed 0 (the README's table,
``bench/results/multimodal_pomological.json``) plus seeds 1 and 2, no more; the estimate is the mean of the 15
paired fold gains; its spread is the standard deviation of the 3 repetitions' means. This was decided after
seeing seed 0's +4.9 and four rounds that did not change it (README), which is why it is fixed here first.

Outcome (session 8; README, multimodal section): gains +0.0489 (seed 0), +0.0529 (1), +0.0566 (2); the estimate is
+0.0528, the repetitions' means spread by 0.0039.

Each seed runs ``bench/multimodal_pomological.py --name artist_year_seedS --param seed=S`` (the workspace's vectors
are reused). Writes ``bench/results/multimodal_repeated.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"


def result(seed: int) -> dict:
    name = "" if seed == 0 else f"_artist_year_seed{seed}"
    return json.loads((OUT / f"multimodal_pomological{name}.json").read_text(encoding="utf-8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/iconoscope-mm-pom"))
    ap.add_argument("--seeds", default="1,2", help="the repetitions to run besides seed 0 (the README's table)")
    ap.add_argument("--table", action="store_true", help="only print the table from the results already there")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if not args.table:
        for s in seeds:
            if not (OUT / f"multimodal_pomological_artist_year_seed{s}.json").is_file():
                subprocess.run([sys.executable, str(ROOT / "bench" / "multimodal_pomological.py"), "--work",
                                str(args.work), "--name", f"artist_year_seed{s}", "--param", f"seed={s}"], check=True)
    rows, gains = [], []
    print("| repetition (seed) | image-only artist top-1 | multimodal artist top-1 | gain, mean ± sd over 5 folds "
          "| per fold |")
    print("|---|---|---|---|---|")
    for s in [0, *seeds]:
        r = result(s)
        folds = r["artist_top1_folds"]
        g = np.array(r["artist_top1_gain_folds"])
        gains.append(g)
        rows.append({"seed": s, "image_only": float(np.mean(folds["image-only"])),
                     "multimodal": float(np.mean(folds["multimodal"])), "gain": float(g.mean()),
                     "gain_std": float(g.std(ddof=1)), "gain_folds": g.tolist()})
        print(f"| {s} | {rows[-1]['image_only']:.4f} | {rows[-1]['multimodal']:.4f} | {g.mean():+.4f} ± "
              f"{g.std(ddof=1):.4f} | " + ", ".join(f"{x:+.3f}" for x in g) + " |")
    means = np.array([g.mean() for g in gains])
    pooled = float(np.concatenate(gains).mean())
    spread = float(means.std(ddof=1)) if len(means) > 1 else float("nan")
    print(f"repeated {len(gains)} x 5-fold: gain {pooled:+.4f} (mean of {sum(len(g) for g in gains)} paired fold "
          f"gains); sd of the repetitions' means {spread:.4f}; image-only "
          f"{np.mean([r['image_only'] for r in rows]):.4f}, multimodal {np.mean([r['multimodal'] for r in rows]):.4f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "multimodal_repeated.json").write_text(json.dumps(
        {"rows": rows, "gain": pooled, "repetition_sd": spread}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
