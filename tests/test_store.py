"""The Store contract, run on every backend: embedded Oxigraph and a real Virtuoso server (SparqlStore).

Each test gets an empty store of each kind; the Virtuoso variant skips cleanly when virtuoso-t is not installed.
"""

import csv
import io
import json
from pathlib import Path

import pytest

from iconoscope.errors import IconoscopeError
from iconoscope.graph.store import OxigraphStore, Store
from iconoscope.graph.terms import XSD, nt_float, nt_iri, nt_literal, triple

G = "https://example.org/t/graph/source/a"


@pytest.fixture(params=["oxigraph", pytest.param("virtuoso", marks=pytest.mark.virtuoso)])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "oxigraph":
        st = OxigraphStore(tmp_path / "g")
        yield st
        st.close()
    else:
        yield request.getfixturevalue("virtuoso_store")


def lines(n: int, offset: int = 0) -> list[str]:
    return [triple(nt_iri(f"https://example.org/s{i}"), nt_iri("https://example.org/p"),
                   nt_literal(f"v{i + offset}", lang="fr")) for i in range(n)]


def test_store_satisfies_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)


def test_replace_graph_is_idempotent_and_union_is_queried(store: Store) -> None:
    st = store
    assert st.replace_graph(G, lines(100)) == 100
    assert st.replace_graph(G, lines(100)) == 100
    st.replace_graph(G + "2", lines(5, offset=1000))
    assert st.count() == 105
    res = st.select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    assert res.rows[0][0].py() == 105
    assert st.graphs() == [G, G + "2"]


def test_failed_load_keeps_previous_graph(store: Store) -> None:
    st = store
    st.replace_graph(G, lines(10))

    def broken():
        yield from lines(5, offset=50)
        raise RuntimeError("crash mid-ingest")

    with pytest.raises(RuntimeError):
        st.replace_graph(G, broken())
    assert st.count(G) == 10
    assert st.ask(f'ASK {{ GRAPH <{G}> {{ ?s ?p "v0"@fr }} }}')
    assert st.graphs() == [G]  # no staging graph left behind


def test_malformed_rdf_names_the_problem(store: Store, tmp_path: Path) -> None:
    st = store
    bad = tmp_path / "bad.ttl"
    bad.write_text("<a> <b> .\n")
    with pytest.raises(IconoscopeError, match=r"bad\.ttl: malformed turtle"):
        st.replace_graph(G, bad, format="turtle")
    assert st.graphs() == []


def test_terms_round_trip_types(store: Store) -> None:
    st = store
    st.replace_graph(G, [triple(nt_iri("http://x/s"), nt_iri("http://x/score"), nt_float(0.25)),
                         triple(nt_iri("http://x/s"), nt_iri("http://x/label"), nt_literal('a "q"\n', lang="en"))])
    rows = st.select("SELECT ?p ?o WHERE { ?s ?p ?o } ORDER BY ?p").dicts()
    assert rows[0]["o"] == 'a "q"\n'
    assert rows[1]["o"] == pytest.approx(0.25)


def test_sparql_syntax_error_is_clear(store: Store) -> None:
    with pytest.raises(IconoscopeError, match="SPARQL syntax error"):
        store.select("SELEC nothing")


