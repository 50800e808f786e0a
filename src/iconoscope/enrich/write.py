"""Prediction runs: classifier scores -> W3C Web Annotations in one named graph per run (docs/graph-model.md).

A run is a ``prov:Activity`` (classifier, model IRI and version, parameters, start/end times, the categories it
scores and every image it scored) plus one ``oa:Annotation`` per stored score. Why the care:

* **Atomic replacement.** The new run goes into its own graph ``B/graph/run/{run_id}`` through
  ``Store.replace_graph`` (staging graph + one MOVE); only then are the older runs of the classifier dropped. An
  interrupted predict leaves the previous run whole. The activity is the last thing written, so even a half-loaded
  staging graph never looks like a run to any reader.
* **No duplicates.** Every run has a fresh id; re-running predict replaces, it never adds.
* **A floor.** Scores below ``floor`` are not stored, except the score of every (image, category) pair whose record
  is curated with the category (or below it) when the run is written: those are exactly the scores the noise audit
  compares with its (low) thresholds, and there is about one per record. So the floor can sit well above the noise
  thresholds and the audit stays exact, while the graph keeps a small fraction of the scores (measured trade-off in
  the README). Per category the floor is lowered to the silence threshold when that is lower (``predict_run``
  passes them), so every score the silence audit needs is stored too. An image marked ``ico:scoredImage`` with no
  stored score for c scored below the floor.
* **A derived index** (``index.py``) is written from the very same values, keyed by the run id.

Scores are written as ``xsd:float`` with 9 significant digits, which round-trips float32 exactly, so the graph, the
index and any SPARQL client compare the same numbers.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from iconoscope.enrich.index import build_index, drop_index, index_dir, save_index
from iconoscope.enrich.runs import list_runs
from iconoscope.enrich.tables import select_table
from iconoscope.errors import ConfigError, InputError
from iconoscope.graph import queries
from iconoscope.graph.queries import Raw
from iconoscope.graph.terms import nt_iri, nt_literal
from iconoscope.graph.vocab import ICO, OA, PROV, RDF_TYPE, XSD
from iconoscope.workspace import slug

DEFAULT_FLOOR = 0.05


@dataclass
class RunReport:
    """What a prediction run wrote."""

    classifier: str
    run_id: str = ""
    model_version: str = ""
    images: int = 0
    categories: int = 0
    annotations: int = 0
    below_floor: int = 0
    curated_kept: int = 0
    triples: int = 0
    oof_images: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    dropped_runs: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        skipped = "".join(f", {n} skipped ({why})" for why, n in self.skipped.items() if n)
        oof = f" ({self.oof_images} training images scored out-of-fold)" if self.oof_images else ""
        return (f"run {self.run_id}: {self.images} images x {self.categories} categories{oof} -> "
                f"{self.annotations} annotations ({self.curated_kept} curated pairs kept under the floor, "
                f"{self.below_floor} other scores below it not stored), "
                f"{self.triples} triples in {self.seconds:.1f} s{skipped}; replaced {len(self.dropped_runs)} "
                "earlier run(s)")


def new_run_id(name: str, when: datetime | None = None) -> str:
    """``{classifier}-{UTC time to the microsecond}-{random}``: unique, and sorts by time."""
    when = when or datetime.now(UTC)
    return f"{slug(name)}-{when.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:6]}"


def _dt(t: datetime) -> str:
    return nt_literal(t.astimezone(UTC).isoformat().replace("+00:00", "Z"), datatype=XSD + "dateTime")


def _check_iri(value: str, what: str) -> str:
    try:
        return nt_iri(value)
    except ValueError:
        raise InputError("predictions", f"{what} {value!r} is not a valid IRI") from None


def _floors(categories: Sequence[str], floor: float, floors: dict[str, float] | None) -> np.ndarray:
    if not 0 <= floor <= 1:
        raise ConfigError(f"floor = {floor}: expected a number from 0 to 1")
    out = np.full(len(categories), floor, dtype=np.float32)
    for j, c in enumerate(categories):
        if floors and c in floors and floors[c] is not None and not np.isnan(floors[c]):
            out[j] = np.float32(min(floor, float(floors[c])))
    return out


def image_records(ws: Any, image_iris: Sequence[str]) -> dict[str, str]:
    """image IRI -> record IRI, read from the graph (all images at once: one query, native CSV path)."""
    t = select_table(ws.store, queries.load("enrich_all_image_records", source=Raw("UNDEF")))
    want = set(image_iris)
    return {i: r for i, r in zip(t.column("image").to_pylist(), t.column("record").to_pylist(), strict=True)
            if i in want and r}


def write_run(ws: Any, name: str, image_ids: Sequence[str], categories: Sequence[str], scores: np.ndarray,
              model_version: str | int, params: dict[str, Any] | None = None, **kw: Any) -> str:
    """Write one prediction run of classifier ``name`` and return its run id (see ``write_run_report``)."""
    return write_run_report(ws, name, image_ids, categories, scores, model_version, params, **kw).run_id


def write_run_report(ws: Any, name: str, image_ids: Sequence[str], categories: Sequence[str], scores: np.ndarray,
                     model_version: str | int, params: dict[str, Any] | None = None, *,
                     records: Sequence[str | None] | None = None, floor: float = DEFAULT_FLOOR,
                     floors: dict[str, float] | None = None, keep_curated: bool = True,
                     started: datetime | None = None,
                     show_progress: bool = True, report: RunReport | None = None) -> RunReport:
    """Write scores ``[len(image_ids), len(categories)]`` (NaN = not scored) as a new run replacing the previous one.

    ``image_ids`` are image identifiers (``B/image/{id}``); ``records`` their record ids when the caller knows them
    (else they are read from the graph and images unknown to the graph are skipped). ``categories`` are concept IRIs.
    ``floors`` lowers the floor per category (``predict_run`` passes the silence thresholds); with ``keep_curated``
    the scores of curated (record, category) pairs are stored whatever the floor.
    """
    t0 = time.perf_counter()
    started = started or datetime.now(UTC)
    report = report or RunReport(classifier=name)
    S = np.asarray(scores, dtype=np.float32)
    cats = list(categories)
    if S.ndim != 2 or S.shape != (len(image_ids), len(cats)):
        raise InputError("predictions", f"scores have shape {S.shape}; expected ({len(image_ids)}, {len(cats)}) "
                                        "= (images, categories)")
    if len(set(cats)) != len(cats):
        raise InputError("predictions", "a category is listed twice")
    cat_nt = [_check_iri(c, "category") for c in cats]
    bad = ~np.isnan(S) & ((S < 0) | (S > 1))
    if bad.any():
        i, j = (int(x[0]) for x in np.nonzero(bad))
        raise InputError("predictions", f"score {S[i, j]} outside [0, 1]", record=str(image_ids[i]))
    ids = [str(i) for i in image_ids]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise InputError("predictions", "image listed twice", record=dup)
    iris = ws.iris
    img_iris = [iris.image(i) for i in ids]
    if records is None:
        known = image_records(ws, img_iris)
        keep = np.array([i in known for i in img_iris], dtype=bool)
        rec_iris = [known.get(i, "") for i in img_iris]
    else:
        if len(records) != len(ids):
            raise InputError("predictions", f"{len(records)} records for {len(ids)} images")
        keep = np.ones(len(ids), dtype=bool)
        rec_iris = [iris.record(r) if r else "" for r in records]
    if not keep.all():
        report.skipped["not in the graph"] = int((~keep).sum())
        sel = np.flatnonzero(keep)
        ids = [ids[k] for k in sel]
        img_iris = [img_iris[k] for k in sel]
        rec_iris = [rec_iris[k] for k in sel]
        S = S[sel]
    fl = _floors(cats, floor, floors)
    stored = ~np.isnan(S) & (fl[None, :] <= S)
    if keep_curated and len(ids):
        from iconoscope.enrich.curated import curated_matrix

        uniq, inv = np.unique(np.asarray(rec_iris, dtype=object).astype(str), return_inverse=True)
        cur = curated_matrix(ws, cats, [str(u) for u in uniq])[inv]
        stored |= ~np.isnan(S) & cur
        report.curated_kept = int((cur & ~np.isnan(S) & (fl[None, :] > S)).sum())
    S_kept = np.where(stored, S, np.float32(np.nan)).astype(np.float32)
    run_id = new_run_id(name, started)
    params = dict(params or {})
    params["floor"] = float(floor)
    low = {c: float(f) for c, f in zip(cats, fl.tolist(), strict=True) if f < floor}
    if low:
        params["floors"] = low
    report.run_id, report.model_version = run_id, str(model_version)
    report.images, report.categories = len(ids), len(cats)
    report.annotations = int(stored.sum())
    report.below_floor = int((~np.isnan(S) & ~stored).sum())

    # the index first (keyed by the new run id, invisible to readers until the graph names that run)
    save_index(ws, build_index(run_id, name, cats, img_iris, rec_iris, S_kept,
                               meta={**params, "model_version": str(model_version)}))
    graph = iris.run_graph(run_id)
    lines = _run_lines(ws, run_id, name, str(model_version), params, cats, cat_nt, ids, img_iris, S_kept, started,
                       show_progress)
    try:
        report.triples = ws.store.replace_graph(graph, lines)
    except BaseException:
        drop_index(ws, run_id)
        raise
    report.dropped_runs = drop_older_runs(ws, name, keep=run_id)
    report.seconds = time.perf_counter() - t0
    return report


def drop_older_runs(ws: Any, name: str, keep: str) -> list[str]:
    """Drop every other run graph of classifier ``name`` (and its index); returns the dropped run ids."""
    dropped = []
    for run in list_runs(ws, name):
        if run.run_id != keep:
            ws.store.drop_graph(run.graph)
            drop_index(ws, run.run_id)
            dropped.append(run.run_id)
    # indexes whose run never made it into the graph (a crash between the index and the graph)
    root = ws.runs_dir()
    for meta in root.glob("*/meta.json"):
        try:
            m = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if m.get("classifier") == name and m.get("run_id") != keep and meta.parent != index_dir(ws, keep):
            drop_index(ws, str(m.get("run_id")))
    return dropped


def _run_lines(ws: Any, run_id: str, name: str, version: str, params: dict[str, Any], cats: list[str],
               cat_nt: list[str], ids: list[str], img_iris: list[str], S: np.ndarray, started: datetime,
               show_progress: bool) -> Iterator[str]:
    """N-Triples of the run: annotations image by image, then the activity (last, see the module docstring)."""
    from tqdm import tqdm

    run = nt_iri(ws.iris.run(run_id))
    a_prefix = "<" + ws.iris.annotation(run_id, "")
    head = f" <{RDF_TYPE}> <{OA}Annotation> .\n"
    motiv = f" <{OA}motivatedBy> <{OA}classifying> .\n"
    target, body = f" <{OA}hasTarget> ", f" <{OA}hasBody> "
    score_p, score_t = f' <{ICO}score> "', f'"^^<{XSD}float> .\n'
    gen = f" <{PROV}wasGeneratedBy> {run} .\n"
    scored = f"{run} <{ICO}scoredImage> "
    present = ~np.isnan(S)
    img_prefix = len(ws.iris.image(""))       # the annotation key reuses the image's encoded path segment
    bar = tqdm(total=len(ids), desc=f"write run {name}", unit="img", disable=not show_progress, file=sys.stderr,
               dynamic_ncols=True, mininterval=1.0)
    try:
        for i in range(len(ids)):
            img = nt_iri(img_iris[i])
            parts = [f"{scored}{img} .\n"]
            key = img_iris[i][img_prefix:]
            js = np.flatnonzero(present[i])
            for j, s in zip(js.tolist(), S[i, js].tolist(), strict=True):
                a = f"{a_prefix}{key}~{j}>"
                parts.append(f"{a}{head}{a}{motiv}{a}{target}{img} .\n{a}{body}{cat_nt[j]} .\n"
                             f"{a}{score_p}{s:.9g}{score_t}{a}{gen}")
            yield "".join(parts)
            if i % 2048 == 2047:
                bar.update(2048)
        bar.update(len(ids) - bar.n)
    finally:
        bar.close()
    p = f"{run} <{ICO}category> "
    yield "".join(f"{p}{c} .\n" for c in cat_nt)
    ended = datetime.now(UTC)
    yield (f"{run} <{RDF_TYPE}> <{PROV}Activity> .\n"
           f"{run} <{ICO}classifier> {nt_literal(name)} .\n"
           f"{run} <{PROV}used> {nt_iri(ws.iris.model(name))} .\n"
           f"{run} <{ICO}modelVersion> {nt_literal(version)} .\n"
           f"{run} <{ICO}parameters> {nt_literal(json.dumps(params, sort_keys=True, default=str))} .\n"
           f"{run} <{PROV}startedAtTime> {_dt(started)} .\n"
           f"{run} <{PROV}endedAtTime> {_dt(ended)} .\n")


# ---- field predictions (multimodal) --------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldPrediction:
    """A predicted field value: ``target`` (image or record IRI), ``field`` name, ``value`` (a literal, or an IRI
    when ``iri`` is true), ``score``."""

    target: str
    field: str
    value: str
    score: float
    iri: bool = False


def field_annotation_lines(ws: Any, run_id: str, predictions: Sequence[FieldPrediction]) -> Iterator[str]:
    """Annotations with a literal (or IRI) body and ``ico:field``, for a run graph (graph-model.md).

    The multimodal stage writes its own runs (``learn.multimodal.annotate``); this is the shared shape for anyone
    adding field predictions to a run written with ``write_field_run``.
    """
    run = nt_iri(ws.iris.run(run_id))
    for n, p in enumerate(predictions):
        if not 0 <= p.score <= 1:
            raise InputError("field predictions", f"score {p.score} outside [0, 1]", record=p.target)
        a = nt_iri(ws.iris.annotation(run_id, f"f{n}"))
        value = _check_iri(p.value, "value") if p.iri else nt_literal(p.value)
        yield (f"{a} <{RDF_TYPE}> <{OA}Annotation> .\n{a} <{OA}motivatedBy> <{OA}classifying> .\n"
               f"{a} <{OA}hasTarget> {_check_iri(p.target, 'target')} .\n{a} <{OA}hasBody> {value} .\n"
               f"{a} <{ICO}field> {nt_literal(p.field)} .\n{a} <{ICO}score> \"{float(p.score):.9g}\"^^<{XSD}float> .\n"
               f"{a} <{PROV}wasGeneratedBy> {run} .\n")


def write_field_run(ws: Any, name: str, predictions: Sequence[FieldPrediction], model_version: str | int,
                    params: dict[str, Any] | None = None, started: datetime | None = None) -> str:
    """Write field predictions as a new run of ``name``, replacing that classifier's previous field runs."""
    started = started or datetime.now(UTC)
    run_id = new_run_id(name, started)
    run = nt_iri(ws.iris.run(run_id))

    def lines() -> Iterator[str]:
        yield from field_annotation_lines(ws, run_id, predictions)
        yield (f"{run} <{RDF_TYPE}> <{PROV}Activity> .\n{run} <{ICO}classifier> {nt_literal(name)} .\n"
               f"{run} <{PROV}used> {nt_iri(ws.iris.model(name))} .\n"
               f"{run} <{ICO}modelVersion> {nt_literal(str(model_version))} .\n"
               f"{run} <{ICO}parameters> {nt_literal(json.dumps(params or {}, sort_keys=True, default=str))} .\n"
               f"{run} <{PROV}startedAtTime> {_dt(started)} .\n"
               f"{run} <{PROV}endedAtTime> {_dt(datetime.now(UTC))} .\n")

    ws.store.replace_graph(ws.iris.run_graph(run_id), lines())
    res = ws.store.select(queries.load("enrich_field_runs", classifier=name))
    for row in res.dicts():
        if str(row["run"]) != ws.iris.run(run_id):
            ws.store.drop_graph(str(row["g"]))
    return run_id


