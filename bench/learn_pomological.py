"""The README's learning table: pomological genera (and families), 5-fold CV per row, plus unseen images.

Usage::

    nice -n 10 python bench/learn_pomological.py [--work /tmp/iconoscope-learn-pom] [--data ../shared/data]
        [--holdout 0.1] [--seed 0] [--rows genera_mnv2_linear,...] [--retrain]

What it does, through the command line a user would type:

1. Holds out a seeded share (``--holdout``, 10%) of the records of ``records.csv``: they are neither ingested nor
   embedded nor trained on; their image files are copied to ``WORK/heldout/`` and their species kept aside.
2. Builds a workspace in ``--work`` from ``examples/pomological/iconoscope.toml`` (same vocabularies, mapping and
   classifier projects; the source reads ``WORK/records-train.csv``, the other 90%), then::

       iconoscope -w WORK ingest
       iconoscope -w WORK labels NAME
       iconoscope -w WORK train NAME --folds 5      # nested CV; the vectors of a backbone are embedded once
       iconoscope -w WORK eval NAME                 # out-of-fold metrics + HTML report
       iconoscope -w WORK predict NAME --images WORK/heldout --out WORK/predictions/NAME.csv

3. Scores the held-out predictions against the held-out records' labels, derived by the same rule as the label
   table (the species' concept is the category or below it, ``skos:broader*`` in the workspace's vocabularies),
   and checks them against the ``genus`` column of ``records.csv``.

Prints a table (CV mean ± std over the 5 test folds; held-out figures) and writes
``bench/results/learn_pomological.json``. ``--rows`` picks classifier projects; a trained project is reused unless
``--retrain`` (its model card holds the CV figures), so the script is resumable.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
EXAMPLE = ROOT / "examples" / "pomological"

#: (classifier project of examples/pomological/iconoscope.toml, README row, features, head)
ROWS: list[tuple[str, str, str, str]] = [
    ("genera_mnv2_logits", "a0", "MobileNetV2 int8, logits (1000-d), full sheet", "linear"),
    ("genera_mnv2_linear", "a", "MobileNetV2 int8, pre-logits layer=pool (1280-d), full sheet", "linear"),
    ("genera_mnv2_mlp", "b", "MobileNetV2 int8, pre-logits layer=pool (1280-d), full sheet", "MLP"),
    ("genera_smallcnn", "c", "builtin:smallcnn from scratch (pixels)", "finetune"),
    ("genera_squeezenet_linear", "d", "SqueezeNet 1.1 fp16 ONNX, pre-logits fire9 (512-d), full sheet", "linear"),
    ("genera_mnv2_fulltop", "e", "MobileNetV2 pre-logits, views full+top (2 x 1280-d)", "linear"),
    ("genera_concat", "f", "concat: MobileNetV2 + SqueezeNet pre-logits, views full+top (3584-d)", "linear"),
    ("genera_concat_mlp", "g", "as (f)", "MLP"),
    ("genera_concat_4views", "h", "concat: MobileNetV2 + SqueezeNet pre-logits, views full+top+center+inner (7168-d)",
     "linear"),
    ("genera_multilayer", "i", "concat: MobileNetV2 (64/96/160-ch stages + pre-logits) + SqueezeNet (fire5, fire7 + "
     "pre-logits), views full+top+center+inner (11,008-d)", "linear"),
    ("genera_multilayer_6views", "j", "as (i), views full+top+center+inner+upper+bottom (16,512-d)", "linear"),
    ("genera_multilayer_fine", "m", "as (j); the probe trained on the species with >= 5 training rows, summed up to "
     "the genera (fine_labels)", "linear"),
    ("genera_multilayer_fine20", "m20", "as (m), species with >= 20 training rows", "linear"),
    ("genera_mnv2_finetune_top", "k", "MobileNetV2 top (blocks after input41.1 + 1280-ch conv) fine-tuned on stored "
     "7x7 maps, 6 views as augmentation", "finetune"),
    ("genera_mnv2_finetune_full", "n", "MobileNetV2 fine-tuned end to end on 224 px images (every layer; for a GPU)",
     "finetune"),
    ("families_concat", "f/fam", "as (f); categories = the 6 plant families", "linear"),
]
KEYS = ("mAP", "macro_f1", "top1")


def read_records(data: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(data / "pomological" / "records.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def split_records(rows: list[dict[str, str]], share: float, seed: int) -> np.ndarray:
    """A boolean mask of held-out records: a seeded uniform sample of ``share`` of them."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(rows), bool)
    held[rng.choice(len(rows), round(share * len(rows)), replace=False)] = True
    return held


