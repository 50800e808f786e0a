"""SKOS files (Turtle, RDF/XML, N-Triples, JSON-LD...) -> the N-Triples a vocabulary graph holds.

Every triple of the file is kept. What published thesauri often leave implicit is made explicit, because label
derivation and ``vocab show`` walk the graph with plain SPARQL and should not need inference:

* skos:broader and skos:narrower are both materialised (only one direction is usually given);
* concepts without skos:inScheme join the file's scheme (or ``B/scheme/{name}`` when the file declares none);
* skos:topConceptOf / skos:hasTopConcept pairs are completed.

Parsing runs in pyoxigraph's Rust parser; a syntax error names the file, line and column and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from iconoscope.errors import InputError
from iconoscope.graph.store import guess_format
from iconoscope.graph.terms import nt_iri, nt_literal
from iconoscope.graph.vocab import RDF_TYPE, SKOS
from iconoscope.thesaurus.report import VocabReport

_FORMATS = {"turtle": "TURTLE", "nt": "N_TRIPLES", "nquads": "N_QUADS", "xml": "RDF_XML", "json-ld": "JSON_LD",
            "trig": "TRIG", "n3": "N3"}
_LABELS = {SKOS + "prefLabel": "pref", SKOS + "altLabel": "alt", SKOS + "hiddenLabel": "alt"}


def skos_triples(path: Path, default_scheme: str, report: VocabReport, scheme_label: str | None = None,
                 rdf_format: str | None = None) -> Iterator[str]:
    """Stream the file's triples as N-Triples lines, then the completed SKOS links."""
    import pyoxigraph as ox

    path = Path(path)
    fmt = rdf_format or guess_format(path)
    if fmt not in _FORMATS:
        raise InputError(str(path), f"unsupported RDF format {fmt!r} (one of {', '.join(_FORMATS)})")
    concepts: set[str] = set()
    schemes: set[str] = set()
    in_scheme: set[str] = set()
    broader: set[tuple[str, str]] = set()  # (narrower, broader) as N-Triples terms
    narrower: set[tuple[str, str]] = set()
    top: set[tuple[str, str]] = set()  # (concept, scheme)
    has_top: set[tuple[str, str]] = set()
    labelled: set[str] = set()
    related = 0
    type_p, concept_o, scheme_o = RDF_TYPE, SKOS + "Concept", SKOS + "ConceptScheme"
    try:
        parser = ox.parse(path=str(path), format=getattr(ox.RdfFormat, _FORMATS[fmt]), base_iri=path.as_uri())
        for t in parser:
            s, p, o = str(t.subject), t.predicate.value, str(t.object)
            yield f"{s} <{p}> {o} .\n"
            if p == type_p:
                if t.object.value == concept_o:
                    concepts.add(s)
                elif t.object.value == scheme_o:
                    schemes.add(s)
            elif p.startswith(SKOS):
                local = p[len(SKOS):]
                if local == "broader":
                    broader.add((s, o))
                elif local == "narrower":
                    narrower.add((o, s))
                elif local == "inScheme":
                    in_scheme.add(s)
                elif local == "topConceptOf":
                    top.add((s, o))
                    in_scheme.add(s)
                elif local == "hasTopConcept":
                    has_top.add((o, s))
                elif local == "related":
                    related += 1
                elif p in _LABELS and isinstance(t.object, ox.Literal):
                    if _LABELS[p] == "pref":
                        labelled.add(s)
                        lang = t.object.language or ""
                        report.pref_labels[lang] = report.pref_labels.get(lang, 0) + 1
                    else:
                        report.alt_labels += 1
    except SyntaxError as e:
        raise InputError(str(path), f"malformed {fmt}: {e}") from None
    except OSError as e:
        raise InputError(str(path), f"cannot read: {e}") from None

    # concepts used in hierarchy links or labelled count even if the file forgot their rdf:type; only concepts the file
    # declares join its scheme (a local extension may give an Iconclass concept a broader without adopting it)
    declared = set(concepts) | in_scheme | labelled
    linked = {a for pair in broader | narrower for a in pair} | {c for c, _ in top | has_top}
    for c in sorted((linked | labelled) - concepts - schemes):
        if c.startswith("<"):
            yield f"{c} <{type_p}> <{concept_o}> .\n"
            concepts.add(c)
    if not concepts:
        report.issue(path, "no skos:Concept found")
    for a, b in sorted(narrower - broader):
        yield f"{a} <{SKOS}broader> {b} .\n"
    for a, b in sorted(broader - narrower):
        yield f"{b} <{SKOS}narrower> {a} .\n"
    all_links = broader | narrower
    if not schemes:
        scheme = nt_iri(default_scheme)
        schemes.add(scheme)
        yield f"{scheme} <{type_p}> <{scheme_o}> .\n"
        if scheme_label:
            yield f"{scheme} <{SKOS}prefLabel> {nt_literal(scheme_label)} .\n"
    if len(schemes) == 1:
        (scheme,) = schemes
        for c in sorted(declared - in_scheme):
            yield f"{c} <{SKOS}inScheme> {scheme} .\n"
    elif declared - in_scheme:
        report.issue(path, f"{len(declared - in_scheme)} concept(s) have no skos:inScheme and the file declares "
                           f"{len(schemes)} schemes: left without one")
    for c, sch in sorted(has_top - top):
        yield f"{c} <{SKOS}topConceptOf> {sch} .\n"
    for c, sch in sorted(top - has_top):
        yield f"{sch} <{SKOS}hasTopConcept> {c} .\n"
    report.concepts = len(concepts)
    report.broader = len(all_links)
    report.related = related
    report.top_concepts = len(top | has_top)
