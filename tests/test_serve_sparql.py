"""The SPARQL 1.1 Protocol endpoint: real clients (SPARQLWrapper, rdflib) against uvicorn, and the protocol's rules."""

from __future__ import annotations

import csv
import io
import json
import time
import xml.etree.ElementTree as ET

import pytest
import serve_fixtures as F
from fastapi.testclient import TestClient

from iconoscope.graph.vocab import DCTERMS, prefix_block
from iconoscope.serve import create_app
from iconoscope.serve.sparql_exec import check_query, query_form

P = prefix_block()
TITLES = f"{P}SELECT ?r ?t WHERE {{ ?r a ico:Record ; dcterms:title ?t }} ORDER BY ?r"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory):
    w = F.build_workspace(tmp_path_factory.mktemp("sparql") / "ws")
    yield w
    w.close()


@pytest.fixture(scope="module")
def app(ws):  # type: ignore[no-untyped-def]
    return create_app(ws, token=F.TOKEN)


@pytest.fixture(scope="module")
def server(app):  # type: ignore[no-untyped-def]
    with F.live_server(app) as base:
        yield base + "/sparql"


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return TestClient(app, raise_server_exceptions=False)


def expected_titles() -> dict[str, str]:
    return {F.BASE + "record/" + __import__("urllib.parse").parse.quote(r.id, safe="-._~()!$&',;=:@"): r.title
            for r in F.records()}


# ------------------------------------------------------------------ real clients
def test_sparqlwrapper_select_in_every_result_format(server: str) -> None:
    from SPARQLWrapper import CSV, JSON, TSV, XML, SPARQLWrapper

    want = expected_titles()
    sw = SPARQLWrapper(server)
    sw.setQuery(TITLES)
    sw.setReturnFormat(JSON)
    rows = sw.query().convert()["results"]["bindings"]
    assert {b["r"]["value"]: b["t"]["value"] for b in rows} == want
    assert rows[0]["t"]["xml:lang"] == "en"

    sw.setReturnFormat(XML)
    doc = sw.query().convert()          # a DOM document
    ns = "http://www.w3.org/2005/sparql-results#"
    results = doc.getElementsByTagNameNS(ns, "result")
    assert len(results) == len(want)

    sw.setReturnFormat(CSV)
    table = list(csv.reader(io.StringIO(sw.query().convert().decode("utf-8"))))
    assert table[0] == ["r", "t"] and {r[0]: r[1] for r in table[1:]} == want

    sw.setReturnFormat(TSV)
    lines = sw.query().convert().decode("utf-8").splitlines()
    assert lines[0] == "?r\t?t" and len(lines) == len(want) + 1
    assert lines[1].startswith("<") and lines[1].endswith('"@en')


def test_sparqlwrapper_post_ask_and_construct(server: str) -> None:
    from rdflib import Graph, URIRef
    from SPARQLWrapper import JSON, POST, TURTLE, XML, SPARQLWrapper

    sw = SPARQLWrapper(server)
    sw.setMethod(POST)
    sw.setQuery(TITLES)
    sw.setReturnFormat(JSON)
    assert len(sw.query().convert()["results"]["bindings"]) == len(F.records())

    sw.setQuery(f"{P}ASK {{ <{F.concept_iri('apple')}> skos:broader <{F.concept_iri('fruit')}> }}")
    assert sw.query().convert()["boolean"] is True

    construct = f"{P}CONSTRUCT {{ ?r dcterms:title ?t }} WHERE {{ ?r a ico:Record ; dcterms:title ?t }}"
    for fmt in (XML, TURTLE):
        sw = SPARQLWrapper(server)
        sw.setQuery(construct)
        sw.setReturnFormat(fmt)
        out = sw.query().convert()
        g = out if isinstance(out, Graph) else Graph().parse(data=out, format="turtle")
        titles = {str(s): str(o) for s, _, o in g.triples((None, URIRef(DCTERMS + "title"), None))}
        assert titles == expected_titles()


def test_sparqlwrapper_update_needs_the_token(server: str, ws) -> None:  # type: ignore[no-untyped-def]
    from SPARQLWrapper import JSON, POST, SPARQLWrapper
    from SPARQLWrapper.SPARQLExceptions import Unauthorized

    g = F.BASE + "graph/rules/test"
    update = f"INSERT DATA {{ GRAPH <{g}> {{ <{F.BASE}record/r01> <{DCTERMS}subject> <{F.concept_iri('peach')}> }} }}"
    sw = SPARQLWrapper(server)
    sw.setMethod(POST)
    sw.setQuery(update)
    with pytest.raises(Unauthorized):
        sw.query()
    assert g not in ws.store.graphs()

    sw.addCustomHttpHeader("Authorization", f"Bearer {F.TOKEN}")
    sw.query()
    try:
        check = SPARQLWrapper(server)
        check.setQuery(f"ASK {{ <{F.BASE}record/r01> <{DCTERMS}subject> <{F.concept_iri('peach')}> }}")
        check.setReturnFormat(JSON)
        assert check.query().convert()["boolean"] is True
    finally:
        ws.store.drop_graph(g)


