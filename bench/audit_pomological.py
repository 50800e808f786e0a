"""How well does the noise/silence audit find planted label errors? The pomological watercolours, corrupted.

A seeded copy of the USDA pomological labels (../shared/data/pomological, 6,082 records) where 5% of the records of
the 10 most frequent genera get another of those genera (swapped) and another 5% lose their genus (removed). The
whole pipeline then runs on that workspace as a user would run it: vocabulary + ingest, labels, embed, ``train``
(5-fold cross-validation, out-of-fold scores), ``predict`` (the run graph), ``audit`` (noise + silence, per-class
thresholds from the out-of-fold scores). The audit's flags are scored against the injected errors:

* record level: a flagged record (in either list) is right when it was corrupted; recall = corrupted records flagged;
* item level: the right items are noise (r, wrong genus) and silence (r, true genus) for a swapped record and
  silence (r, true genus) for a removed one.

Flags on records that were not corrupted count as false alarms, even where the collection's own label is wrong.
The same audit is also scored on the final model's in-sample scores (``predict_run(use_oof=False)``), to show what
writing out-of-fold scores for training images buys.

    python bench/audit_pomological.py [--backbone SPEC] [--head linear] [--dir /tmp/iconoscope-pomaudit]

Writes bench/results/audit_pomological.json and prints the table for the README.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

DATA = Path(os.environ.get("ICONOSCOPE_DATA", REPO.parent / "shared" / "data"))
DEFAULT_BACKBONE = "torchscript:${data}/weights/mobilenet_v2_quantized_torchscript/mobilenet_quantized.pt?layer=pool"
TOP = 10


def corrupt(rows: list[dict[str, str]], top: list[str], swap: float, remove: float, seed: int
            ) -> tuple[dict[str, str], set[str], dict[str, str]]:
    """-> (record id -> curated genus or '' , removed ids, swapped id -> true genus)."""
    rng = np.random.default_rng(seed)
    ids = [r["image"].removesuffix(".jpg") for r in rows]
    genus = {i: r["genus"] for i, r in zip(ids, rows, strict=True)}
    eligible = np.array([i for i in ids if genus[i] in top])
    n_swap, n_remove = round(swap * len(ids)), round(remove * len(ids))
    picked = rng.choice(eligible, n_swap + n_remove, replace=False)
    swapped = {str(i): genus[str(i)] for i in picked[:n_swap]}
    removed = {str(i) for i in picked[n_swap:]}
    curated = dict(genus)
    for i in swapped:
        curated[i] = str(rng.choice([g for g in top if g != genus[i]]))
    for i in removed:
        curated[i] = ""
    return curated, removed, swapped


def make_workspace(root: Path, rows: list[dict[str, str]], curated: dict[str, str], genera: list[str],
                   top: list[str], backbone: str, head: str, folds: int, grid: str) -> None:
    from iconoscope.cli.workspace_cmds import init_workspace

    root.mkdir(parents=True, exist_ok=True)
    if not (root / "iconoscope.toml").exists():
        init_workspace(root, name="pomaudit")
    with open(root / "genera.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "parent", "lang"])
        for g in genera:
            w.writerow([g, g, "", "en"])
    with open(root / "records.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "image", "genus", "title"])
        for r in rows:
            i = r["image"].removesuffix(".jpg")
            w.writerow([i, r["image"], curated[i], r["scientific_name"]])
    cats = ", ".join(f'"https://example.org/pomaudit/concept/genus/{g}"' for g in top)
    (root / "iconoscope.toml").write_text(f"""[collection]
name = "pomaudit"
base_iri = "https://example.org/pomaudit/"
languages = ["en"]

[paths]
data = "{DATA}"

[vocabularies.genus]
path = "genera.csv"
format = "csv"
languages = ["en"]

[sources.pomological]
kind = "csv"
path = "records.csv"
images = "{DATA}/pomological/images"
vocabularies = ["genus"]
subject_lang = "en"

[sources.pomological.fields]
id = "id"
image = "image"
subject = "genus"
title = "title"

