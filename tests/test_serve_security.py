"""Every security point of the web app: write token, CSRF, sessions, path traversal, escaping, errors, headers."""

from __future__ import annotations

import re

import pytest
import serve_fixtures as F
from fastapi.testclient import TestClient

from iconoscope.graph.terms import nt_iri, nt_literal, triple
from iconoscope.graph.vocab import ICO, RDF_TYPE
from iconoscope.serve import create_app
from iconoscope.serve.security import Security, safe_next, same_origin


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory):
    w = F.build_workspace(tmp_path_factory.mktemp("sec") / "ws")
    yield w
    w.close()


@pytest.fixture(scope="module")
def app(ws):  # type: ignore[no-untyped-def]
    return create_app(ws, token=F.TOKEN)


@pytest.fixture
def client(app, ws):  # type: ignore[no-untyped-def]
    yield TestClient(app, raise_server_exceptions=False)
    ws.store.drop_graph(ws.iris.review_graph())


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert m, "page without CSRF token"
    return m.group(1)


def login(client: TestClient, name: str = "Ada") -> str:
    """Sign in through the real form; returns the CSRF token of the signed-in pages."""
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"token": F.TOKEN, "name": name, "csrf_token": token, "next": "/review"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/review"
    cookie = r.headers["set-cookie"]
    assert "ico_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict",
                                                                                                      "strict")
    return csrf_of(client.get("/review").text)


def an_annotation(client: TestClient) -> str:
    return client.get("/api/review", params={"kind": "silence", "limit": 1}).json()["items"][0]["annotation"]


