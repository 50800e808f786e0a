"""Cross-validated training of a multimodal project, the final model, and its files.

``train_multimodal`` runs K-fold cross-validation (out-of-fold probabilities for every labelled record, kept in
``oof.npz`` for ``eval``), then fits the final model on every labelled record. Folds are stratified on the first
target, so the rare artists are spread over the folds, and are a pure function of the labels and the seed: the
image-only and the multimodal model of ``eval --compare-single-input`` see the same folds.

Files in ``models/{name}/``: ``model.pt`` (network weights + fitted encoders as plain data: loadable with
``torch.load(weights_only=True)``), ``model_card.json`` / ``model_card.md``, ``oof.npz``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from iconoscope.errors import IconoscopeError, InputError
from iconoscope.learn.multimodal.data import FeaturePipeline, Project, RawData, gather, load_project
from iconoscope.learn.multimodal.features import TargetEncoder
from iconoscope.learn.multimodal.metrics import TaskScores, task_metrics
from iconoscope.learn.multimodal.model import MultimodalClassifier, Task
from iconoscope.learn.multimodal.specs import same_field

FORMAT = "iconoscope-multimodal/1"


class ModelCard(dict):  # type: ignore[type-arg]
    """The model card (a plain dict, as written to model_card.json) with a one-line summary for the CLI."""

    def summary(self) -> str:
        parts = [f"{self['name']} v{self['version']} (multimodal, {self['folds']}-fold CV, "
                 f"{self['records']['labelled']} labelled records)"]
        for task, t in self["tasks"].items():
            cv = t["cv"]
            parts.append(f"{task}: top-1 {cv.get('top1', float('nan')):.3f} ± {cv.get('top1_std', 0.0):.3f}, "
                         f"macro F1 {cv.get('macro_f1', float('nan')):.3f} ({t['classes']} classes)")
        return "; ".join(parts)


@dataclass
class Targets:
    encoders: list[TargetEncoder]
    Y: list[np.ndarray]
    has: list[np.ndarray]

    @property
    def any(self) -> np.ndarray:
        return np.logical_or.reduce(self.has)

    def tasks(self, project: Project) -> list[Task]:
        return [Task(e.name, len(e.classes), e.multilabel,
                     project.task_weights.get(e.name, project.task_weights.get("*", 1.0)),
                     tuple(i.text for i in project.inputs if same_field(i, e.spec)))
                for e in self.encoders]


def prepare_targets(project: Project, raw: RawData) -> Targets:
    """Fit the class sets (classes below ``min_count`` records are dropped) and encode every record's labels."""
    encs, Ys, hs = [], [], []
    for spec in project.targets:
        enc = TargetEncoder(spec, project.min_count.get(spec.name, project.min_count.get("*", 1)),
                            project.max_classes)
        values = raw.targets[spec.name]
        enc.fit(values)
        if len(enc.classes) < 2:
            have = sum(1 for v in values if v)
            raise InputError(project.where, f"target {spec.text!r}: {len(enc.classes)} class(es) with at least "
                                            f"{enc.min_count} records ({have} records have a value); "
                                            "a classifier needs two or more (lower min_count?)")
        Y, has = enc.transform(values)
        encs.append(enc)
        Ys.append(Y)
        hs.append(has)
    return Targets(encs, Ys, hs)


def make_folds(targets: Targets, k: int, seed: int = 0) -> np.ndarray:
    """Fold number per record (-1 for records with no label in any task).

    Stratified on all tasks at once (the learning stage's iterative stratification over the union of every task's
    classes), so each fold gets its share of the rare artists *and* of the rare decades."""
    from iconoscope.learn.kfold import iterative_stratification

    rows = np.flatnonzero(targets.any)
    if len(rows) < k:
        raise InputError("cross-validation", f"{len(rows)} labelled records for {k} folds; need at least {k}")
    Y = np.concatenate([(y[rows] > 0) & h[rows, None] for y, h in zip(targets.Y, targets.has, strict=True)], axis=1)
    fold = np.full(len(targets.has[0]), -1, dtype=np.int64)
    fold[rows] = iterative_stratification(Y, k, seed)
    return fold


def _fit(project: Project, raw: RawData, targets: Targets, rows: np.ndarray,
         bar: Any = None) -> tuple[FeaturePipeline, MultimodalClassifier]:
    pipe = FeaturePipeline(project.inputs, project.input_min_count).fit(raw, rows)
    Xi, Xm, _ = pipe.transform(raw, rows)
    clf = MultimodalClassifier(pipe.slots(), targets.tasks(project), project.net)
    clf.fit(Xi, Xm, [y[rows] for y in targets.Y], [h[rows] for h in targets.has], progress=bar)
    return pipe, clf


