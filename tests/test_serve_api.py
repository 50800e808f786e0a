"""The REST API: behaviour of each endpoint, and schemathesis checking every response against the OpenAPI spec."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import schemathesis
import serve_fixtures as F
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from iconoscope.serve import create_app

AUTH = {"Authorization": f"Bearer {F.TOKEN}"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    ws = F.build_workspace(tmp_path_factory.mktemp("api") / "ws")
    yield create_app(ws, token=F.TOKEN)
    ws.close()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    yield TestClient(app, raise_server_exceptions=False)
    ws = app.state.iconoscope.ws
    ws.store.drop_graph(ws.iris.review_graph())


def test_openapi_spec_lists_the_endpoints_and_the_token(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for p in ("/api/search", "/api/records/{record_id}", "/api/records/{record_id}/predictions",
              "/api/records/{record_id}/similar", "/api/review", "/api/concepts"):
        assert p in paths, p
    assert "post" in paths["/api/review"] and paths["/api/review"]["post"]["security"] == [{"bearer": []}]
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert not any(p.startswith(("/sparql", "/iiif", "/record")) for p in paths)   # pages are not API


def test_search_and_records(client: TestClient) -> None:
    r = client.get("/api/search", params={"concept": F.concept_iri("cherry"), "min_score": 0.6})
    assert r.status_code == 200
    body = r.json()
    expect = {x.id for x in F.records() if x.truth == "cherry" or x.curated == "cherry"}
    assert {i["id"] for i in body["items"]} == expect and body["total"] == len(expect)
    assert all(i["thumbnail"].startswith("/iiif/image/") for i in body["items"])
    rec = client.get("/api/records/" + quote("T 13/b é", safe="")).json()
    assert rec["title"] == "Odd identifier peach" and rec["subjects"][0]["label"] == "Peach"
    fr = client.get("/api/records/r01", params={"lang": "fr"}).json()
    assert fr["subjects"][0]["label"] == "Pomme"
    preds = client.get("/api/records/r01/predictions").json()
    assert len(preds) == 4 and preds[0]["label"] == "Apple" and preds[0]["curated"] is True
    assert client.get("/api/concepts", params={"q": "poi"}).json()[0]["label"] == "Pear"


def test_similar_reports_when_exploration_is_unavailable(client: TestClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from iconoscope.serve import integrations

    monkeypatch.setattr(integrations, "optional_function", lambda module, attr: None)
    r = client.get("/api/records/r01/similar").json()
    assert r["available"] is False and r["items"] == [] and "exploration" in r["message"]

    def fake_similar(ws, record_id, k=10):  # type: ignore[no-untyped-def]
        return [{"record": ws.iris.record(f"r{i:02d}"), "score": 1.0 - i / 10} for i in (1, 5, 9)]

    monkeypatch.setattr(integrations, "optional_function",
                        lambda module, attr: fake_similar if attr == "similar" else None)
    r = client.get("/api/records/r01/similar", params={"k": 5}).json()
    assert r["available"] and [i["id"] for i in r["items"]] == ["r05", "r09"]    # itself left out
    assert r["items"][0]["title"] == "Apple variety no. 5"


def test_review_over_the_api(client: TestClient) -> None:
    queue = client.get("/api/review", params={"kind": "noise"}).json()
    assert [(i["record"], i["label"]) for i in queue["items"]] == [("r08", "Pear")]
    ann = queue["items"][0]["annotation"]
    r = client.post("/api/review", json={"annotation": ann, "decision": "rejected"},
                    headers={**AUTH, "X-Iconoscope-User": "Grace"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected" and r.json()["by"] == "Grace"
    assert client.get("/api/review", params={"kind": "noise"}).json()["items"] == []
    recent = client.get("/api/review/recent").json()
    assert [(d["annotation"], d["status"], d["by"], d["label"]) for d in recent] == [(ann, "rejected", "Grace", "Pear")]


def test_errors_are_json_with_a_message(client: TestClient) -> None:
    r = client.get("/api/search", params={"min_score": "high"})
    assert r.status_code == 422 and "min_score" in r.json()["error"]
    r = client.get("/api/records/nope")
    assert r.status_code == 404 and r.json() == {"error": "record 'nope': no such record"}
    r = client.get("/api/review", params={"kind": "everything"})
    assert r.status_code == 422 and "kind" in r.json()["error"]
    r = client.get("/api/search", params={"concept": "relative/iri"})
    assert r.status_code == 422 and "concept" in r.json()["error"]
    r = client.get("/api/search", params={"concept": "http://a:port"})     # the pattern allows it, the parser not
    assert r.status_code == 400 and r.json()["error"] == "concept = 'http://a:port': not an absolute IRI"
    r = client.get("/api/nothing-here")
    assert r.status_code == 404 and "no such page" in r.json()["error"]


OPERATIONS = [("GET", "/api/search"), ("GET", "/api/concepts"), ("GET", "/api/records/{record_id}/predictions"),
              ("GET", "/api/records/{record_id}/similar"), ("GET", "/api/records/{record_id}"),
              ("GET", "/api/review"), ("GET", "/api/review/recent"), ("POST", "/api/review")]


def test_every_operation_is_fuzzed(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    listed = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert listed == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_api_conforms_to_its_openapi_spec(app, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    """Schemathesis-generated requests (valid and invalid): no 5xx, only documented status codes, bodies that
    match the response schemas. A handful of examples per operation keeps it fast."""
    from hypothesis import given

    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=6, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=AUTH if method == "POST" else None)

    run()