def test_typed_values_languages_and_unicode_agree(store: Store) -> None:
    s, p = nt_iri("http://x/s"), "http://x/"
    data = [triple(s, nt_iri(p + "a_int"), nt_literal(1909, datatype=XSD + "integer")),
            triple(s, nt_iri(p + "b_bool"), nt_literal("true", datatype=XSD + "boolean")),
            triple(s, nt_iri(p + "c_str"), nt_literal("lévrier, 日本, \\ \t tab")),
            triple(s, nt_iri(p + "d_lang"), nt_literal("scène de chasse", lang="fr")),
            triple(s, nt_iri(p + "e_iri"), nt_iri("http://iconclass.org/25G3")),
            triple(s, nt_iri(p + "f_date"), nt_literal("2024-05-01T10:00:00Z", datatype=XSD + "dateTime"))]
    store.replace_graph(G, data)
    rows = store.select("SELECT ?p ?o WHERE { ?s ?p ?o } ORDER BY ?p").rows
    values = [o for _, o in rows]
    assert [v.py() for v in values[:3]] == [1909, True, "lévrier, 日本, \\ \t tab"]
    assert values[2].datatype is None and values[2].lang is None
    assert (values[3].value, values[3].lang) == ("scène de chasse", "fr")
    assert (values[4].kind, values[4].value) == ("uri", "http://iconclass.org/25G3")
    assert values[5].datatype == XSD + "dateTime" and values[5].value.startswith("2024-05-01T10:00:00")
    unbound = store.select("SELECT ?x ?o WHERE { ?s <http://x/a_int> ?o OPTIONAL { ?s <http://x/none> ?x } }")
    assert unbound.rows[0][0] is None and unbound.dicts() == [{"x": None, "o": 1909}]


def test_update_add_drop_and_graph_listing(store: Store) -> None:
    store.replace_graph(G, lines(3))
    store.add_to_graph(G, lines(2, offset=10))  # s0, s1 get a second value
    assert store.count(G) == 5
    store.update(f"INSERT DATA {{ GRAPH <{G}3> {{ <http://x/a> <http://x/b> <http://x/c> }} }}")
    store.update(f"INSERT {{ GRAPH <{G}4> {{ ?s a <http://x/T> }} }} WHERE {{ GRAPH <{G}> {{ ?s ?p ?o }} }}")
    assert store.graphs() == [G, G + "3", G + "4"]
    assert store.count(G + "4") == 3
    assert store.count("https://example.org/t/graph/none") == 0
    store.drop_graph(G + "3")
    store.drop_graph(G + "3")  # dropping twice is not an error
    assert store.graphs() == [G, G + "4"]
    assert store.count() == 8
    assert store.replace_graph(G + "4", []) == 0  # replacing with nothing empties the graph
    assert store.graphs() == [G]


def test_construct_and_export_round_trip(store: Store) -> None:
    import pyoxigraph as ox

    store.replace_graph(G, lines(4))
    store.replace_graph(G + "2", lines(2, offset=7))
    nt = store.construct(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{G}> {{ ?s ?p ?o }} }}")
    assert sorted(nt.decode().splitlines()) == sorted(x.rstrip("\n") for x in lines(4))
    ttl = store.construct("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", format="turtle")
    assert len(list(ox.parse(ttl, format=ox.RdfFormat.TURTLE))) == 6
    assert len(store.export(format="nt", graph=G + "2").decode().splitlines()) == 2
    quads = list(ox.parse(store.export(), format=ox.RdfFormat.N_QUADS))
    assert sorted({q.graph_name.value for q in quads}) == [G, G + "2"] and len(quads) == 6
    with pytest.raises(IconoscopeError, match="quad format"):
        store.export(format="turtle")


def test_raw_query_serializes_results(store: Store) -> None:
    store.replace_graph(G, lines(2))
    body, media = store.raw_query("SELECT ?o WHERE { ?s ?p ?o } ORDER BY ?o", "json")
    assert media == "application/sparql-results+json"
    assert [b["o"]["value"] for b in json.loads(body)["results"]["bindings"]] == ["v0", "v1"]
    body, media = store.raw_query("SELECT ?o WHERE { ?s ?p ?o } ORDER BY ?o", "csv")
    assert media == "text/csv" and list(csv.reader(io.StringIO(body.decode()))) == [["o"], ["v0"], ["v1"]]
    body, media = store.raw_query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "nt")
    assert media == "application/n-triples" and len(body.decode().splitlines()) == 2


def test_failed_first_load_leaves_no_graph(store: Store) -> None:
    def broken():
        yield from lines(5)
        raise RuntimeError("crash mid-ingest")

    with pytest.raises(RuntimeError):
        store.replace_graph(G, broken())
    assert store.graphs() == [] and store.count() == 0
