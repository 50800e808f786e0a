"""Namespaces and IRI minting for the one graph model that every stage shares (see ARCHITECTURE.md).

Keeping every IRI rule here means the ingest, the enrichment and the web app can never disagree on how a record,
an image, a run or a named graph is named.
"""

from __future__ import annotations

from urllib.parse import quote

ICO = "https://w3id.org/iconoscope/ns#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
DCTERMS = "http://purl.org/dc/terms/"
OA = "http://www.w3.org/ns/oa#"
PROV = "http://www.w3.org/ns/prov#"
AS = "https://www.w3.org/ns/activitystreams#"
SCHEMA = "https://schema.org/"
ICONCLASS = "http://iconclass.org/"

PREFIXES: dict[str, str] = {
    "ico": ICO, "rdf": RDF, "rdfs": RDFS, "xsd": XSD, "skos": SKOS, "dcterms": DCTERMS,
    "oa": OA, "prov": PROV, "schema": SCHEMA, "ic": ICONCLASS,
}

RDF_TYPE = RDF + "type"


def prefix_block(prefixes: dict[str, str] | None = None) -> str:
    """SPARQL PREFIX declarations for our namespaces (query files may rely on them)."""
    return "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in (prefixes or PREFIXES).items())


def _seg(identifier: str) -> str:
    """A path segment for an identifier: percent-encodes what an IRI may not hold, keeps it readable."""
    return quote(str(identifier), safe="-._~()!$&',;=:@")


class IRIs:
    """Mints the IRIs of one collection from its base IRI."""

    def __init__(self, base: str):
        self.base = base if base.endswith(("/", "#", ":")) else base + "/"

    def record(self, record_id: str) -> str:
        return f"{self.base}record/{_seg(record_id)}"

    def image(self, image_id: str) -> str:
        return f"{self.base}image/{_seg(image_id)}"

    def concept(self, vocab: str, local_id: str) -> str:
        return f"{self.base}concept/{_seg(vocab)}/{_seg(local_id)}"

    def scheme(self, vocab: str) -> str:
        return f"{self.base}scheme/{_seg(vocab)}"

    def run(self, run_id: str) -> str:
        return f"{self.base}run/{_seg(run_id)}"

    def annotation(self, run_id: str, key: str) -> str:
        return f"{self.base}annotation/{_seg(run_id)}/{_seg(key)}"

    def model(self, classifier: str) -> str:
        return f"{self.base}model/{_seg(classifier)}"

    def field(self, name: str) -> str:
        """Predicate for an extra source column (``[sources.X.extra]``)."""
        return f"{self.base}field/{_seg(name)}"

    def agent(self, name: str) -> str:
        return f"{self.base}agent/{_seg(name)}"

    # named graphs: one per vocabulary, per source, per prediction run, plus rules and reviews
    def vocab_graph(self, vocab: str) -> str:
        return f"{self.base}graph/vocab/{_seg(vocab)}"

    def source_graph(self, source: str) -> str:
        return f"{self.base}graph/source/{_seg(source)}"

    def run_graph(self, run_id: str) -> str:
        return f"{self.base}graph/run/{_seg(run_id)}"

    def rules_graph(self, name: str) -> str:
        return f"{self.base}graph/rules/{_seg(name)}"

    def review_graph(self) -> str:
        return f"{self.base}graph/review"

    def id_of(self, iri: str, kind: str) -> str:
        """The identifier back from a record/image IRI (``kind`` = 'record' or 'image')."""
        from urllib.parse import unquote

        prefix = f"{self.base}{kind}/"
        if not iri.startswith(prefix):
            raise ValueError(f"{iri} is not a {kind} IRI of {self.base}")
        return unquote(iri[len(prefix):])


def iconclass_iri(notation: str) -> str:
    """Iconclass concepts keep their public IRIs: http://iconclass.org/{notation} (percent-encoded)."""
    return ICONCLASS + quote(notation, safe="()+-.,_~:")