def workspace_config(data: Path, records: Path) -> str:
    """The example's config with absolute paths and the training records as its source."""
    text = (EXAMPLE / "iconoscope.toml").read_text(encoding="utf-8")
    for old, new in [('data = "../../../shared/data"', f'data = "{data.resolve()}"'),
                     ('path = "taxa.ttl"', f'path = "{EXAMPLE / "taxa.ttl"}"'),
                     ('mapping = "subjects.csv"', f'mapping = "{EXAMPLE / "subjects.csv"}"'),
                     ('path = "${data}/pomological/records.csv"', f'path = "{records}"')]:
        if old not in text:
            raise SystemExit(f"examples/pomological/iconoscope.toml no longer contains {old!r}")
        text = text.replace(old, new)
    return text


def build(work: Path, data: Path, share: float, seed: int) -> list[dict[str, str]]:
    """Write the workspace, the training records and the held-out images; returns the held-out records."""
    fields, rows = read_records(data)
    held = split_records(rows, share, seed)
    work.mkdir(parents=True, exist_ok=True)
    train_csv = work / "records-train.csv"
    split = {"seed": seed, "share": share, "heldout": [r["naldc_id"] for r, h in zip(rows, held, strict=True) if h]}
    split_file = work / "split.json"
    if split_file.exists() and json.loads(split_file.read_text(encoding="utf-8")) != split:
        raise SystemExit(f"{work} holds another split; use another --work or delete it")
    with open(train_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(r for r, h in zip(rows, held, strict=True) if not h)
    out = work / "heldout"
    out.mkdir(exist_ok=True)
    heldout = [r for r, h in zip(rows, held, strict=True) if h]
    for r in heldout:
        dst = out / r["image"]
        if not dst.exists():
            shutil.copyfile(data / "pomological" / "images" / r["image"], dst)
    split_file.write_text(json.dumps(split), encoding="utf-8")
    (work / "iconoscope.toml").write_text(workspace_config(data, train_csv), encoding="utf-8")
    return heldout


def iconoscope(work: Path, *args: str, capture: bool = False) -> str:
    exe = Path(sys.executable).with_name("iconoscope")
    # the installed script, else the package on PYTHONPATH (an uninstalled checkout, as on a GPU machine)
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "iconoscope"]
    cmd += ["-w", str(work), *args]
    print("$ iconoscope -w", work, *args, file=sys.stderr, flush=True)
    res = subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE if capture else None)
    return res.stdout or ""