# ---- predict NAME ----------------------------------------------------------------------------------------------------

def predict_run(ws: Any, name: str, source: str | None = None, engine: str = "local", *,
                floor: float = DEFAULT_FLOOR, use_oof: bool = True, show_progress: bool = True) -> RunReport:
    """Score every image (of ``source``, or all) with classifier ``name`` and write the run into the graph.

    Vectors come from the embedding store of the classifier's backbone (images without one are embedded first with
    ``engine``). For images the classifier was trained on, the written score is their out-of-fold score when
    ``use_oof`` (the default): an in-sample score mostly repeats the curated label, which would hide the very errors
    the audit looks for. The run's ``ico:parameters`` say how many images were scored that way.
    """
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.embed import EmbeddingStore, embed_images, graph_images

    t0 = time.perf_counter()
    started = datetime.now(UTC)
    clf = load_classifier(ws, name)
    if source is not None:
        ws.config.source(source)
    images = graph_images(ws, [source] if source else None)
    if not images:
        raise ConfigError(f"no images in the graph{' for source ' + repr(source) if source else ''}; "
                          "run 'iconoscope ingest' first")
    store = EmbeddingStore(ws, clf.backbone)
    has = store.has([p.image for p in images])
    if not has.all():
        embed_images(ws, clf.backbone, engine=engine, sources=[source] if source else None,
                     show_progress=show_progress)
        has = store.has([p.image for p in images])
    report = RunReport(classifier=name)
    if not has.all():
        report.skipped["no vector (image failed to embed)"] = int((~has).sum())
    todo = [p for p, h in zip(images, has, strict=True) if h]
    ids, X = store.load([p.image for p in todo])
    S = clf.predict_proba(X).astype(np.float32)
    floors: dict[str, float] = {}
    oof_n = 0
    from iconoscope.enrich.thresholds import class_thresholds, oof_path

    if oof_path(ws, name).exists():
        th = class_thresholds(ws, name)
        floors = {c: float(th.t_pos[j]) for j, c in enumerate(th.concepts) if not np.isnan(th.t_pos[j])}
        if use_oof:
            oof_n = _substitute_oof(ws, name, ids, list(clf.categories), S)
    params = {"backbone": clf.backbone, "head": clf.kind, "source": source, "engine": engine,
              "training_images": "out_of_fold" if use_oof else "model", "oof_images": oof_n}
    report.oof_images = oof_n
    write_run_report(ws, name, ids, list(clf.categories), S, clf.version, params,
                     records=[p.record for p in todo], floor=floor, floors=floors, started=started,
                     show_progress=show_progress, report=report)
    report.seconds = time.perf_counter() - t0
    return report


def _substitute_oof(ws: Any, name: str, ids: list[str], categories: list[str], S: np.ndarray) -> int:
    """Overwrite ``S`` in place with out-of-fold scores where the OOF table has them; returns the image count."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from iconoscope.enrich.thresholds import oof_path

    t = pq.read_table(oof_path(ws, name), columns=["image", "concept", "score"])
    extra = set(pc.unique(t.column("concept")).to_pylist()) - set(categories)
    if extra:
        warnings.warn(f"{oof_path(ws, name)}: out-of-fold scores name {len(extra)} concept(s) the model does not "
                      "score (stale file?); they are ignored", stacklevel=2)
    pos = {i: k for k, i in enumerate(ids)}
    col = {c: j for j, c in enumerate(categories)}
    rows = np.array([pos.get(i, -1) for i in t.column("image").to_pylist()], dtype=np.int64)
    cols = np.array([col.get(c, -1) for c in t.column("concept").to_pylist()], dtype=np.int64)
    vals = t.column("score").to_numpy().astype(np.float32)
    ok = (rows >= 0) & (cols >= 0)
    S[rows[ok], cols[ok]] = vals[ok]
    return len(set(rows[ok].tolist()))
