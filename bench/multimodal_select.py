"""Choose how to train the pomological multimodal model *without looking at the evaluation folds* (issue 5).

Usage::

    nice -n 10 python bench/multimodal_select.py [--work /tmp/iconoscope-mm-pom] [--candidates current,A,B,AB,C]
        [--dev-fold 0] [--inner 3]
    python bench/multimodal_select.py --table      # the table from the results already computed

Candidates can be run in two processes (``--candidates current,A`` and ``--candidates B,AB,C``); a model whose
settings equal one already computed (A's image-only model is current's) is read, not retrained. The run stores the
minutes of each model (the machine is shared: they depend on its load).

Problem. ``eval artist_year --compare-single-input`` gives the metadata a gain of +4.9 ± 0.8 points of artist top-1
over the image-only model (goal: +5). A known cause: trained jointly, the stronger input (the image) dominates and
the metadata branch is under-trained ("modality competition": Wang et al. 2020, gradient blending; Peng et al.
2022, OGM-GE).

Development protocol. The workspace is the one ``bench/multimodal_pomological.py`` builds (its vectors and its
``[classifiers.artist_year]``). The 5 outer folds are those of ``iconoscope train artist_year`` (iterative
stratification over both tasks' labels, seed 0). Only the *training part of outer fold* ``--dev-fold`` is used:
it is split again into ``--inner`` folds the same way (same function, same seed), and for each candidate the
image-only and the multimodal model are cross-validated on those inner folds. The outer test part of
``--dev-fold`` is never read (its rows have no inner fold; checked). The class sets (the 10 artists with >= 50
works, the 7 decades with >= 10 sheets) are those of ``train``, counted on all labels as ``train`` counts them.

Candidates (fixed before any of them was run, session 3):

* ``current``: the config as it is (``modality_dropout = 0.15``, no auxiliary heads, ``input_min_count = 1``);
* ``A``: auxiliary unimodal heads, ``unimodal_loss = 0.5`` (each task also gets a head on the image branch alone
  and one on the metadata branch alone, their cross-entropies added with weight 0.5; training only);
* ``B``: ``modality_dropout = 0.3`` (the image, one block, is hidden twice as often, so the shared layer must learn
  to use the metadata);
* ``AB``: both;
* ``C``: ``input_min_count = { "field:variety" = 2 }``: the variety one-hot has 3,050 values, 2,099 of them on a
  single sheet; a value seen once in training gets no column (it can only be memorised).

Selection rule (fixed before the runs): the candidate with the largest dev gain in artist top-1 (all 10 artists),
multimodal minus image-only, paired over the inner folds, where the image-only model is the *better* (by dev
top-1) of the current config's and the candidate's own (``eval --compare-single-input`` trains the baseline with
the candidate's settings; ``modality_dropout`` acts on it too, so B could otherwise win by weakening the
baseline; ``unimodal_loss`` and ``input_min_count`` do not change an image-only model), provided the candidate's
multimodal top-1 is not below the current config's. If no candidate beats ``current``, the current config stays.
The chosen one is then run once with the paper's 5-fold protocol (``bench/multimodal_pomological.py --name ...
--param ...``); outer fold 0's gain is reported apart there, since its training part chose the candidate.

Outcome (session 3; README, multimodal section): the rule chose AB by +0.5 points on dev, within the noise of 3
folds; on the 5 folds AB's multimodal model was 0.5 points *below* the current one (0.813 vs 0.818), and its
+5.1 against its own image-only model came from that baseline being weaker (0.762 vs 0.770).

Writes one JSON per model under ``bench/results/multimodal_select/`` (so candidates can run in two processes)
and the table to ``bench/results/multimodal_select.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CANDIDATES: dict[str, dict[str, Any]] = {
    "current": {},
    "A": {"net": {"unimodal_loss": 0.5}},
    "B": {"net": {"modality_dropout": 0.3}},
    "AB": {"net": {"unimodal_loss": 0.5, "modality_dropout": 0.3}},
    "C": {"input_min_count": {"field:variety": 2}},
}
OUT = ROOT / "bench" / "results"
PARTS = OUT / "multimodal_select"


def variant(project: Any, cand: dict[str, Any]) -> Any:
    """The project with a candidate's settings."""
    net = replace(project.net, **cand.get("net", {}))
    imc = {**project.input_min_count, **cand.get("input_min_count", {})}
    return replace(project, net=net, input_min_count=imc)


