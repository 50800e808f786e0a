"""Apply SPARQL UPDATE rules (``iconoscope rules apply FILE.rq``).

A rule may write into ``GRAPH {{graph}}``: that placeholder is the rule's own named graph
(``<base>/graph/rules/<file stem>``), so re-applying a rule never duplicates triples (RDF sets) and its output
can be dropped as a unit. ``{{base}}`` is the collection's base IRI.
"""

from __future__ import annotations

from pathlib import Path

from iconoscope.graph import queries


def apply_rule(ws, file: Path, graph: str | None = None, **params: object) -> int:  # type: ignore[no-untyped-def]
    """Run the update; returns the change in the dataset's triple count."""
    target = graph or ws.iris.rules_graph(Path(file).stem)
    text = queries.load_file(Path(file), graph=queries.IRI(target), base=queries.IRI(ws.config.base_iri),
                             **params)
    store = ws.store
    before = store.count()
    store.update(text)
    return store.count() - before
