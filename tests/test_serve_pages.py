"""The curator's pages, server-side: search with facets, item, review (without JavaScript), map, model cards."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import serve_fixtures as F
from fastapi.testclient import TestClient

from iconoscope.serve import create_app, integrations


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory):
    w = F.build_workspace(tmp_path_factory.mktemp("pages") / "ws")
    yield w
    w.close()


@pytest.fixture
def client(ws):  # type: ignore[no-untyped-def]
    yield TestClient(create_app(ws, token=F.TOKEN), raise_server_exceptions=False)
    ws.store.drop_graph(ws.iris.review_graph())


@pytest.fixture
def no_exploration(monkeypatch):  # type: ignore[no-untyped-def]
    """As if the exploration stage were not installed."""
    monkeypatch.setattr(integrations, "optional_function", lambda module, attr: None)


def cards(html: str) -> list[str]:
    return re.findall(r'<a class="title" href="/record/([^"]+)">', html)


def test_search_page_with_facets_and_concept(client: TestClient) -> None:
    html = client.get("/").text
    assert "13 records" in html and len(cards(html)) == 13
    assert "Passmore, Deborah Griscom" in html and "1930s" in html
    # the facet link narrows the results
    link = re.search(r'<a href="([^"]+)">Heiges, Bertha</a>', html).group(1).replace("&amp;", "&")
    narrowed = client.get(link).text
    assert len(cards(narrowed)) == sum(r.creator == "Heiges, Bertha" for r in F.records())
    assert 'class="selected">Heiges, Bertha' in narrowed
    html = client.get("/", params={"concept": F.concept_iri("pear"), "min_score": 0.6}).text
    want = {r.id for r in F.records() if r.truth == "pear" or r.curated == "pear"}
    assert {c for c in cards(html)} == {quote(i, safe="") for i in want}
    assert 'class="chip selected"' in html and "Pear" in html
    assert "Nothing matches" in client.get("/", params={"q": "zzzz-no-such-thing"}).text


def test_record_page(client: TestClient, no_exploration) -> None:  # type: ignore[no-untyped-def]
    html = client.get("/record/r08").text
    assert "Cherry variety no. 8" in html and "Variety 8" in html
    assert re.search(r'class="chip source"[^>]*>.*Pear', html)
    assert html.count('class="review-item') == 4                       # four predicted concepts
    assert "sign in to review" in html and "Similar items" not in html and "duplicate" not in html
    html = client.get("/record/" + quote("T 13/b é", safe="")).text
    assert "Odd identifier peach" in html and 'href="/iiif/T%2013%2Fb%20%C3%A9/manifest"' in html
    assert client.get("/record/nope").status_code == 404


def test_record_page_shows_similar_items_and_duplicates_from_exploration(client: TestClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def similar(ws, record_id, k=10):  # type: ignore[no-untyped-def]
        return [("r05", 0.91), ("r09", 0.84)]

    def duplicate_groups(ws):  # type: ignore[no-untyped-def]
        return [[ws.iris.record("r01"), ws.iris.record("r05")], ["r02", "r06"]]

    fns = {"similar": similar, "duplicate_groups": duplicate_groups}
    monkeypatch.setattr(integrations, "optional_function", lambda module, attr: fns.get(attr))
    integrations._DUP_CACHE.clear()
    ws = client.app.state.iconoscope.ws
    assert integrations.duplicate_groups(ws, wait=True) == [["r01", "r05"], ["r02", "r06"]]
    html = client.get("/record/r01").text
    assert "Similar items" in html and "Apple variety no. 5" in html and "0.91" in html
    assert "Possible duplicate" in html and 'href="/record/r05">Apple variety no. 5' in html
    assert "Possible duplicate" not in client.get("/record/r03").text
    integrations._DUP_CACHE.clear()


def test_duplicate_flags_from_the_real_exploration_stage(client: TestClient) -> None:
    """No fake: the installed exploration stage hashes the fixture's images; the page flags what it groups."""
    pytest.importorskip("iconoscope.explore.similar")
    ws = client.app.state.iconoscope.ws
    integrations._DUP_CACHE.clear()
    groups = integrations.duplicate_groups(ws, wait=True)
    assert groups is not None
    known = {r.id for r in F.records()}
    assert all(len(g) > 1 and set(g) <= known for g in groups)
    if not groups:
        pytest.skip("exploration found no duplicates among the fixture's images")
    first, other = groups[0][0], groups[0][1]
    html = client.get("/record/" + quote(first, safe="")).text
    titles = {r.id: r.title for r in F.records()}
    assert "Possible duplicate" in html and f'href="/record/{quote(other, safe="")}"' in html
    assert titles[other].split("<")[0] in html
    integrations._DUP_CACHE.clear()