def image_only(project: Any) -> Any:
    """The baseline as ``eval --compare-single-input`` trains it; ``unimodal_loss`` is a no-op on one branch
    (tests/test_multimodal_unimodal.py), so it is reset and equal baselines are computed once."""
    base = project.only_images()
    return replace(base, net=replace(base.net, unimodal_loss=0.0), input_min_count={"*": 1})


def key(project: Any) -> str:
    return hashlib.sha256(json.dumps({"inputs": [i.text for i in project.inputs], "net": asdict(project.net),
                                      "imc": project.input_min_count}, sort_keys=True).encode()).hexdigest()[:12]


def summarise(scores: list[Any]) -> dict[str, Any]:
    from iconoscope.learn.multimodal.metrics import task_metrics

    out = {}
    for ts in scores:
        m = task_metrics(ts, 0)
        out[ts.name] = {"top1": m["top1"], "top1_std": m["top1_std"], "macro_f1": m["macro_f1"],
                        "folds_top1": [f["top1"] for f in m["folds"]],
                        "folds_macro_f1": [f["macro_f1"] for f in m["folds"]]}
    return out


def run_model(project: Any, raw: Any, targets: Any, inner: np.ndarray, label: str, what: str) -> dict[str, Any]:
    """Cross-validate one model on the inner folds, or read its result if it was computed for the same settings."""
    from iconoscope.learn.multimodal.train import cross_validate

    path = PARTS / f"{what}-{key(project)}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    t = time.time()
    scores = cross_validate(project, raw, targets, inner, label, progress=False)
    res = {"what": what, "label": label, "net": asdict(project.net), "input_min_count": project.input_min_count,
           "inputs": [i.text for i in project.inputs], "tasks": summarise(scores), "seconds": time.time() - t}
    PARTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1, default=float), encoding="utf-8")
    return res


def table(rows: dict[str, dict[str, Any]]) -> str:
    head = ("| candidate | image-only (own) | image-only (current) | multimodal | gain vs stronger baseline "
            "| per inner fold | decade multimodal | artist macro F1 multimodal | minutes |\n"
            "|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['image_own']:.3f} | {r['image_current']:.3f} | {r['multimodal']:.3f} ± "
                     f"{r['multimodal_std']:.3f} | **{r['gain']:+.3f} ± {r['gain_std']:.3f}** | "
                     + ", ".join(f"{g:+.3f}" for g in r["gain_folds"])
                     + f" | {r['decade']:.3f} | {r['artist_f1']:.3f} | {r['minutes']:.1f} |")
    return "\n".join(lines)


def result(name: str, what: str) -> dict[str, Any] | None:
    """A candidate's model result; equal settings share one file (e.g. A's image-only model is current's)."""
    label = PARTS / f"label-{name}-{what}.txt"
    if not label.is_file():
        return None
    path = PARTS / f"{what}-{label.read_text(encoding='utf-8').strip()}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def collect(names: list[str]) -> dict[str, dict[str, Any]]:
    """Per candidate, its figures, from the per-model files (candidates not run yet are left out)."""
    rows: dict[str, dict[str, Any]] = {}
    cur = result("current", "image-only")
    for name in names:
        mm, own = result(name, "multimodal"), result(name, "image-only")
        if mm is None or own is None or cur is None:
            continue
        a_mm, a_own, a_cur = (np.array(r["tasks"]["creator"]["folds_top1"]) for r in (mm, own, cur))
        base = a_own if a_own.mean() >= a_cur.mean() else a_cur
        d = a_mm - base
        rows[name] = {"image_own": float(a_own.mean()), "image_current": float(a_cur.mean()),
                      "multimodal": float(a_mm.mean()), "multimodal_std": float(a_mm.std(ddof=1)),
                      "gain": float(d.mean()), "gain_std": float(d.std(ddof=1)), "gain_folds": d.tolist(),
                      "gain_vs_own": float((a_mm - a_own).mean()),
                      "multimodal_folds": a_mm.tolist(), "image_own_folds": a_own.tolist(),
                      "decade": mm["tasks"]["date"]["top1"] if "date" in mm["tasks"] else float("nan"),
                      "artist_f1": mm["tasks"]["creator"]["macro_f1"],
                      "minutes": (mm["seconds"] + own["seconds"]) / 60}
    return rows


