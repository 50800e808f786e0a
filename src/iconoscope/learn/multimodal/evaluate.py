"""``eval`` for multimodal projects, and the paper's protocol (``--compare-single-input``).

Plain ``eval`` reports the out-of-fold scores that ``train`` kept (or cross-validates afresh when there are none
or the config changed). ``--compare-single-input`` trains the image-only model and the multimodal model on the
*same* folds and reports, per task, top-1 and macro precision/recall/F1 (mean ± standard deviation over folds),
confusion matrices, and the same on subsets of classes with at least 50, 100, 300 labelled records. The gain is
the per-fold paired difference, so its standard deviation is that of the difference, not of either model.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iconoscope.learn.multimodal.data import Project, RawData, gather, load_project
from iconoscope.learn.multimodal.metrics import TaskScores, confusion, task_metrics
from iconoscope.learn.multimodal.train import (
    Targets,
    cross_validate,
    load_oof,
    make_folds,
    prepare_targets,
    read_card,
    release_store,
    save_oof,
)
from iconoscope.workspace import slug

METRIC_KEYS = ("top1", "macro_p", "macro_r", "macro_f1")


@dataclass
class EvalReport:
    name: str
    models: dict[str, dict[str, list[dict[str, Any]]]]  # model label -> task -> metrics per subset
    gains: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # task -> per subset
    folder: Path | None = None
    files: list[str] = field(default_factory=list)

    def rows(self) -> list[list[Any]]:
        """One row per (task, subset, model): task, subset, classes, records, model, top-1 ± sd, macro P/R/F1."""
        out = []
        tasks = next(iter(self.models.values())).keys()
        for task in tasks:
            for i, _ in enumerate(next(iter(self.models.values()))[task]):
                for label, per_task in self.models.items():
                    m = per_task[task][i]
                    out.append([task, f">={m['min_count']}" if m["min_count"] else "all", m["classes"],
                                m["records"], label] + [_pm(m, k) for k in METRIC_KEYS])
        return out

    def text(self) -> str:
        from iconoscope.cli.output import format_table

        cols = ["task", "subset", "classes", "records", "model", "top-1", "macro P", "macro R", "macro F1"]
        out = format_table(cols, self.rows())
        for task, per in self.gains.items():
            for g in per:
                sub = f">={g['min_count']}" if g["min_count"] else "all"
                out += (f"gain {task} [{sub}]: top-1 {g['top1']:+.3f} ± {g['top1_std']:.3f}, "
                        f"macro F1 {g['macro_f1']:+.3f} ± {g['macro_f1_std']:.3f} (multimodal − image-only, "
                        f"paired over folds)\n")
        if self.folder is not None:
            out += f"report: {self.folder}\n"
        return out


def _pm(m: dict[str, Any], k: str) -> str:
    if k not in m or m[k] != m[k]:
        return "-"
    return f"{m[k]:.3f} ± {m.get(k + '_std', 0.0):.3f}"


def _gain(full: TaskScores, base: TaskScores, min_count: int) -> dict[str, Any]:
    a, b = task_metrics(full, min_count), task_metrics(base, min_count)
    out: dict[str, Any] = {"min_count": min_count}
    for k in ("top1", "macro_f1"):
        d = np.array([x.get(k, np.nan) - y.get(k, np.nan) for x, y in zip(a["folds"], b["folds"], strict=True)])
        out[k] = float(np.nanmean(d)) if len(d) else float("nan")
        out[k + "_std"] = float(np.nanstd(d, ddof=1)) if len(d) > 1 else 0.0
    return out


def _write_confusion(path: Path, ts: TaskScores) -> None:
    rows = ts.has
    cm = confusion(ts.P[rows], ts.Y[rows], len(ts.classes))
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["true \\ predicted", *ts.classes])
        for c, row in zip(ts.classes, cm, strict=True):
            w.writerow([c, *row.tolist()])


def _oof_from_training(ws: Any, project: Project) -> list[TaskScores] | None:
    """The scores ``train`` kept, when they were made for the config as it is now."""
    card = read_card(ws, project.name)
    path = ws.model_dir(project.name) / "oof.npz"
    if not card or not path.is_file():
        return None
    if card.get("project", {}).get("inputs") != [i.text for i in project.inputs] or \
            card.get("project", {}).get("targets") != [t.text for t in project.targets]:
        return None
    try:
        return load_oof(path, project)[1]
    except (OSError, KeyError, ValueError):
        return None


def _same_scores(saved: list[TaskScores] | None, fold: np.ndarray, fresh_classes: list[list[str]]) -> bool:
    if not saved:
        return False
    return bool(np.array_equal(saved[0].fold, fold)) and [s.classes for s in saved] == fresh_classes


def _baseline_key(base: Project, targets: Targets, fold: np.ndarray) -> str:
    """What the image-only scores depend on: its inputs, backbone, network settings, classes and folds."""
    h = hashlib.sha256(json.dumps({"inputs": [i.text for i in base.inputs], "backbone": base.backbone,
                                   "net": asdict(base.net), "classes": [e.classes for e in targets.encoders]},
                                  sort_keys=True).encode())
    h.update(np.ascontiguousarray(fold).tobytes())
    return h.hexdigest()


def image_only_scores(ws: Any, project: Project, raw: RawData, targets: Targets, fold: np.ndarray,
                      progress: bool = True) -> list[TaskScores]:
    """Out-of-fold scores of the image-only model on ``fold``; kept in ``models/{name}/oof_image_only.npz`` and
    reused while nothing they depend on changed (the baseline does not change when metadata inputs do)."""
    base = project.only_images()
    path = ws.model_dir(project.name) / "oof_image_only.npz"
    key = _baseline_key(base, targets, fold)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                same = str(z["key"]) == key
            if same:
                return load_oof(path, project)[1]
        except (OSError, KeyError, ValueError):
            pass
    scores = cross_validate(base, raw, targets, fold, "image-only", progress)
    save_oof(path, raw, fold, scores, key=key)
    return scores


def baseline_scores(ws: Any, name: str, folds: int | None = None, progress: bool = True) -> list[TaskScores]:
    """Compute (or reuse) the image-only scores of ``name`` alone, e.g. in a second process while 'train' runs."""
    project = load_project(ws, name)
    raw = gather(ws, project, progress=progress)
    release_store(ws)
    targets = prepare_targets(project, raw)
    fold = make_folds(targets, folds or project.folds, project.net.seed)
    return image_only_scores(ws, project, raw, targets, fold, progress)


def eval_multimodal(ws: Any, name: str, report_dir: Path | None = None, compare_single_input: bool = False,
                    folds: int | None = None, progress: bool = True) -> EvalReport:
    """Evaluate ``name`` (see module doc); writes report.json, report.md and confusion CSVs into ``report_dir``."""
    project = load_project(ws, name)
    saved = _oof_from_training(ws, project) if not folds or folds == project.folds else None
    scores: dict[str, list[TaskScores]] = {}
    if compare_single_input or saved is None:
        raw = gather(ws, project, progress=progress)
        release_store(ws)
        targets = prepare_targets(project, raw)
        fold = make_folds(targets, folds or project.folds, project.net.seed)
        if _same_scores(saved, fold, [e.classes for e in targets.encoders]):
            scores["multimodal"] = saved  # type: ignore[assignment]
        else:
            scores["multimodal"] = cross_validate(project, raw, targets, fold, "multimodal", progress)
        if compare_single_input:
            base = image_only_scores(ws, project, raw, targets, fold, progress)
            scores = {"image-only": base, **scores}
    else:
        scores["multimodal"] = saved

    subsets = project.subsets
    models = {label: {ts.name: [{k: v for k, v in task_metrics(ts, n).items()} for n in subsets]
                      for ts in per} for label, per in scores.items()}
    report = EvalReport(name, models)
    if compare_single_input:
        report.gains = {full.name: [_gain(full, base, n) for n in subsets]
                        for full, base in zip(scores["multimodal"], scores["image-only"], strict=True)}
    folder = Path(report_dir) if report_dir else ws.reports_dir("eval", slug(name))
    folder.mkdir(parents=True, exist_ok=True)
    report.folder = folder
    for label, per in scores.items():
        for ts in per:
            p = folder / f"confusion_{slug(label)}_{slug(ts.name)}.csv"
            _write_confusion(p, ts)
            report.files.append(p.name)
    payload = {"name": name, "head": "multimodal", "compare_single_input": compare_single_input,
               "folds": int(next(iter(scores.values()))[0].fold.max()) + 1,
               "inputs": [i.text for i in project.inputs], "targets": [t.text for t in project.targets],
               "models": models, "gains": report.gains}
    (folder / "report.json").write_text(json.dumps(payload, indent=1, default=float), encoding="utf-8")
    (folder / "report.md").write_text(_markdown(report), encoding="utf-8")
    report.files += ["report.json", "report.md"]
    return report


def _markdown(report: EvalReport) -> str:
    lines = [f"# Evaluation: {report.name}", "",
             "| task | subset | classes | records | model | top-1 | macro P | macro R | macro F1 |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in report.rows()]
    for task, per in report.gains.items():
        for g in per:
            sub = f">={g['min_count']}" if g["min_count"] else "all"
            lines.append(f"\nGain on {task} [{sub}]: top-1 {g['top1']:+.3f} ± {g['top1_std']:.3f} "
                         f"(multimodal − image-only, paired over folds)")
    lines += ["", "Out-of-fold scores, mean ± standard deviation over folds. Confusion matrices: "
              + ", ".join(f for f in report.files if f.endswith(".csv"))]
    return "\n".join(lines) + "\n"