[classifiers.genera]
vocabulary = "genus"
categories = [{cats}]
backbone = "{backbone}"
head = "{head}"
folds = {folds}
{grid}
""", encoding="utf-8")


def score(items: dict[str, list[Any]], removed: set[str], swapped: dict[str, str], curated: dict[str, str],
          true: dict[str, str]) -> dict[str, Any]:
    """Record- and item-level precision and recall of the audit's flags against the injected errors."""
    flagged = {i.record for kind in items for i in items[kind]}
    corrupted = set(removed) | set(swapped)
    tp = flagged & corrupted
    expected = {("noise", r, curated[r]) for r in swapped} | {("silence", r, true[r]) for r in corrupted}
    got = {(kind, i.record, i.concept.rsplit("/", 1)[-1]) for kind in items for i in items[kind]}
    return {"flagged_records": len(flagged), "corrupted_records": len(corrupted),
            "record_precision": round(len(tp) / len(flagged), 3) if flagged else None,
            "record_recall": round(len(tp) / len(corrupted), 3),
            "item_precision": round(len(got & expected) / len(got), 3) if got else None,
            "item_recall": round(len(got & expected) / len(expected), 3),
            "noise_items": len(items["noise"]), "silence_items": len(items["silence"]),
            "flags_on_clean_records": len(flagged - corrupted)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/iconoscope-pomaudit"))
    ap.add_argument("--backbone", default=DEFAULT_BACKBONE)
    ap.add_argument("--head", default="linear")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--swap", type=float, default=0.05)
    ap.add_argument("--remove", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-train", action="store_true", help="reuse the trained model in --dir")
    ap.add_argument("--C", type=float, default=0.3,
                    help="fix the linear probe's C (no inner search: the audit is what is measured here; 0 = the "
                         "learning stage's default grid)")
    args = ap.parse_args()
    src = DATA / "pomological" / "records.csv"
    if not src.exists():
        sys.exit(f"{src}: not found (set ICONOSCOPE_DATA)")
    with open(src, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    counts = Counter(r["genus"] for r in rows)
    top = [g for g, _ in counts.most_common(TOP)]
    genera = sorted(counts)
    curated, removed, swapped = corrupt(rows, top, args.swap, args.remove, args.seed)
    true = {r["image"].removesuffix(".jpg"): r["genus"] for r in rows}
    grid = f"grid = {{ C = [{args.C}] }}" if args.C and args.head == "linear" else ""
    make_workspace(args.dir, rows, curated, genera, top, args.backbone, args.head, args.folds, grid)

    from iconoscope.enrich.audit import audit_all
    from iconoscope.enrich.write import predict_run
    from iconoscope.ingest import ingest_source
    from iconoscope.workspace import Workspace

    times: dict[str, float] = {}
    with Workspace(args.dir) as ws:
        t0 = time.perf_counter()
        rep = ingest_source(ws, "pomological", show_progress=False)
        times["ingest_s"] = time.perf_counter() - t0
        print(getattr(rep, "summary", lambda: rep)(), flush=True)
        t0 = time.perf_counter()
        from iconoscope.ingest.labels import derive_labels, write_labels

        write_labels(ws, "genera", derive_labels(ws, "genera"))
        times["labels_s"] = time.perf_counter() - t0
        if not args.skip_train:
            from iconoscope.learn.embed import embed_images
            from iconoscope.learn.train import train_classifier

            t0 = time.perf_counter()
            embed_images(ws, args.backbone)
            times["embed_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            tr = train_classifier(ws, "genera", folds=args.folds)
            times["train_s"] = time.perf_counter() - t0
            print(getattr(tr, "summary", lambda: tr)(), flush=True)
        card = json.loads((ws.model_dir("genera") / "model_card.json").read_text(encoding="utf-8"))
        cv = (card.get("evaluation") or {}).get("mean") if isinstance(card.get("evaluation"), dict) else None
        results = {}
        for mode, use_oof in (("out-of-fold scores for training images", True),
                              ("in-sample scores (final model)", False)):
            t0 = time.perf_counter()
            pr = predict_run(ws, "genera", use_oof=use_oof)
            times[f"predict_s_{use_oof}"] = time.perf_counter() - t0
            print(pr.summary(), flush=True)
            t0 = time.perf_counter()
            items = audit_all(ws, "genera")
            times[f"audit_s_{use_oof}"] = time.perf_counter() - t0
            res = score(items, removed, swapped, curated, true)
            results[mode] = res
            print(mode, json.dumps(res), flush=True)
    out = {"backbone": args.backbone, "head": args.head, "C": args.C, "folds": args.folds, "seed": args.seed,
           "records": len(rows), "swapped": len(swapped), "removed": len(removed),
           "cv_on_corrupted_labels": cv,
           "results": results, "times_s": {k: round(v, 1) for k, v in times.items()}}
    (REPO / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "results" / "audit_pomological.json").write_text(json.dumps(out, indent=1))
    print(f"\n{len(swapped)} swapped + {len(removed)} removed of {len(rows)} records; backbone {args.backbone}, "
          f"head {args.head}")
    print("| scores audited | flagged records | record precision | record recall | item precision | item recall |")
    print("|---|---|---|---|---|---|")
    for mode, r in results.items():
        print(f"| {mode} | {r['flagged_records']} | {r['record_precision']} | {r['record_recall']} | "
              f"{r['item_precision']} | {r['item_recall']} |")


if __name__ == "__main__":
    main()