def cross_validate(project: Project, raw: RawData, targets: Targets, fold: np.ndarray, label: str = "",
                   progress: bool = True) -> list[TaskScores]:
    """Out-of-fold probabilities for every labelled record."""
    from tqdm import tqdm

    k = int(fold.max()) + 1
    oof = [np.full((len(raw), len(e.classes)), np.nan, dtype=np.float32) for e in targets.encoders]
    desc = f"cv {project.name}" + (f" [{label}]" if label else "")
    epochs = k * project.net.epochs * project.net.ensemble
    with tqdm(total=epochs, desc=desc, unit="epoch", disable=not progress, leave=False) as bar:
        for f in range(k):
            train, test = np.flatnonzero((fold >= 0) & (fold != f)), np.flatnonzero(fold == f)
            pipe, clf = _fit(project, raw, targets, train, bar)
            Xi, Xm, _ = pipe.transform(raw, test)
            for t, P in enumerate(clf.predict_proba(Xi, Xm)):
                oof[t][test] = P
    return [TaskScores(e.name, e.classes, P, Y, h & (fold >= 0), fold, e.multilabel)
            for e, P, Y, h in zip(targets.encoders, oof, targets.Y, targets.has, strict=True)]


def release_store(ws: Any) -> None:
    """Close the graph store while the CPU-bound part runs: the embedded store holds a file lock, and a training
    that takes an hour should not keep 'serve' or another verb out of the workspace. It reopens on next use."""
    close = getattr(ws, "close", None)
    if callable(close):
        close()


# ---------------------------------------------------------------- files
def _project_summary(project: Project) -> dict[str, Any]:
    return {"inputs": [i.text for i in project.inputs], "targets": [t.text for t in project.targets],
            "backbone": project.backbone if project.image_inputs else None,
            "text_encoder": project.text_encoder if any(i.kind == "text" for i in project.inputs) else None,
            "sources": list(project.sources), "separators": project.separators, "min_count": project.min_count}


def save_oof(path: Path, raw: RawData, fold: np.ndarray, scores: list[TaskScores], key: str = "") -> None:
    arrays: dict[str, Any] = {"records": np.array(raw.table.ids, dtype=object).astype(str), "fold": fold,
                              "key": np.array(key)}
    for t, ts in enumerate(scores):
        arrays[f"P{t}"], arrays[f"Y{t}"], arrays[f"has{t}"] = ts.P, ts.Y, ts.has
        arrays[f"classes{t}"] = np.array(ts.classes, dtype=str)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def load_oof(path: Path, project: Project) -> tuple[np.ndarray, list[TaskScores]]:
    with np.load(path, allow_pickle=False) as z:
        fold = z["fold"]
        out = []
        for t, spec in enumerate(project.targets):
            out.append(TaskScores(spec.name, [str(c) for c in z[f"classes{t}"]], z[f"P{t}"], z[f"Y{t}"],
                                  z[f"has{t}"], fold, spec.kind == "set"))
    return fold, out


def read_card(ws: Any, name: str) -> dict[str, Any] | None:
    p = ws.model_dir(name) / "model_card.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def _card_md(card: dict[str, Any]) -> str:
    lines = [f"# Model card: {card['name']} (multimodal, version {card['version']})", "",
             f"Trained {card['trained_at']} on {card['records']['labelled']} labelled records "
             f"({card['records']['total']} in scope), {card['folds']}-fold cross-validation.", "",
             f"- Inputs: {', '.join(card['project']['inputs'])}",
             f"- Targets: {', '.join(card['project']['targets'])}"]
    if card["project"].get("backbone"):
        lines.append(f"- Image backbone: `{card['project']['backbone']}`")
    if card["project"].get("text_encoder"):
        lines.append(f"- Text encoder: `{card['project']['text_encoder']}`")
    n, seed = int(card.get("params", {}).get("ensemble", 1)), int(card.get("params", {}).get("seed", 0))
    if n > 1:
        lines.append(f"- Ensemble: {n} networks (seeds {seed}-{seed + n - 1}), probabilities averaged")
    lines += ["", "| task | classes | labelled | top-1 | macro F1 |", "|---|---|---|---|---|"]
    for name, t in card["tasks"].items():
        m = t["cv"]
        lines.append(f"| {name} | {t['classes']} | {t['labelled']} | {m.get('top1', float('nan')):.3f} ± "
                     f"{m.get('top1_std', 0):.3f} | {m.get('macro_f1', float('nan')):.3f} ± "
                     f"{m.get('macro_f1_std', 0):.3f} |")
    lines += ["", "Scores are out-of-fold (each record scored by a model that did not see it), mean ± standard "
              "deviation over folds."]
    return "\n".join(lines) + "\n"


