"""Backend-neutral RDF terms and a fast N-Triples writer.

Every store returns :class:`Term` values, so code above the store never depends on pyoxigraph's or rdflib's
classes and the same test runs on Oxigraph and on a remote SPARQL server. Writers emit N-Triples lines because
every backend bulk-loads them fastest and they stream without holding a graph in memory.
"""

from __future__ import annotations

from typing import Any, NamedTuple

XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_STRING = XSD + "string"
RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"

_NUMERIC = {XSD + t for t in ("integer", "int", "long", "short", "nonNegativeInteger", "positiveInteger",
                              "negativeInteger", "nonPositiveInteger", "unsignedInt", "unsignedLong")}
_FLOAT = {XSD + "float", XSD + "double", XSD + "decimal"}


class Term(NamedTuple):
    """An RDF term: ``kind`` is 'uri', 'literal' or 'bnode' (the SPARQL JSON result names)."""

    kind: str
    value: str
    datatype: str | None = None
    lang: str | None = None

    def py(self) -> Any:
        """The Python value: str for IRIs and plain literals, int/float/bool for typed numbers."""
        if self.kind != "literal" or self.datatype is None:
            return self.value
        if self.datatype in _NUMERIC:
            return int(self.value)
        if self.datatype in _FLOAT:
            return float(self.value)
        if self.datatype == XSD + "boolean":
            return self.value in ("true", "1")
        return self.value

    def n3(self) -> str:
        """The term in SPARQL/N-Triples syntax."""
        if self.kind == "uri":
            return f"<{self.value}>"
        if self.kind == "bnode":
            return f"_:{self.value}"
        return nt_literal(self.value, lang=self.lang, datatype=self.datatype)

    def __str__(self) -> str:
        return self.value


def iri(value: str) -> Term:
    return Term("uri", value)


def literal(value: Any, lang: str | None = None, datatype: str | None = None) -> Term:
    if datatype is None and lang is None:
        if isinstance(value, bool):
            datatype, value = XSD + "boolean", "true" if value else "false"
        elif isinstance(value, int):
            datatype = XSD + "integer"
        elif isinstance(value, float):
            datatype = XSD + "double"
    return Term("literal", str(value), datatype, lang)


_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_IRI_BAD = set('<>"{}|^`\\ ')


def nt_iri(value: str) -> str:
    """``<value>``; raises ValueError for characters N-Triples forbids inside an IRI."""
    if any(c in _IRI_BAD or ord(c) <= 0x20 for c in value):
        raise ValueError(f"not a valid IRI: {value!r}")
    return f"<{value}>"


def nt_literal(value: Any, lang: str | None = None, datatype: str | None = None) -> str:
    text = str(value).translate(_ESCAPES)
    if lang:
        return f'"{text}"@{lang.lower()}'
    if datatype and datatype != XSD_STRING:
        return f'"{text}"^^<{datatype}>'
    return f'"{text}"'


def nt_float(value: float) -> str:
    return f'"{float(value):.6g}"^^<{XSD}float>'


def triple(s: str, p: str, o: str) -> str:
    """One N-Triples line from already-serialized terms."""
    return f"{s} {p} {o} .\n"


def from_oxigraph(x: Any) -> Term | None:
    """A pyoxigraph term (or None for an unbound variable) as a :class:`Term`; xsd:string literals lose their
    datatype, as plain literals. Used by the store and by the SPARQL worker process, which must start quickly, so
    pyoxigraph is imported here only when a term is converted."""
    import pyoxigraph as ox

    if x is None:
        return None
    if isinstance(x, ox.NamedNode):
        return Term("uri", x.value)
    if isinstance(x, ox.BlankNode):
        return Term("bnode", x.value)
    if isinstance(x, ox.Literal):
        if x.language:
            return Term("literal", x.value, None, x.language)
        dt = x.datatype.value
        return Term("literal", x.value, None if dt == XSD_STRING else dt, None)
    return Term("literal", str(x))
