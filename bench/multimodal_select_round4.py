"""Issue 5, fourth attempt (session 8): variance, training length and the variety, on the development protocol.

Usage::

    nice -n 10 python bench/multimodal_select_round4.py [--work /tmp/iconoscope-mm-pom] [--candidates ...]

Where we are. ``eval artist_year --compare-single-input`` gives the metadata +4.9 ± 0.8 points of artist top-1
over the image-only model (goal: +5). Rounds 1-3 (README) tried the image features, modality balancing and the
variety name; none survived. This round tests three hypotheses that none of them touched, plus a check of the
baseline itself. Candidates and rule were committed before any of them ran.

Candidates (each changes both models where the setting applies to both, as ``eval --compare-single-input`` would):

* ``current``: ``artist_year`` as the README's table has it.
* ``NV``: no variety input. Issue 5 says "+ variety if it helps" and no round has measured the model without it:
  3,050 cultivars, 2,099 of them on one sheet, so in training most rows carry a value that identifies them (the
  network can memorise those rows through it) while in a test fold the value is mostly unseen (counts as missing).
  The image-only model has no metadata, so it is current's.
* ``EP60``: 60 epochs instead of 30 (the network's own default; 30 was chosen for CPU time, never compared). A
  model with more inputs may need longer to use them. Applies to both models.
* ``E5``: ``ensemble = 5``, a new option: five networks from seeds seed..seed+4, their probabilities averaged.
  The metadata branch reads sparse one-hots of thousands of values on 4,800 rows, a high-variance fit; averaging
  seeds removes variance that a single network's top-1 pays for. Applies to both models (the baseline is an
  ensemble of five image-only networks too).

Baseline check. The image-only model of ``eval --compare-single-input`` is trained with ``modality_dropout = 0.15``,
which for a model with one input hides that input on 15% of its training rows (it teaches the prior for a record
without an image). A stronger baseline would make every gain smaller, so it is measured too: ``md0``, the image-only
model with ``modality_dropout = 0``.

Rule (fixed before the runs). For every candidate, its dev gain = its multimodal artist top-1 minus that of the
*strongest* image-only model on the dev folds (by mean top-1) among: current's, ``md0`` and the candidate's own,
paired per inner fold. The candidate with the largest gain is adopted if (1) its gain is at least 0.003 above
current's gain, (2) its per-fold gain is above current's in at least 2 of the 3 inner folds, and (3) its
multimodal top-1 is not below current's. It is then run once with the paper's 5-fold protocol. If ``md0`` is the
strongest baseline, the 5-fold report gives the gain against it as well.

Outcome (session 8; README, multimodal section): md0 was weaker than current's baseline (0.7418 vs 0.7448); the rule
adopted NV (+0.0097 over current's gain, 3 of 3 inner folds); on the paper's 5 folds NV's multimodal model scored
0.8188 against current's 0.8185 (2 of 5 folds won, outer fold 0 lost), a gain of +0.0493 against +0.0489: failed.

Protocol: ``bench/multimodal_select.py``'s (its ``dev_setup``, ``run_model``, ``image_only``): outer fold 0's
training part of ``train artist_year``'s 5 folds, split again into 3 folds; outer fold 0's test part is never read.

Writes ``bench/results/multimodal_select_round4.json`` (per-model parts under ``bench/results/multimodal_select/``).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from multimodal_pomological import INPUTS as BASE_INPUTS  # noqa: E402  (artist_year's inputs, the README's)

CANDIDATES: dict[str, dict[str, Any]] = {
    "current": {},
    "NV": {"inputs": [i for i in BASE_INPUTS if i != "field:variety"]},
    "EP60": {"net": {"epochs": 60}},
    "E5": {"net": {"ensemble": 5}},
}
MARGIN = 0.003
OUT = ROOT / "bench" / "results"


def variant(ws: Any, project: Any, cand: dict[str, Any]) -> tuple[Any, Any]:
    """(the project with a candidate's settings, its raw data)."""
    from multimodal_select_text import candidate

    p = replace(project, net=replace(project.net, **cand.get("net", {})))
    return candidate(ws, p, cand.get("inputs", [i.text for i in project.inputs]))


def folds_of(r: dict[str, Any]) -> np.ndarray:
    return np.array(r["tasks"]["creator"]["folds_top1"])


def verdict(rows: dict[str, Any], baselines: dict[str, np.ndarray]) -> dict[str, Any]:
    """The pre-registered rule (module doc): gains against the strongest baseline, then the three conditions."""
    for r in rows.values():
        cands = {"current": baselines["current"], "md0": baselines["md0"], "own": np.array(r["image_only_folds"])}
        best = max(cands.items(), key=lambda kv: kv[1].mean())[0]
        gain = np.array(r["multimodal_folds"]) - cands[best]
        r.update(baseline=best, baseline_top1=float(cands[best].mean()), gain=float(gain.mean()),
                 gain_std=float(gain.std(ddof=1)), gain_folds=gain.tolist())
    cur = rows["current"]
    best = max(rows, key=lambda n: rows[n]["gain"])
    b = rows[best]
    wins = int(sum(g > c for g, c in zip(b["gain_folds"], cur["gain_folds"], strict=True)))
    adopt = (best != "current" and b["gain"] - cur["gain"] >= MARGIN and wins >= 2
             and b["multimodal"] >= cur["multimodal"])
    return {"best": best, "over_current": b["gain"] - cur["gain"], "wins": wins, "adopted": adopt, "margin": MARGIN}


def main() -> None:
    from multimodal_select import dev_parser, dev_setup, image_only, run_model

    args = dev_parser(__doc__, CANDIDATES).parse_args()
    from iconoscope.workspace import Workspace

    project, raw0, dev_targets, inner = dev_setup(args.work, args.name, args.dev_fold, args.inner)
    if [i.text for i in project.inputs] != BASE_INPUTS:
        raise SystemExit(f"{args.name}'s inputs are not the README's: {[i.text for i in project.inputs]}")
    path = OUT / "multimodal_select_round4.json"
    saved: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    rows: dict[str, Any] = saved.get("rows", {})
    base = image_only(project)
    md0 = replace(base, net=replace(base.net, modality_dropout=0.0))
    baselines = {"current": folds_of(run_model(base, raw0, dev_targets, inner, "current:image-only", "image-only")),
                 "md0": folds_of(run_model(md0, raw0, dev_targets, inner, "md0:image-only", "image-only"))}
    print("baselines: " + ", ".join(f"{k} {v.mean():.4f}" for k, v in baselines.items()), file=sys.stderr)
    for name in [c for c in args.candidates.split(",") if c]:
        with Workspace.open(args.work, read_only=True) as ws:
            p, raw = variant(ws, project, CANDIDATES[name])
        t = time.time()
        img = run_model(image_only(p), raw, dev_targets, inner, f"{name}:image-only", "image-only")
        mm = run_model(p, raw, dev_targets, inner, f"{name}:multimodal", "multimodal")
        rows[name] = {"settings": CANDIDATES[name], "image_only_folds": img["tasks"]["creator"]["folds_top1"],
                      "image_only": img["tasks"]["creator"]["top1"],
                      "multimodal_folds": mm["tasks"]["creator"]["folds_top1"],
                      "multimodal": mm["tasks"]["creator"]["top1"], "decade": mm["tasks"]["date"]["top1"],
                      "image_only_decade": img["tasks"]["date"]["top1"],
                      "artist_macro_f1": mm["tasks"]["creator"]["macro_f1"],
                      "minutes": (img["seconds"] + mm["seconds"]) / 60}
        print(f"{name}: artist top-1 image-only {rows[name]['image_only']:.4f}, multimodal "
              f"{rows[name]['multimodal']:.4f} ({time.time() - t:.0f} s)", file=sys.stderr, flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"rows": rows}, indent=1, default=float), encoding="utf-8")
    rule = verdict(rows, baselines) if set(rows) == set(CANDIDATES) else None
    print(f"baselines (dev artist top-1): current {baselines['current'].mean():.4f} "
          f"({', '.join(f'{v:.4f}' for v in baselines['current'])}), md0 {baselines['md0'].mean():.4f} "
          f"({', '.join(f'{v:.4f}' for v in baselines['md0'])})")
    print("| candidate | image-only (own) | multimodal | strongest baseline | gain | per inner fold | decade "
          "| artist macro F1 | minutes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        gain = (f"**{r['gain']:+.4f} ± {r['gain_std']:.4f}** | " + ", ".join(f"{g:+.4f}" for g in r["gain_folds"])
                if "gain" in r else "- | -")
        print(f"| {name} | {r['image_only']:.4f} | {r['multimodal']:.4f} | {r.get('baseline', '-')} | {gain} | "
              f"{r['decade']:.4f} | {r['artist_macro_f1']:.4f} | {r['minutes']:.1f} |")
    if rule is not None:
        print(f"rule: best {rule['best']}, gain {rule['over_current']:+.4f} over current's, {rule['wins']} of 3 "
              f"inner folds won: {'ADOPT' if rule['adopted'] else 'do not adopt'}")
        path.write_text(json.dumps({"rows": rows, "baselines": {k: v.tolist() for k, v in baselines.items()},
                                    "rule": rule}, indent=1, default=float), encoding="utf-8")


if __name__ == "__main__":
    main()