def choose(rows: dict[str, dict[str, Any]]) -> str:
    """The pre-registered rule (module doc)."""
    cur = rows["current"]
    ok = {n: r for n, r in rows.items() if r["multimodal"] >= cur["multimodal"]}
    best = max(ok, key=lambda n: ok[n]["gain"])
    return best if ok[best]["gain"] > cur["gain"] else "current"


def dev_setup(work: Path, name: str, dev_fold: int, k: int) -> tuple[Any, Any, Any, np.ndarray]:
    """(project, raw data, targets labelled on the dev part only, inner folds): the development protocol.

    The outer folds are ``train``'s; only the training part of ``dev_fold`` gets inner folds (checked)."""
    from iconoscope.learn.multimodal.data import gather, load_project
    from iconoscope.learn.multimodal.train import Targets, make_folds, prepare_targets
    from iconoscope.workspace import Workspace

    with Workspace.open(work, read_only=True) as ws:
        project = load_project(ws, name)
        raw = gather(ws, project, progress=False)
    targets = prepare_targets(project, raw)
    outer = make_folds(targets, project.folds, project.net.seed)
    dev = (outer >= 0) & (outer != dev_fold)
    dev_targets = Targets(targets.encoders, targets.Y, [h & dev for h in targets.has])
    inner = make_folds(dev_targets, k, project.net.seed)
    assert not (inner[outer == dev_fold] >= 0).any(), "an outer test row got an inner fold"
    print(f"dev: {int((inner >= 0).sum())} labelled sheets of outer fold {dev_fold}'s training part, {k} inner "
          f"folds; outer test part ({int((outer == dev_fold).sum())}) unused", file=sys.stderr)
    return project, raw, dev_targets, inner


def dev_parser(doc: str | None, candidates: Any) -> argparse.ArgumentParser:
    """The command line shared by the multimodal development-protocol rounds (this one and its text round)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/iconoscope-mm-pom"))
    ap.add_argument("--name", default="artist_year")
    ap.add_argument("--candidates", default=",".join(candidates))
    ap.add_argument("--dev-fold", type=int, default=0)
    ap.add_argument("--inner", type=int, default=3)
    return ap


def main() -> None:
    ap = dev_parser(__doc__, CANDIDATES)
    ap.add_argument("--table", action="store_true", help="only print the table from the results already there")
    args = ap.parse_args()
    names = args.candidates.split(",")
    if not args.table:
        project, raw, dev_targets, inner = dev_setup(args.work, args.name, args.dev_fold, args.inner)
        for name in names:
            p = variant(project, CANDIDATES[name])
            for what, proj in (("image-only", image_only(p)), ("multimodal", p)):
                t = time.time()
                r = run_model(proj, raw, dev_targets, inner, f"{name}:{what}", what)
                print(f"{name} {what}: artist top-1 {r['tasks']['creator']['top1']:.3f} "
                      f"({time.time() - t:.0f} s)", file=sys.stderr, flush=True)
                (PARTS / f"label-{name}-{what}.txt").write_text(key(proj), encoding="utf-8")
    rows = collect(list(CANDIDATES))
    print(table(rows))
    if "current" in rows and len(rows) == len(CANDIDATES):
        chosen = choose(rows)
        print(f"chosen (pre-registered rule): {chosen}")
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "multimodal_select.json").write_text(json.dumps(
            {"candidates": CANDIDATES, "dev_fold": args.dev_fold, "inner": args.inner, "rows": rows,
             "chosen": chosen}, indent=1, default=float), encoding="utf-8")


if __name__ == "__main__":
    main()