def test_rdflib_sparqlstore_reads_and_updates(server: str, ws) -> None:  # type: ignore[no-untyped-def]
    from rdflib import Graph, Literal, URIRef
    from rdflib.plugins.stores.sparqlstore import SPARQLStore, SPARQLUpdateStore

    g = Graph(store=SPARQLStore(server, returnFormat="json"))
    rows = list(g.query(TITLES))
    assert {str(r.r): str(r.t) for r in rows} == expected_titles()
    # triple patterns become SELECTs on the endpoint
    title = URIRef(DCTERMS + "title")
    assert len(list(g.triples((None, title, None)))) == len(F.records())
    xml_store = Graph(store=SPARQLStore(server))          # rdflib's default: XML results
    assert len(list(xml_store.query(TITLES))) == len(F.records())

    target = F.BASE + "graph/rules/rdflib"
    upd = SPARQLUpdateStore(server, server, headers={"Authorization": f"Bearer {F.TOKEN}"})
    try:
        upd.update(f'INSERT DATA {{ GRAPH <{target}> {{ <{F.BASE}x> <{F.BASE}p> "v" }} }}')
        assert list(g.objects(URIRef(F.BASE + "x"), URIRef(F.BASE + "p"))) == [Literal("v")]
    finally:
        ws.store.drop_graph(target)