# ------------------------------------------------------------------ tokens
def test_api_writes_need_the_token(client: TestClient, ws) -> None:  # type: ignore[no-untyped-def]
    ann = an_annotation(client)
    body = {"annotation": ann, "decision": "accepted"}
    r = client.post("/api/review", json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "token" in r.json()["error"]
    r = client.post("/api/review", json=body, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "invalid token" in r.json()["error"]
    r = client.post("/api/review", json=body, headers={"Authorization": F.TOKEN})      # no scheme
    assert r.status_code == 401
    assert ws.iris.review_graph() not in ws.store.graphs()
    r = client.post("/api/review", json=body, headers={"Authorization": f"Bearer {F.TOKEN}"})
    assert r.status_code == 200 and r.json()["by"] == "api"


def test_without_a_configured_token_writes_are_disabled(ws) -> None:  # type: ignore[no-untyped-def]
    c = TestClient(create_app(ws, token=""), raise_server_exceptions=False)
    ann = an_annotation(c)
    r = c.post("/api/review", json={"annotation": ann, "decision": "accepted"},
               headers={"Authorization": f"Bearer {F.TOKEN}"})
    assert r.status_code == 403 and "writes are disabled" in r.json()["error"]
    assert "read-only" in c.get("/").text
    r = c.post("/login", data={"token": F.TOKEN, "csrf_token": csrf_of(c.get("/login").text)})
    assert r.status_code == 403


def test_wrong_token_on_the_login_page(client: TestClient) -> None:
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"token": "guess", "name": "x", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 401 and "wrong token" in r.text and "ico_session" not in r.headers.get("set-cookie", "")


# ------------------------------------------------------------------ CSRF and sessions
def test_a_session_cookie_alone_cannot_write(client: TestClient, ws) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client)
    ann = an_annotation(client)
    body = {"annotation": ann, "decision": "accepted"}
    r = client.post("/api/review", json=body)                                   # no CSRF header
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = client.post("/api/review", json=body, headers={"X-CSRF-Token": csrf[:-2] + "xx"})
    assert r.status_code == 403
    r = client.post("/api/review", json=body, headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    assert ws.iris.review_graph() not in ws.store.graphs()
    r = client.post("/api/review", json=body, headers={"X-CSRF-Token": csrf, "Origin": "http://testserver"})
    assert r.status_code == 200 and r.json()["by"] == "Ada"


def test_forms_need_the_csrf_field(client: TestClient) -> None:
    csrf = login(client)
    ann = an_annotation(client)
    r = client.post("/review/decide", data={"annotation": ann, "decision": "accepted"}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/review/decide", data={"annotation": ann, "decision": "accepted", "csrf_token": csrf,
                                            "next": "/record/r12"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/record/r12"
    r = client.post("/login", data={"token": F.TOKEN, "name": "x"})                # login CSRF too
    assert r.status_code == 403
    r = client.post("/logout", data={}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and 'ico_session=""' in r.headers["set-cookie"]


def test_forged_or_expired_sessions_are_ignored() -> None:
    sec = Security.create("t")
    good = sec.make_session("Ada")
    assert sec.read_session(good) == "Ada"
    payload, mac = good.rsplit(".", 1)
    assert sec.read_session(payload + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B")) is None
    other = Security.create("t")                      # another server's secret
    assert other.read_session(good) is None
    expired = Security("t", sec.secret, session_ttl_s=-10)
    assert sec.read_session(expired.make_session("Ada")) is None
    assert not sec.csrf_ok("seed", sec.csrf_token("other seed"))


def test_redirects_stay_on_this_site() -> None:
    for bad in ("//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)", "", None,
                "/ok\r\nSet-Cookie: x=1"):
        assert safe_next(bad) == "/"
    assert safe_next("/record/r01?lang=fr") == "/record/r01?lang=fr"
    assert same_origin(None, "h") and same_origin("http://h:8000", "h:8000")
    assert not same_origin("http://evil", "h") and not same_origin("null", "h")


def test_login_redirect_ignores_foreign_next(client: TestClient) -> None:
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"token": F.TOKEN, "name": "x", "csrf_token": token,
                                    "next": "//evil.example/"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


# ------------------------------------------------------------------ files and paths
@pytest.mark.parametrize("path", [
    "/iiif/image/..%2F..%2F..%2Fetc%2Fpasswd/full/max/0/default.jpg",
    "/iiif/image/%2E%2E/%2E%2E/iconoscope.toml/info.json",
    "/iiif/image/..%5C..%5Ciconoscope.toml/info.json",
    "/models/fruit/files/..%2F..%2Ficonoscope.toml",
    "/models/fruit/files/%2E%2E%2Fmodel_card.json",
    "/models/..%2F..%2Fimages/files/img00-0.png",
    "/static/..%2F..%2Fserve%2Fapp.py",
    "/static/%2E%2E/app.py",
    "/iiif/..%2F..%2Fetc/manifest",
])
def test_no_path_traversal(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert "[collection]" not in r.text and "def create_app" not in r.text and "root:" not in r.text


def test_images_are_reencoded_so_non_images_never_leak(client: TestClient, ws) -> None:  # type: ignore[no-untyped-def]
    secret_file = ws.config_path
    img = nt_iri(ws.iris.image("evil"))
    ws.store.add_to_graph(ws.iris.source_graph("evil"), [
        triple(img, nt_iri(RDF_TYPE), nt_iri(ICO + "Image")),
        triple(img, nt_iri(ICO + "location"), nt_literal(str(secret_file)))])
    try:
        for path in ("/iiif/image/evil/info.json", "/iiif/image/evil/full/max/0/default.jpg",
                     "/iiif/image/evil/full/max/0/default.png"):
            r = client.get(path)
            assert r.status_code == 404 and "[collection]" not in r.text
    finally:
        ws.store.drop_graph(ws.iris.source_graph("evil"))


def test_active_model_files_are_sandboxed(client: TestClient, ws) -> None:  # type: ignore[no-untyped-def]
    report = ws.model_dir("fruit") / "report.html"
    report.write_text("<script>document.cookie</script>", encoding="utf-8")
    try:
        r = client.get("/models/fruit/files/report.html")
        assert r.status_code == 200 and r.headers["content-security-policy"] == "sandbox"
        r = client.get("/models/fruit/files/pr_curves.png")
        assert r.headers["content-type"] == "image/png" and "sandbox" not in r.headers["content-security-policy"]
    finally:
        report.unlink()


# ------------------------------------------------------------------ escaping, errors, headers
def test_everything_shown_is_escaped(client: TestClient) -> None:
    raw = '<script>alert("x")</script>'
    for url in ("/", "/record/r12", "/?q=cherry", "/review?kind=silence"):
        html = client.get(url).text
        assert raw not in html, url
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in client.get("/record/r12").text
    html = client.get("/", params={"q": '"><img src=x onerror=alert(1)>', "creator": "<b>c</b>"}).text
    assert "<img src=x" not in html and "<b>c</b>" not in html
    r = client.get("/record/<svg onload=alert(1)>")
    assert r.status_code == 404 and "<svg onload" not in r.text and "&lt;svg onload=alert(1)&gt;" in r.text
    # JSON answers are JSON-escaped, and served as JSON (never sniffed as HTML)
    r = client.get("/api/records/r12")
    assert r.headers["content-type"] == "application/json" and r.headers["x-content-type-options"] == "nosniff"


def test_bad_requests_get_a_message_not_a_stack_trace(client: TestClient, app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/", params={"min_score": "lots"})
    assert r.status_code == 422 and "min_score" in r.text and "Traceback" not in r.text
    assert r.headers["content-type"].startswith("text/html")
    r = client.get("/review", params={"kind": "all"})
    assert r.status_code == 422 and "kind" in r.text
    r = client.post("/api/review", content=b"{not json", headers={"content-type": "application/json",
                                                                  "Authorization": f"Bearer {F.TOKEN}"})
    assert r.status_code == 422 and "error" in r.json()

    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals /home/x/db")

    monkeypatch.setattr(app.state.iconoscope.catalog, "search", boom)
    for path in ("/", "/api/search"):
        r = client.get(path)
        assert r.status_code == 500
        assert "internal error" in r.text and "secret internals" not in r.text and "Traceback" not in r.text


def test_security_headers_on_every_response(client: TestClient) -> None:
    for path in ("/", "/api/search", "/iiif/r01/manifest", "/static/style.css", "/nope"):
        h = client.get(path).headers
        assert "default-src 'self'" in h["content-security-policy"], path
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY", path
    first = TestClient(client.app).get("/")
    assert "ico_csrf=" in first.headers["set-cookie"] and "HttpOnly" in first.headers["set-cookie"]