def heldout_truth(ws: Any, categories: list[str], heldout: list[dict[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """(Y [N, C], kept [N]): the label-table rule applied to held-out records through the vocabularies only:
    a record is a row when its species' concept is described by the classifier's vocabulary, positive for C when
    that concept is C or below it (skos:broader*)."""
    mapping = {}
    with open(EXAMPLE / "subjects.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            mapping[r["scientific_name"]] = r["concept"]
    vocab = ws.iris.vocab_graph("taxa")
    concepts = sorted({mapping[r["scientific_name"]] for r in heldout if r["scientific_name"] in mapping})
    values = " ".join(f"<{c}>" for c in concepts)
    cats = " ".join(f"<{c}>" for c in categories)
    q_in = f"SELECT DISTINCT ?c WHERE {{ VALUES ?c {{ {values} }} GRAPH <{vocab}> {{ ?c ?p ?o }} }}"
    described = {str(d["c"]) for d in ws.store.select(q_in).dicts()}
    q_up = ("PREFIX skos: <http://www.w3.org/2004/02/skos/core#> SELECT ?c ?cat WHERE { "
            f"VALUES ?c {{ {values} }} VALUES ?cat {{ {cats} }} ?c skos:broader* ?cat }}")
    up: dict[str, set[str]] = {}
    for d in ws.store.select(q_up).dicts():
        up.setdefault(str(d["c"]), set()).add(str(d["cat"]))
    Y = np.zeros((len(heldout), len(categories)), bool)
    kept = np.zeros(len(heldout), bool)
    for i, r in enumerate(heldout):
        c = mapping.get(r["scientific_name"])
        if c is None or c not in described:
            continue
        kept[i] = True
        for j, cat in enumerate(categories):
            Y[i, j] = cat in up.get(c, set())
    return Y, kept


def score_heldout(work: Path, name: str, heldout: list[dict[str, str]], csv_path: Path) -> dict[str, Any]:
    """mAP, macro-F1 (at the model's calibrated thresholds) and top-1 of the held-out predictions."""
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.metrics import evaluate_scores
    from iconoscope.workspace import Workspace

    with Workspace.open(work, read_only=True) as ws:
        clf = load_classifier(ws, name)
        Y, kept = heldout_truth(ws, clf.categories, heldout)
    col = {c: j for j, c in enumerate(clf.categories)}
    row = {r["image"]: i for i, r in enumerate(heldout)}
    S = np.full((len(heldout), len(clf.categories)), np.nan)
    with open(csv_path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            S[row[r["image"]], col[r["concept"]]] = float(r["score"])
    scored = kept & ~np.isnan(S).any(axis=1)
    m = evaluate_scores(Y[scored], S[scored], clf.thresholds)
    out: dict[str, Any] = {"n": int(scored.sum()), "not_scored": int((kept & ~scored).sum()),
                           **{k: m[k] for k in (*KEYS, "top5", "micro_f1")}}
    if name.startswith("genera"):  # the genus column must agree with the vocabulary-derived labels
        labels = [c.rsplit("/", 1)[-1] for c in clf.categories]
        col_y = np.array([[r["genus"] == g for g in labels] for r in heldout])
        out["genus_column_agrees"] = bool((col_y[scored] == Y[scored]).all())
    return out


def cv_figures(work: Path, name: str) -> dict[str, Any]:
    card = json.loads((work / "models" / name / "model_card.json").read_text(encoding="utf-8"))
    ev = card.get("evaluation", {})
    return {"mean": {k: ev["mean"][k] for k in KEYS}, "std": {k: ev["std"][k] for k in KEYS},
            "n_images": card.get("data", {}).get("images"), "params": card.get("params"),
            "seconds": card.get("seconds"), "version": card.get("version")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/iconoscope-learn-pom"))
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--holdout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", default=",".join(r[0] for r in ROWS), help="projects to run, in this order")
    ap.add_argument("--retrain", action="store_true", help="train again even when a model card exists")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "learn_pomological.json")
    args = ap.parse_args()
    work: Path = args.work.resolve()
    heldout = build(work, args.data, args.holdout, args.seed)
    from iconoscope.workspace import Workspace

    with Workspace(work) as ws:
        ingested = ws.iris.source_graph("watercolours") in ws.store.graphs()
    if not ingested:
        iconoscope(work, "ingest")
    wanted = args.rows.split(",")
    results: dict[str, Any] = {}
    old = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    for name in wanted:  # in the order asked for
        if name not in {r[0] for r in ROWS}:
            raise SystemExit(f"--rows: unknown project {name!r}; known: {', '.join(r[0] for r in ROWS)}")
    for name, row, features, head in sorted(ROWS, key=lambda r: wanted.index(r[0]) if r[0] in wanted else -1):
        if name not in wanted:
            if name in old.get("rows", {}):
                results[name] = old["rows"][name]
            continue
        t = time.time()
        trained = (work / "models" / name / "model_card.json").exists()
        if args.retrain or not trained:
            iconoscope(work, "labels", name)
            iconoscope(work, "train", name, "--folds", "5", "--seed", str(args.seed))
        train_s = time.time() - t
        ev = json.loads(iconoscope(work, "eval", name, "--format", "json", capture=True))
        pred = work / "predictions" / f"{name}.csv"
        t = time.time()
        iconoscope(work, "predict", name, "--images", str(work / "heldout"), "--out", str(pred))
        predict_s = time.time() - t
        cv = cv_figures(work, name)
        results[name] = {"row": row, "features": features, "head": head, "backbone": ev.get("backbone"),
                         "cv_mean": cv["mean"], "cv_std": cv["std"], "n_images": cv["n_images"],
                         "chosen_params": cv["params"], "pooled_oof": ev.get("pooled"), "train_s": cv["seconds"],
                         "heldout": score_heldout(work, name, heldout, pred),
                         "train_wall_s": train_s if args.retrain or not trained else None,
                         "predict_wall_s": predict_s}
    results = {r[0]: results[r[0]] for r in ROWS if r[0] in results}
    print(f"\n{'row':<6} {'project':<26} {'head':<8} {'n':>5} "
          + " ".join(f"{'CV ' + k:>16}" for k in KEYS) + " | " + " ".join(f"{'unseen ' + k:>13}" for k in KEYS))
    for name, r in results.items():
        cv = " ".join(f"{r['cv_mean'][k]:>9.3f} ± {r['cv_std'][k]:.3f}" for k in KEYS)
        ho = " ".join(f"{r['heldout'][k]:>13.3f}" for k in KEYS)
        print(f"{r['row']:<6} {name:<26} {r['head']:<8} {r['n_images']:>5} {cv} | {ho}  (unseen n={r['heldout']['n']})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"work": str(work), "holdout": args.holdout, "seed": args.seed,
                                    "heldout_records": len(heldout), "rows": results}, indent=1, default=float),
                        encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