# ------------------------------------------------------------------ protocol rules
def test_formats_by_accept_and_by_format_parameter(client: TestClient) -> None:
    q = {"query": TITLES}
    r = client.get("/sparql", params=q)
    assert r.headers["content-type"] == "application/sparql-results+json"
    assert len(r.json()["results"]["bindings"]) == len(F.records())
    r = client.get("/sparql", params=q, headers={"accept": "application/sparql-results+xml"})
    assert r.headers["content-type"] == "application/sparql-results+xml"
    root = ET.fromstring(r.content)
    assert root.tag == "{http://www.w3.org/2005/sparql-results#}sparql"
    r = client.get("/sparql", params={**q, "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv") and r.text.startswith("r,t\r\n")
    r = client.get("/sparql", params=q, headers={"accept": "text/tab-separated-values;q=0.9, text/html;q=0.1"})
    assert r.headers["content-type"].startswith("text/tab-separated-values")
    construct = f"{P}CONSTRUCT {{ ?r dcterms:title ?t }} WHERE {{ ?r dcterms:title ?t }}"
    r = client.get("/sparql", params={"query": construct})
    assert r.headers["content-type"].startswith("text/turtle") and "@prefix dcterms:" in r.text
    r = client.get("/sparql", params={"query": construct}, headers={"accept": "application/n-triples"})
    assert r.headers["content-type"] == "application/n-triples" and len(r.text.splitlines()) == len(F.records())
    r = client.get("/sparql", params={"query": construct, "format": "json"})
    assert r.headers["content-type"] == "application/ld+json" and isinstance(r.json(), list)
    r = client.get("/sparql", params=q, headers={"accept": "image/png"})
    assert r.status_code == 406 and "application/sparql-results+json" in r.text
    r = client.get("/sparql", params={**q, "format": "turtle"})
    assert r.status_code == 406 and "SELECT/ASK" in r.text


def test_our_prefixes_need_no_declaration(client: TestClient) -> None:
    r = client.get("/sparql", params={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?r a ico:Record }"})
    assert r.json()["results"]["bindings"][0]["n"]["value"] == str(len(F.records()))
    # a query's own declaration wins
    r = client.get("/sparql", params={"query": "PREFIX ico: <urn:other#> ASK { ?r a ico:Record }"})
    assert r.json()["boolean"] is False


def test_post_forms_and_direct_queries(client: TestClient) -> None:
    r = client.post("/sparql", data={"query": TITLES})
    assert r.status_code == 200 and len(r.json()["results"]["bindings"]) == len(F.records())
    r = client.post("/sparql", content=TITLES.encode(), headers={"content-type": "application/sparql-query"})
    assert r.status_code == 200 and len(r.json()["results"]["bindings"]) == len(F.records())
    ask = f'{P}ASK {{ ?r dcterms:title "nothing" }}'
    r = client.post("/sparql", content=ask.encode(), headers={"content-type": "application/sparql-query",
                                                              "accept": "application/sparql-results+xml"})
    assert b"<boolean>false</boolean>" in r.content


@pytest.mark.parametrize(("method", "kwargs", "status", "message"), [
    ("get", {"params": {"query": "SELEC nothing"}}, 400, "SPARQL syntax error"),
    ("get", {}, 400, "missing 'query'"),
    ("get", {"params": {"update": "CLEAR ALL"}}, 400, "must be sent by POST"),
    ("get", {"params": {"query": TITLES, "default-graph-uri": "http://x"}}, 400, "default-graph-uri"),
    ("post", {"data": {"query": TITLES, "update": "CLEAR ALL"}}, 400, "not both"),
    ("post", {"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "application/sparql-query"),
    ("post", {"content": b"#" * (1 << 20 + 1), "headers": {"content-type": "application/sparql-query"}}, 413,
     "larger than"),
    ("post", {"content": b"\xff\xfe", "headers": {"content-type": "application/sparql-query"}}, 400, "UTF-8"),
    ("get", {"params": {"query": "SELECT * WHERE { SERVICE <http://127.0.0.1:22/> { ?s ?p ?o } }"}}, 400,
     "SERVICE"),
])
def test_bad_requests_get_4xx_with_a_message(client: TestClient, method: str, kwargs: dict, status: int,
                                             message: str) -> None:
    r = getattr(client, method)("/sparql", **kwargs)
    assert r.status_code == status, r.text
    assert message in r.text and "Traceback" not in r.text
    assert r.headers["content-type"].startswith("text/plain")


def test_updates_are_refused_without_the_token(client: TestClient, ws) -> None:  # type: ignore[no-untyped-def]
    before = ws.store.count()
    r = client.post("/sparql", data={"update": "CLEAR ALL"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client.post("/sparql", content=b"CLEAR ALL", headers={"content-type": "application/sparql-update",
                                                             "authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert ws.store.count() == before
    read_only = TestClient(create_app(ws, token=""), raise_server_exceptions=False)
    r = read_only.post("/sparql", content=b"CLEAR ALL", headers={"content-type": "application/sparql-update",
                                                                "authorization": f"Bearer {F.TOKEN}"})
    assert r.status_code == 403 and "writes are disabled" in r.text
    assert ws.store.count() == before


def test_query_time_limit_kills_the_query(ws) -> None:  # type: ignore[no-untyped-def]
    app = create_app(ws, token=F.TOKEN, query_timeout_s=1.0)
    runner = app.state.iconoscope.runner
    assert runner.mode == "process"
    slow = TestClient(app, raise_server_exceptions=False)
    assert slow.get("/sparql", params={"query": TITLES}).status_code == 200     # starts a worker
    # a filtered cross product: ~900^3 candidate rows and not one result to yield before it ends
    never = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i FILTER(STRLEN(CONCAT(STR(?c), STR(?f), STR(?i))) < 0) }"
    t0 = time.monotonic()
    r = slow.get("/sparql", params={"query": never})
    assert r.status_code == 503 and "1 s time limit" in r.text
    assert time.monotonic() - t0 < 4.0
    assert runner.killed == 1
    r = slow.get("/sparql", params={"query": TITLES})                      # a fresh worker answers
    assert r.status_code == 200 and len(r.json()["results"]["bindings"]) == len(F.records())
    runner.close()


def test_row_limit_and_fresh_results_after_a_write(ws) -> None:  # type: ignore[no-untyped-def]
    app = create_app(ws, token=F.TOKEN, max_rows=50)
    c = TestClient(app, raise_server_exceptions=False)
    r = c.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"})
    assert r.status_code == 400 and "more than 50 rows" in r.text
    r = c.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 50"})
    assert r.status_code == 200 and len(r.json()["results"]["bindings"]) == 50
    # a review decision through the API is visible to the next query (the snapshot is refreshed)
    ann = c.get("/api/review", params={"kind": "silence", "limit": 1}).json()["items"][0]["annotation"]
    ask = {"query": f'ASK {{ <{ann}> <https://w3id.org/iconoscope/ns#reviewStatus> "accepted" }}'}
    assert c.get("/sparql", params=ask).json()["boolean"] is False
    assert c.post("/api/review", json={"annotation": ann, "decision": "accepted"},
                  headers={"Authorization": f"Bearer {F.TOKEN}"}).status_code == 200
    try:
        assert c.get("/sparql", params=ask).json()["boolean"] is True
    finally:
        ws.store.drop_graph(ws.iris.review_graph())
        app.state.iconoscope.runner.close()


def test_service_detection_ignores_strings_iris_and_comments() -> None:
    check_query('SELECT * WHERE { ?s ?p "SERVICE" } # SERVICE <x>')
    check_query("SELECT ?service WHERE { ?service <http://x/SERVICE> ?o }")
    check_query("PREFIX service: <http://x/> SELECT * WHERE { ?s service:p ?o }")
    with pytest.raises(Exception, match="SERVICE"):
        check_query("SELECT * WHERE { service <http://internal/sparql> { ?s ?p ?o } }")
    assert query_form(f'{P}# SELECT in a comment\nCONSTRUCT {{ ?s ?p "ASK" }} WHERE {{ ?s ?p ?o }}') == "CONSTRUCT"


def test_html_query_page(client: TestClient) -> None:
    r = client.get("/sparql", headers={"accept": "text/html"})
    assert r.status_code == 200 and 'id="sparql-form"' in r.text
    assert json.dumps("PREFIX ico:")[1:-1] in r.text
