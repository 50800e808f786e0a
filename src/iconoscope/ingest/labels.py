"""Training labels from the graph (``iconoscope labels CLASSIFIER``), by SPARQL rules in .rq files.

A classifier project names categories (concept IRIs, or notations of its vocabulary). The rules:

* rows (``labels_records.rq``): every image of a record with at least one curated subject (``dcterms:subject``)
  that the classifier's vocabulary graph describes; records outside the vocabulary are unknown, not negatives;
* positives (``labels_positives.rq``, ``expand = "narrower"``): a record is positive for C when a curated
  subject is C or below it (``skos:broader*``, over every graph, so a local extension's links count);
  ``expand = "none"`` (``labels_positives_exact.rq``) asks for C itself;
* ``related = true`` (``labels_related*.rq``, as MonaLIA did): a subject skos:related to C (or to a concept
  below C) also makes a positive;
* ``exclude = [...]`` (``labels_excluded.rq``): records with a subject at or below an excluded concept are left
  out of the table (neither positive nor negative);
* subjects (``labels_subjects.rq``): each row also lists its record's curated subjects in the vocabulary (the
  fine keys that ``fine_labels`` heads train on).

Curated subjects include those a curator accepted in the review graph (plain dcterms:subject triples in the
union), so accepted review decisions become labels at the next ``labels`` run. The table and its metadata follow
docs/internals.md.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from iconoscope.config import ClassifierConfig
from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.graph import queries
from iconoscope.graph.queries import IRI, Raw, values_iris
from iconoscope.graph.terms import nt_literal

SCHEMA = pa.schema([
    ("record", pa.string()), ("record_iri", pa.string()), ("image", pa.string()), ("image_iri", pa.string()),
    ("location", pa.string()), ("categories", pa.list_(pa.string())), ("subjects", pa.list_(pa.string())),
])


def resolve_categories(ws: Any, cfg: ClassifierConfig) -> list[str]:
    """The classifier's categories as IRIs (notations and labels are looked up in its vocabulary)."""
    from iconoscope.thesaurus import resolve_concept

    if not cfg.categories:
        raise ConfigError(f"{ws.config_path} [classifiers.{cfg.name}]: no categories (a model with only "
                          "'targets' predicts fields; 'labels' derives category labels)")
    out: list[str] = []
    for c in cfg.categories:
        if cfg.vocabulary is None:
            if not c.startswith(("http://", "https://", "urn:")):
                raise ConfigError(f"{ws.config_path} [classifiers.{cfg.name}]: category {c!r} is not an IRI and "
                                  "the classifier names no vocabulary to look it up in")
            iri = c
        else:
            try:
                iri = resolve_concept(ws, cfg.vocabulary, c)
            except ConfigError:
                raise
            except IconoscopeError as e:
                raise ConfigError(f"{ws.config_path} [classifiers.{cfg.name}]: category {c!r}: {e}") from None
        if iri not in out:
            out.append(iri)
    return out


def pref_labels(ws: Any, iris: list[str]) -> dict[str, str]:
    """IRI -> prefLabel in the collection's first language (else English, else any); the IRI's tail otherwise."""
    langs = [*ws.config.languages, "en", ""]
    found: dict[str, dict[str, str]] = defaultdict(dict)
    if iris:
        for c, label in ws.store.select(queries.load("labels_pref_labels", concepts=values_iris(iris))).rows:
            if c is not None and label is not None:
                found[c.value].setdefault(label.lang or "", label.value)
    out = {}
    for i in iris:
        ls = found.get(i, {})
        out[i] = next((ls[lg] for lg in langs if lg in ls), next(iter(ls.values()), i.rstrip("/").rsplit("/", 1)[-1]))
    return out