def save_model(ws: Any, project: Project, pipe: FeaturePipeline, clf: MultimodalClassifier, targets: Targets,
               card: dict[str, Any]) -> Path:
    import torch

    folder = ws.model_dir(project.name)
    state = {"format": FORMAT, "version": card["version"], "project": _project_summary(project),
             "pipeline": pipe.state(), "targets": [e.state() for e in targets.encoders],
             "classifier": clf.state()}
    tmp = folder / "model.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(folder / "model.pt")
    (folder / "model_card.json").write_text(json.dumps(card, indent=1, ensure_ascii=False), encoding="utf-8")
    (folder / "model_card.md").write_text(_card_md(card), encoding="utf-8")
    return folder


@dataclass
class TrainedModel:
    project: Project
    pipeline: FeaturePipeline
    classifier: MultimodalClassifier
    classes: list[list[str]]
    version: int
    card: dict[str, Any]


def load_model(ws: Any, name: str, project: Project | None = None) -> TrainedModel:
    """The trained model of ``name``; an error naming the file when it is missing or was trained differently."""
    import torch

    project = project or load_project(ws, name)
    path = ws.model_dir(name) / "model.pt"
    if not path.is_file():
        raise IconoscopeError(f"{path}: no trained model for '{name}'; run 'iconoscope train {name}' first")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise IconoscopeError(f"{path}: cannot read the model: {e}") from e
    if state.get("format") != FORMAT:
        raise IconoscopeError(f"{path}: not a multimodal model file (format {state.get('format')!r})")
    trained = state["project"]
    if trained["targets"] != [t.text for t in project.targets]:
        raise IconoscopeError(f"{path}: trained for targets {trained['targets']}, the config now says "
                              f"{[t.text for t in project.targets]}; retrain with 'iconoscope train {name}'")
    pipe = FeaturePipeline.from_state(state["pipeline"], project.inputs)
    clf = MultimodalClassifier.from_state(state["classifier"])
    return TrainedModel(project, pipe, clf, [list(t["classes"]) for t in state["targets"]], int(state["version"]),
                        read_card(ws, name) or {})


# ---------------------------------------------------------------- the verbs' entry points
def train_multimodal(ws: Any, name: str, folds: int | None = None, progress: bool = True) -> ModelCard:
    """Cross-validate, then fit the final model on all labelled records; returns the model card."""
    from tqdm import tqdm

    t0 = time.time()
    project = load_project(ws, name)
    k = folds or project.folds
    raw = gather(ws, project, progress=progress)
    release_store(ws)
    targets = prepare_targets(project, raw)
    fold = make_folds(targets, k, project.net.seed)
    scores = cross_validate(project, raw, targets, fold, progress=progress)
    labelled = np.flatnonzero(targets.any)
    with tqdm(total=project.net.epochs * project.net.ensemble, desc=f"train {name}", unit="epoch", disable=not progress,
              leave=False) as bar:
        pipe, clf = _fit(project, raw, targets, labelled, bar)
    prev = read_card(ws, name) or {}
    present = {s.text: int(np.asarray(v[1]).sum()) if isinstance(v, tuple) else
               sum(1 for x in v if x not in (None, [], "")) for s, v in
               ((s, raw.inputs[s.text]) for s in project.inputs)}
    card = ModelCard({
        "name": name, "head": "multimodal", "version": int(prev.get("version", 0)) + 1,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"), "folds": k,
        "project": _project_summary(project), "params": {**vars(project.net)},
        "records": {"total": len(raw), "labelled": len(labelled)},
        "inputs_present": present,
        "tasks": {ts.name: {"classes": len(ts.classes), "labelled": int(ts.has.sum()),
                            "cv": {k2: v for k2, v in task_metrics(ts).items() if k2 != "folds"}}
                  for ts in scores},
        "train_seconds": round(time.time() - t0, 1),
    })
    folder = save_model(ws, project, pipe, clf, targets, card)
    save_oof(folder / "oof.npz", raw, fold, scores)
    return card
