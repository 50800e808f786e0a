"""Predict the missing fields of records and write them as suggestions (never over a curator's value).

For each task, only records *without* a value for that field get suggestions (the top ``k`` values with their
scores). A record that lacks one of the model's inputs (no image vector, no title) is still predicted, from the
inputs it has: the model was trained to do so (modality dropout), and the report counts how many records were
predicted without each input, so a user sees when, say, half the images were never embedded.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError, InputError
from iconoscope.learn.multimodal.annotate import FieldSuggestion, is_iri_value, write_field_run
from iconoscope.learn.multimodal.data import Project, RawData, gather, load_project
from iconoscope.learn.multimodal.records import RecordTable, load_records
from iconoscope.learn.multimodal.train import TrainedModel, load_model, release_store


@dataclass
class PredictReport:
    run_id: str | None
    records: int
    suggestions: dict[str, int] = field(default_factory=dict)  # task -> annotations written
    filled: dict[str, int] = field(default_factory=dict)  # task -> records that got suggestions
    already: dict[str, int] = field(default_factory=dict)  # task -> records with a curator's value (left alone)
    missing_inputs: dict[str, int] = field(default_factory=dict)  # input -> records predicted without it

    def summary(self) -> str:
        parts = [f"{self.records} records"]
        for task in self.suggestions:
            parts.append(f"{task}: {self.filled[task]} records missing it got {self.suggestions[task]} suggestions "
                         f"({self.already[task]} already have a value, left alone)")
        for name, n in self.missing_inputs.items():
            if n:
                parts.append(f"{n} records predicted without input {name!r}")
        if self.run_id:
            parts.append(f"run {self.run_id}")
        return "; ".join(parts)


def suggest(model: TrainedModel, raw: RawData, k: int, min_score: float = 0.0,
            only_missing: bool = True) -> tuple[list[FieldSuggestion], dict[str, Any]]:
    """Top-k suggestions per (record, task) for the records missing the field (all records if not only_missing)."""
    project = model.project
    Xi, Xm, present = model.pipeline.transform(raw)
    probs = model.classifier.predict_proba(Xi, Xm)
    out: list[FieldSuggestion] = []
    stats: dict[str, Any] = {"filled": {}, "already": {}, "suggestions": {},
                             "missing_inputs": {name: int((~p).sum()) for name, p in present.items()}}
    table = raw.table
    for spec, classes, P in zip(project.targets, model.classes, probs, strict=True):
        has = np.array(table.has_value(spec.field), dtype=bool)
        rows = np.flatnonzero(~has) if only_missing else np.arange(len(table))
        kk = min(k, len(classes))
        top = np.argsort(-P[rows], axis=1)[:, :kk]
        n = 0
        for r, cls_idx in zip(rows, top, strict=True):
            for rank, c in enumerate(cls_idx, start=1):
                score = float(P[r, c])
                if score < min_score:
                    continue
                value = classes[c]
                out.append(FieldSuggestion(table.iris[r], spec.name, value, score, rank,
                                           iri_body=spec.field.key == "subject" or is_iri_value(value)))
                n += 1
        stats["filled"][spec.name] = len(rows)
        stats["already"][spec.name] = int(has.sum())
        stats["suggestions"][spec.name] = n
    return out, stats


def predict_multimodal(ws: Any, name: str, source: str | None = None, images: Any = None, out: Path | None = None,
                       k: int | None = None, min_score: float = 0.0, write: bool = True,
                       progress: bool = True, **_: Any) -> PredictReport:
    """Suggest values for the missing fields of the records in scope; write them as a run (and/or a CSV)."""
    if images is not None:
        raise ConfigError(f"classifier '{name}' is multimodal: it fills record fields from the graph, so it "
                          "cannot classify loose image files (--images); ingest them as records first")
    project: Project = load_project(ws, name)
    model = load_model(ws, name, project)
    if source is not None:
        ws.config.source(source)  # a ConfigError naming the source when it is not declared
    table: RecordTable = load_records(ws, (source,) if source else project.sources)
    if len(table) == 0:
        raise InputError(project.where, f"no records to predict for{' in source ' + source if source else ''}")
    started = datetime.now(UTC)
    raw = gather(ws, project, table, targets=False, progress=progress)
    for t in project.targets:  # read what 'suggest' needs, then free the store while computing
        table.has_value(t.field)
    release_store(ws)
    suggestions, stats = suggest(model, raw, k or project.top_k, min_score)
    run_id = None
    if write:
        params = {"k": k or project.top_k, "min_score": min_score, "source": source,
                  "inputs": [i.text for i in project.inputs], "targets": [t.text for t in project.targets]}
        run_id = write_field_run(ws, name, model.version, suggestions, params, started)
    if out is not None:
        write_csv(Path(out), table, suggestions)
    return PredictReport(run_id, len(table), stats["suggestions"], stats["filled"], stats["already"],
                         stats["missing_inputs"])


def write_csv(path: Path, table: RecordTable, suggestions: list[FieldSuggestion]) -> None:
    ids = dict(zip(table.iris, table.ids, strict=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["record", "field", "rank", "value", "score"])
        for s in suggestions:
            w.writerow([ids.get(s.record_iri, s.record_iri), s.field, s.rank, s.value, f"{s.score:.4f}"])
