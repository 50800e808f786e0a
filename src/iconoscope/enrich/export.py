"""Export a classifier's current run: CSV for spreadsheets, JSON-LD and Turtle for linked-data tools.

All three are read from the run graph (the source of truth), not from the derived index. CSV columns are
``record,image,concept,label,score,model,model_version,run`` (ids for record and image, the concept IRI, its label,
the classifier name as ``model``), sorted by record, image, concept. JSON-LD and Turtle hold the run graph itself
(the activity and every annotation) with our prefixes; both parse back to the same triples (tested). The JSON-LD
context is inline, so it needs no network to expand.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iconoscope.enrich.concepts import concept_labels
from iconoscope.enrich.runs import RunInfo, latest_run, local_id, run_categories
from iconoscope.enrich.tables import select_table
from iconoscope.errors import ConfigError
from iconoscope.graph import queries
from iconoscope.graph.queries import IRI
from iconoscope.graph.vocab import ICO, OA, PROV, RDF_TYPE, XSD

FORMATS = ("csv", "jsonld", "ttl")
CSV_COLUMNS = ["record", "image", "concept", "label", "score", "model", "model_version", "run"]
PREFIXES = {"oa": OA, "ico": ICO, "prov": PROV, "xsd": XSD, "skos": "http://www.w3.org/2004/02/skos/core#",
            "dcterms": "http://purl.org/dc/terms/"}


def current_run(ws: Any, name: str) -> RunInfo:
    run = latest_run(ws, name)
    if run is None:
        ws.config.classifier(name)
        raise ConfigError(f"classifier '{name}' has no prediction run in the graph; run 'iconoscope predict {name}'")
    return run


def export_predictions(ws: Any, name: str, fmt: str, out: TextIO, lang: str | None = None) -> int:
    """Write the current run of ``name`` to ``out`` in ``fmt``; returns the number of annotations written."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    run = current_run(ws, name)
    if fmt == "csv":
        return _csv(ws, run, out, lang)
    if fmt == "ttl":
        return _turtle(ws, run, out)
    return _jsonld(ws, run, out)


def _csv(ws: Any, run: RunInfo, out: TextIO, lang: str | None) -> int:
    t = select_table(ws.store, queries.load("enrich_export_rows", graph=IRI(run.graph), run=IRI(run.iri)))
    t = t.sort_by([("record", "ascending"), ("image", "ascending"), ("concept", "ascending")])
    labels = concept_labels(ws, run_categories(ws, run), lang)
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    version = run.model_version or ""
    scores = pc.cast(t.column("score"), pa.float32()).to_pylist()
    for rec, img, c, s in zip(t.column("record").to_pylist(), t.column("image").to_pylist(),
                              t.column("concept").to_pylist(), scores, strict=True):
        w.writerow([local_id(ws, rec, "record") if rec else "", local_id(ws, img, "image"), c,
                    labels.get(c, ""), str(np.float32(s)), run.classifier, version, run.run_id])
    return t.num_rows


def _graph_triples(ws: Any, run: RunInfo) -> Iterator[Any]:
    import pyoxigraph as ox

    data = ws.store.export("nt", graph=run.graph)
    return ox.parse(data, format=ox.RdfFormat.N_TRIPLES)


def _turtle(ws: Any, run: RunInfo, out: TextIO) -> int:
    import pyoxigraph as ox

    triples = list(_graph_triples(ws, run))
    text = ox.serialize(triples, format=ox.RdfFormat.TURTLE, prefixes=PREFIXES).decode("utf-8")
    out.write(text)
    return sum(1 for t in triples if t.predicate.value == RDF_TYPE and t.object.value == OA + "Annotation")


def _compact(iri: str) -> str:
    for p, ns in PREFIXES.items():
        if iri.startswith(ns) and iri[len(ns):] and "/" not in iri[len(ns):]:
            return f"{p}:{iri[len(ns):]}"
    return iri


def _value(term: Any) -> dict[str, str]:
    import pyoxigraph as ox

    if isinstance(term, ox.NamedNode):
        return {"@id": term.value}
    if isinstance(term, ox.BlankNode):
        return {"@id": f"_:{term.value}"}
    if term.language:
        return {"@value": term.value, "@language": term.language}
    dt = term.datatype.value
    return {"@value": term.value} if dt == XSD + "string" else {"@value": term.value, "@type": _compact(dt)}


def _jsonld(ws: Any, run: RunInfo, out: TextIO) -> int:
    """One JSON object per subject, written as the graph streams by (subjects arrive grouped)."""
    # no top-level @id: the triples land in the default graph of whoever parses the file, as with Turtle
    out.write('{\n "@context": ' + json.dumps(PREFIXES) + ',\n "@graph": [\n')
    n = 0
    first = True
    subject: str | None = None
    node: dict[str, Any] = {}

    def flush() -> None:
        nonlocal first
        if subject is None:
            return
        out.write(("" if first else ",\n") + "  " + json.dumps(node, ensure_ascii=False))
        first = False

    for t in _graph_triples(ws, run):
        s = _value(t.subject)["@id"]
        if s != subject:
            flush()
            subject, node = s, {"@id": s}
        p = t.predicate.value
        if p == RDF_TYPE:
            node.setdefault("@type", []).append(_compact(t.object.value))
            if t.object.value == OA + "Annotation":
                n += 1
        else:
            node.setdefault(_compact(p), []).append(_value(t.object))
    flush()
    out.write("\n ]\n}\n")
    return n


def export_to_string(ws: Any, name: str, fmt: str, lang: str | None = None) -> str:
    buf = io.StringIO()
    export_predictions(ws, name, fmt, buf, lang)
    return buf.getvalue()
