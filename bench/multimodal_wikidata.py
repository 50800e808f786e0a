"""The metadata-only path on the Wikidata paintings: movement and genre from artist, materials, depicts and year.

Usage::

    nice -n 10 python bench/multimodal_wikidata.py [--work examples/wikidata] [--classifiers a,b] [--retrain]

Runs what a user would (``iconoscope -w WORK ingest`` when the graph is empty, ``iconoscope -w WORK train NAME``
when a classifier has no model yet), then reads each model's out-of-fold scores (``eval``) and scores two peers on
*the same folds*:

* majority: always the most frequent class of the training folds;
* artist lookup: the artist's most frequent class in the training folds (else the majority) - Wikidata often
  inherits a painting's movement from its artist, so this is the strong, honest baseline for 'movement'.

Prints a table (top-1 and macro F1, mean ± standard deviation over the 5 folds) and writes
``bench/results/multimodal_wikidata.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from iconoscope.learn.multimodal.data import load_project  # noqa: E402
from iconoscope.learn.multimodal.metrics import TaskScores, task_metrics  # noqa: E402
from iconoscope.learn.multimodal.records import load_records  # noqa: E402
from iconoscope.learn.multimodal.specs import FieldRef  # noqa: E402
from iconoscope.learn.multimodal.train import load_oof  # noqa: E402
from iconoscope.workspace import Workspace  # noqa: E402

DEFAULT = "movement_genre,movement_genre_no_artist,movement_genre_titles"


def iconoscope(work: Path, *args: str) -> None:
    exe = Path(sys.executable).with_name("iconoscope")
    print("$ iconoscope -w", work, *args, file=sys.stderr)
    subprocess.run([str(exe) if exe.exists() else "iconoscope", "-w", str(work), *args], check=True)


def lookup_scores(ts: TaskScores, key: list[str | None]) -> TaskScores:
    """Scores of 'the class most frequent for this key (e.g. the artist) in the training folds, else the
    majority': a one-hot prediction per record, fold by fold."""
    P = np.zeros_like(ts.Y)
    for f in range(int(ts.fold.max()) + 1):
        train = np.flatnonzero(ts.has & (ts.fold >= 0) & (ts.fold != f))
        test = np.flatnonzero(ts.fold == f)
        majority = int(ts.Y[train].sum(axis=0).argmax())
        per_key: dict[str, Counter[int]] = {}
        for r in train:
            if key[r]:
                per_key.setdefault(key[r], Counter()).update(np.flatnonzero(ts.Y[r] > 0).tolist())  # type: ignore
        for r in test:
            c = per_key.get(key[r]) if key[r] else None  # type: ignore[arg-type]
            P[r, c.most_common(1)[0][0] if c else majority] = 1.0
    return TaskScores(ts.name, ts.classes, P, ts.Y, ts.has, ts.fold, ts.multilabel)


def pm(m: dict[str, float], k: str) -> str:
    return f"{m[k]:.3f} ± {m[k + '_std']:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "examples" / "wikidata")
    ap.add_argument("--classifiers", default=DEFAULT)
    ap.add_argument("--retrain", action="store_true")
    args = ap.parse_args()
    work: Path = args.work
    names = args.classifiers.split(",")
    with Workspace(work) as ws:
        have_graph = ws.iris.source_graph("paintings") in ws.store.graphs()
        todo = [n for n in names if args.retrain or not (ws.model_dir(n) / "oof.npz").is_file()]
    if not have_graph:
        iconoscope(work, "ingest")
    for n in todo:
        iconoscope(work, "train", n)

    rows, payload = [], {}
    with Workspace(work) as ws:
        for i, name in enumerate(names):
            project = load_project(ws, name)
            _, scores = load_oof(ws.model_dir(name) / "oof.npz", project)
            payload[name] = {"inputs": [s.text for s in project.inputs], "tasks": {}}
            if i == 0:  # the peers, on the first classifier's folds (all share the seed and the labels)
                table = load_records(ws, project.sources)
                artist = [v[0] if v else None for v in table.values(FieldRef("creator"))]
                nobody: list[str | None] = [None] * len(table)
                peers = {"majority": [lookup_scores(ts, nobody) for ts in scores],
                         "artist lookup": [lookup_scores(ts, artist) for ts in scores]}
                for label, per in peers.items():
                    payload[label] = {"tasks": {}}
                    for ts in per:
                        m = task_metrics(ts)
                        payload[label]["tasks"][ts.name] = {k: v for k, v in m.items() if k != "folds"}
                        rows.append([ts.name, label, "-", m["classes"], m["records"], pm(m, "top1"),
                                     pm(m, "macro_f1")])
            for ts in scores:
                m = task_metrics(ts)
                payload[name]["tasks"][ts.name] = {k: v for k, v in m.items() if k != "folds"}
                rows.append([ts.name, name, " + ".join(s.text for s in project.inputs), m["classes"], m["records"],
                             pm(m, "top1"), pm(m, "macro_f1")])
    rows.sort(key=lambda r: r[0])
    print("task | model | inputs | classes | records | top-1 | macro F1")
    for r in rows:
        print(" | ".join(str(c) for c in r))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "multimodal_wikidata.json").write_text(json.dumps(payload, indent=1, default=float), encoding="utf-8")


if __name__ == "__main__":
    main()