def derive_labels(ws: Any, classifier_name: str) -> pa.Table:
    """The label table of a classifier project (schema and metadata: docs/internals.md)."""
    cfg = ws.config.classifier(classifier_name)
    store = ws.store
    categories = resolve_categories(ws, cfg)
    sources = Raw("")
    if cfg.sources:
        sources = Raw("VALUES ?src { " + " ".join(nt_literal(s) for s in cfg.sources) + " } ?record ico:source ?src .")
    texts: list[str] = []
    if cfg.vocabulary is not None:
        graph = ws.iris.vocab_graph(cfg.vocabulary)
        if graph not in store.graphs():
            raise ConfigError(f"classifier '{cfg.name}': vocabulary '{cfg.vocabulary}' is not loaded "
                              f"(run 'iconoscope vocab load {cfg.vocabulary}' or 'iconoscope ingest')")
        texts.append(queries.load("labels_records", vocabulary=IRI(graph), sources=sources))
    else:
        texts.append(queries.load("labels_records_all", sources=sources))
    exact = cfg.expand == "none"
    rules = ["labels_positives_exact" if exact else "labels_positives"]
    if cfg.related:
        rules.append("labels_related_exact" if exact else "labels_related")
    positives: dict[str, set[str]] = defaultdict(set)
    for c in categories:
        for rule in rules:
            text = queries.load(rule, category=IRI(c))
            texts.append(text)
            for (r,) in store.select(text).rows:
                if r is not None:
                    positives[r.value].add(c)
    exclude: list[str] = []
    excluded: set[str] = set()
    if cfg.exclude:
        exclude = resolve_categories(ws, ClassifierConfig(name=cfg.name, vocabulary=cfg.vocabulary,
                                                          categories=cfg.exclude))
        for x in exclude:
            text = queries.load("labels_excluded", category=IRI(x))
            texts.append(text)
            excluded.update(r[0].value for r in store.select(text).rows if r[0] is not None)
    rows = store.select(texts[0]).rows
    subjects: dict[str, set[str]] = defaultdict(set)
    if cfg.vocabulary is not None:
        text = queries.load("labels_subjects", vocabulary=IRI(ws.iris.vocab_graph(cfg.vocabulary)))
        texts.append(text)
        for r, subj in store.select(text).rows:
            if r is not None and subj is not None:
                subjects[r.value].add(subj.value)

    order = {c: i for i, c in enumerate(categories)}
    table_rows = []
    for rec, rid, img, loc in rows:
        if rec is None or img is None or rec.value in excluded:
            continue
        cats_of = sorted(positives.get(rec.value, ()), key=order.__getitem__)
        table_rows.append((rid.value if rid else ws.iris.id_of(rec.value, "record"), rec.value,
                           _image_id(ws, img.value), img.value, loc.value if loc else None, cats_of,
                           sorted(subjects.get(rec.value, ()))))
    table_rows.sort(key=lambda r: (r[0], r[2]))
    columns = list(zip(*table_rows, strict=True)) if table_rows else [[] for _ in SCHEMA.names]
    sizes = [(g.value, n.value) for g, n in store.select(queries.load("labels_graph_sizes")).rows if g and n]
    meta = {
        "classifier": cfg.name,
        "categories": categories,
        "labels": pref_labels(ws, categories),
        "expand": cfg.expand, "related": cfg.related, "exclude": exclude, "excluded_records": len(excluded),
        "query_sha256": hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest(),
        "graph_sha256": hashlib.sha256(json.dumps(sizes).encode("utf-8")).hexdigest(),
    }
    table = pa.table([pa.array(list(col), type=f.type) for col, f in zip(columns, SCHEMA, strict=True)],
                     schema=SCHEMA)
    return table.replace_schema_metadata({"iconoscope": json.dumps(meta, ensure_ascii=False)})


def _image_id(ws: Any, iri: str) -> str:
    try:
        return ws.iris.id_of(iri, "image")
    except ValueError:
        return iri


def write_labels(ws: Any, classifier_name: str, table: pa.Table | None = None, out: Path | str | None = None) -> Path:
    """Write the label table (derived now unless given) to ``labels/{name}.parquet`` or ``out``; atomically."""
    if table is None:
        table = derive_labels(ws, classifier_name)
    path = Path(out) if out is not None else ws.labels_path(classifier_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def label_counts(table: pa.Table) -> list[tuple[str, str, int, int]]:
    """(category IRI, label, records, images) per category, in the table's category order."""
    meta = json.loads((table.schema.metadata or {}).get(b"iconoscope", b"{}"))
    categories: list[str] = meta.get("categories", [])
    labels: dict[str, str] = meta.get("labels", {})
    recs: dict[str, set[str]] = defaultdict(set)
    imgs: dict[str, int] = defaultdict(int)
    for rec, cats in zip(table.column("record").to_pylist(), table.column("categories").to_pylist(), strict=True):
        for c in cats or []:
            recs[c].add(rec)
            imgs[c] += 1
    return [(c, labels.get(c, c), len(recs[c]), imgs[c]) for c in categories]