def test_review_page_and_the_form_path_without_javascript(client: TestClient) -> None:
    html = client.get("/review", params={"kind": "silence"}).text
    assert "Sign in</a> to accept" in html
    items = re.findall(r'data-annotation="([^"]+)"', html)
    assert len(items) == len([r for r in F.records() if r.curated != r.truth])
    # sign in, then decide with the plain form
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"token": F.TOKEN, "name": "Ada", "csrf_token": token})
    html = client.get("/review", params={"kind": "silence"}).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    assert html.count('value="accepted"') == len(items)
    r = client.post("/review/decide", data={"annotation": items[0], "decision": "accepted", "csrf_token": csrf,
                                            "next": "/review?kind=silence"}, follow_redirects=True)
    assert r.status_code == 200
    assert len(re.findall(r'data-annotation="([^"]+)"', r.text)) == len(items) - 1
    assert "Recent decisions" in r.text and "accepted</span>" in r.text and "Ada" in r.text
    noise = client.get("/review", params={"kind": "noise"}).text
    assert len(re.findall(r'data-annotation="', noise)) == 1 and "Pear" in noise


def test_map_page(client: TestClient, no_exploration, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert "No map yet" in client.get("/map").text

    def load_map(ws):  # type: ignore[no-untyped-def]
        return [{"record": r.id, "image": r.images[0], "x": i % 4, "y": i // 4, "cluster": i % 3}
                for i, r in enumerate(F.records())]

    monkeypatch.setattr(integrations, "optional_function", lambda module, attr: load_map if attr == "load_map"
                        else None)
    html = client.get("/map").text
    assert html.count("<circle") == len(F.records()) + 3              # points + legend
    assert 'href="/record/r01"' in html and "cluster 2" in html


def test_model_cards(client: TestClient, ws) -> None:  # type: ignore[no-untyped-def]
    html = client.get("/models").text
    assert 'href="/models/fruit"' in html and "micro_f1" in html
    html = client.get("/models/fruit").text
    assert "Apple" in html and "0.8500" in html and 'src="/models/fruit/files/pr_curves.png"' in html
    assert "A linear probe" in html
    assert client.get("/models/fruit/files/pr_curves.png").headers["content-type"] == "image/png"
    assert client.get("/models/nope").status_code == 404


def test_model_card_in_the_learning_stage_layout(client: TestClient, ws) -> None:  # type: ignore[no-untyped-def]
    """Nested sections, lists of records and the evaluation report folder (reports/eval-NAME) all render."""
    import json

    d = ws.model_dir("subjects")
    card = {"name": "subjects", "version": 3, "head": "mlp", "params": {"C": 1.0, "hidden": 256},
            "backbone": {"spec": "builtin:smallcnn", "dim": 512},
            "categories": [{"iri": F.concept_iri("apple"), "label": "Apple", "support": 40, "threshold": 0.41},
                           {"iri": F.concept_iri("pear"), "label": "Pear", "support": 12, "threshold": 0.37}],
            "evaluation": {"protocol": "5-fold cross-validation", "mean": {"mAP": 0.812, "top1": 0.9},
                           "per_fold": [{"fold": 0, "mAP": 0.8}, {"fold": 1, "mAP": 0.82}]}}
    (d / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    rep = ws.reports_dir("eval-subjects")
    (rep / "pr_curves.png").write_bytes((ws.model_dir("fruit") / "pr_curves.png").read_bytes())
    (rep / "index.html").write_text("<h1>report</h1>", encoding="utf-8")
    html = client.get("/models").text
    assert 'href="/models/subjects"' in html and "mAP" in html and "0.812" in html
    html = client.get("/models/subjects").text
    assert "<td>Pear</td>" in html and "<td>0.3700</td>" in html            # the categories table
    assert "evaluation · per fold" in html and "5-fold cross-validation" in html
    assert 'src="/models/subjects/files/pr_curves.png"' in html and 'href="/models/subjects/files/index.html"' in html
    assert client.get("/models/subjects/files/index.html").headers["content-security-policy"] == "sandbox"


def test_api_overview_and_static_assets(client: TestClient) -> None:
    html = client.get("/api-docs").text
    assert "/api/search" in html and "POST" in html and "token" in html
    assert client.get("/static/app.js").status_code == 200
    css = client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    # everything the pages load is served from here: no CDN, works offline
    for page in ("/", "/record/r01", "/review", "/sparql", "/map"):
        html = client.get(page, headers={"accept": "text/html"}).text
        assert not re.search(r'(src|href)="(https?:)?//', html), page


def test_search_pager_links(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paged results link to the next page (and back), keeping the query."""
    from iconoscope.serve.routes import pages

    monkeypatch.setattr(pages, "PAGE_SIZE", 5)
    first = client.get("/").text
    assert len(cards(first)) == 5
    nxt = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert nxt and 'rel="prev"' not in first
    second = client.get(nxt.group(1).replace("&amp;", "&")).text
    assert len(cards(second)) == 5 and set(cards(second)).isdisjoint(cards(first))
    assert 'rel="prev"' in second
