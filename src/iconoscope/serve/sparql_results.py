"""SPARQL 1.1 result formats (JSON, XML, CSV, TSV) and content negotiation for the /sparql endpoint.

We serialise ourselves, from backend-neutral :class:`Term` rows, rather than with the store's native writer,
because the endpoint reads results row by row under a time limit (see ``sparql_exec``) and must behave the
same on the embedded store and on a remote SPARQL server.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from iconoscope.graph.terms import Term
from iconoscope.serve.errors import NotAcceptable

RESULT_MEDIA = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
}
GRAPH_MEDIA = {
    "turtle": "text/turtle; charset=utf-8",
    "nt": "application/n-triples",
    "xml": "application/rdf+xml",
    "json-ld": "application/ld+json",
}
# media type -> format, per kind of result (the first entry of each table is the default)
_RESULT_TYPES = {
    "application/sparql-results+json": "json", "application/json": "json", "text/javascript": "json",
    "application/javascript": "json", "application/sparql-results+xml": "xml", "application/xml": "xml",
    "text/xml": "xml", "text/csv": "csv", "text/tab-separated-values": "tsv",
}
_GRAPH_TYPES = {
    "text/turtle": "turtle", "application/x-turtle": "turtle", "application/turtle": "turtle",
    "application/n-triples": "nt", "text/plain": "nt", "application/rdf+xml": "xml", "application/xml": "xml",
    "text/xml": "xml", "application/ld+json": "json-ld", "application/json": "json-ld",
}
# ?format= / ?output= names (as Virtuoso, Fuseki and SPARQLWrapper send them)
_FORMAT_NAMES = {
    "json": ("json", "json-ld"), "xml": ("xml", "xml"), "csv": ("csv", None), "tsv": ("tsv", None),
    "turtle": (None, "turtle"), "ttl": (None, "turtle"), "nt": (None, "nt"), "ntriples": (None, "nt"),
    "n-triples": (None, "nt"), "rdfxml": (None, "xml"), "rdf+xml": (None, "xml"), "rdf": (None, "xml"),
    "jsonld": (None, "json-ld"), "json-ld": (None, "json-ld"),
}


def _parse_accept(header: str) -> list[tuple[str, float]]:
    out = []
    for i, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if q > 0:
            out.append((media, q - i * 1e-6))   # stable: earlier entries win ties
    return sorted(out, key=lambda mq: -mq[1])


def negotiate(kind: str, accept: str | None, fmt: str | None = None) -> tuple[str, str]:
    """(format, media type) for a result of ``kind`` ('bindings', 'boolean' or 'graph')."""
    graph = kind == "graph"
    media_table = GRAPH_MEDIA if graph else RESULT_MEDIA
    types = _GRAPH_TYPES if graph else _RESULT_TYPES
    what = "CONSTRUCT/DESCRIBE" if graph else "SELECT/ASK"
    if fmt:
        name = fmt.strip().lower()
        if name in _FORMAT_NAMES:
            chosen = _FORMAT_NAMES[name][1 if graph else 0]
        else:
            chosen = types.get(name.split(";")[0].strip())
        if chosen is None:
            raise NotAcceptable(f"format={fmt!r} is not available for {what} results; use one of "
                                f"{', '.join(media_table)}")
        return chosen, media_table[chosen]
    default = next(iter(media_table))
    if not accept or not accept.strip():
        return default, media_table[default]
    for media, _q in _parse_accept(accept):
        if media in types:
            return types[media], media_table[types[media]]
        if media == "*/*":
            return default, media_table[default]
        if media.endswith("/*"):
            group = media[:-1]
            for f, m in media_table.items():
                if m.startswith(group):
                    return f, m
    offered = ", ".join(m.split(";")[0] for m in media_table.values())
    raise NotAcceptable(f"cannot answer {what} results as {accept!r}; available: {offered}")


def _json_term(t: Term) -> dict[str, str]:
    if t.kind == "literal":
        d = {"type": "literal", "value": t.value}
        if t.lang:
            d["xml:lang"] = t.lang
        elif t.datatype:
            d["datatype"] = t.datatype
        return d
    return {"type": t.kind, "value": t.value}


def _xml_term(t: Term) -> str:
    if t.kind == "uri":
        return f"<uri>{escape(t.value)}</uri>"
    if t.kind == "bnode":
        return f"<bnode>{escape(t.value)}</bnode>"
    attr = f" xml:lang={quoteattr(t.lang)}" if t.lang else (f" datatype={quoteattr(t.datatype)}" if t.datatype else "")
    return f"<literal{attr}>{escape(t.value)}</literal>"


def _csv_value(t: Term | None) -> str:
    if t is None:
        return ""
    return f"_:{t.value}" if t.kind == "bnode" else t.value


def serialize_bindings(variables: Sequence[str], rows: Sequence[Sequence[Term | None]], fmt: str) -> bytes:
    """SELECT results in the SPARQL 1.1 JSON, XML, CSV or TSV format."""
    if fmt == "json":
        bindings = [{v: _json_term(t) for v, t in zip(variables, row, strict=True) if t is not None} for row in rows]
        doc = {"head": {"vars": list(variables)}, "results": {"bindings": bindings}}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if fmt == "xml":
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">',
                 "<head>", *(f"<variable name={quoteattr(v)}/>" for v in variables), "</head><results>"]
        for row in rows:
            parts.append("<result>")
            parts += [f"<binding name={quoteattr(v)}>{_xml_term(t)}</binding>"
                      for v, t in zip(variables, row, strict=True) if t is not None]
            parts.append("</result>")
        parts.append("</results></sparql>\n")
        return "\n".join(parts).encode("utf-8")
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(variables)
        for row in rows:
            w.writerow([_csv_value(t) for t in row])
        return buf.getvalue().encode("utf-8")
    if fmt == "tsv":
        lines = ["\t".join(f"?{v}" for v in variables)]
        lines += ["\t".join(t.n3() if t is not None else "" for t in row) for row in rows]
        return ("\n".join(lines) + "\n").encode("utf-8")
    raise NotAcceptable(f"unknown result format {fmt!r}")


def serialize_boolean(value: bool, fmt: str) -> bytes:
    """ASK results (CSV/TSV have no boolean form in the standard; we write the bare word, as Jena does)."""
    if fmt == "json":
        return json.dumps({"head": {}, "boolean": bool(value)}).encode("utf-8")
    if fmt == "xml":
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">'
                f"<head/><boolean>{'true' if value else 'false'}</boolean></sparql>\n").encode()
    return (("true" if value else "false") + "\n").encode("utf-8")
