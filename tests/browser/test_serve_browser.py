"""A real browser (Playwright driving Debian's Chromium): search -> open an item -> sign in -> accept a suggestion
-> the SPARQL endpoint returns the new curated subject. Screenshots of the search, item, review, map and SPARQL
pages go to test-artifacts/serve/ for a person to look at."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import serve_fixtures as F

from iconoscope.serve import create_app, integrations

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ICONOSCOPE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "serve"


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/system-deps.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def fake_map(ws):  # type: ignore[no-untyped-def]
    """The exploration stage's map, for the page: one point per image, placed by its painted colour."""
    from PIL import Image, ImageStat

    points = []
    for i, r in enumerate(F.records()):
        for img in r.images:
            path = next(ws.root.joinpath("images").glob(f"img{i:02d}-{r.images.index(img)}.*"))
            red, green, blue = ImageStat.Stat(Image.open(path).convert("RGB")).mean
            points.append({"record": r.id, "image": img, "x": red - blue, "y": green, "cluster": r.truth})
    return {"points": points}


def test_search_item_accept_then_sparql(browser, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    ws = F.build_workspace(tmp_path / "ws")
    real = integrations.optional_function
    monkeypatch.setattr(integrations, "optional_function",
                        lambda module, attr: fake_map if attr == "load_map" else real(module, attr))
    app = create_app(ws, token=F.TOKEN)
    errors: list[str] = []
    try:
        with F.live_server(app) as base:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            # 1. search
            page.goto(base + "/")
            page.screenshot(path=str(SHOTS / "1-search.png"))
            page.fill('input[name="q"]', "peach")
            page.keyboard.press("Enter")
            page.wait_for_url(re.compile(r"q=peach"))
            titles = page.locator(".card .title").all_inner_texts()
            assert "Peach variety no. 11" in titles

            # 2. open the item: its true subject is predicted but not curated
            page.click("text=Peach variety no. 11")
            page.wait_for_url(re.compile(r"/record/r11$"))
            assert page.locator(".chips .chip").count() == 0
            page.screenshot(path=str(SHOTS / "2-item.png"), full_page=True)

            # 3. sign in (the link brings the curator back to the item)
            page.click("text=sign in to review >> nth=0")
            page.fill('input[name="name"]', "Ada")
            page.fill('input[name="token"]', F.TOKEN)
            page.click('button:has-text("Sign in")')
            page.wait_for_url(re.compile(r"/record/r11$"))
            assert page.locator(".who .user").inner_text() == "Ada"

            # 4. accept the suggestion with the keyboard: focus the Peach row, press 'a'
            row = page.locator("tr.review-item", has_text="Peach")
            row.focus()
            page.keyboard.press("a")
            row.locator(".result .status.accepted").wait_for()
            page.screenshot(path=str(SHOTS / "3-item-accepted.png"), full_page=True)
            page.reload()
            assert page.locator(".chips .chip.review").inner_text().strip().endswith("Peach \u2713")

            # 5. the SPARQL endpoint (through its page, as a curator would) returns the new curated subject
            page.goto(base + "/sparql")
            query = (f"SELECT ?subject ?graph WHERE {{ GRAPH ?graph {{ <{F.BASE}record/r11> "
                     f"<http://purl.org/dc/terms/subject> ?subject }} }}")
            page.fill("textarea", query)
            page.click('button:has-text("Run")')
            page.locator(".sparql-result table").wait_for()
            cells = page.locator(".sparql-result td").all_inner_texts()
            assert cells == [F.concept_iri("peach"), F.BASE + "graph/review"]
            page.screenshot(path=str(SHOTS / "5-sparql.png"), full_page=True)

            # 6. the review queue: reject the next suggestion by keyboard
            page.goto(base + "/review?kind=silence")
            first = page.locator("ul.queue .review-item").first
            rejected = first.get_attribute("data-annotation")
            page.screenshot(path=str(SHOTS / "4-review.png"))
            page.keyboard.press("r")                 # the first item has the focus when the page opens
            first.locator(".result .status.rejected").wait_for()
            page.goto(base + "/review?kind=silence")
            left = page.locator("ul.queue .review-item").evaluate_all("els => els.map(e => e.dataset.annotation)")
            assert rejected not in left
            assert len(left) == len([r for r in F.records() if r.curated != r.truth]) - 2   # accepted + rejected

            # 7. the map
            page.goto(base + "/map")
            page.locator("svg.map a").last.hover()
            page.locator("#map-preview img").wait_for()
            page.screenshot(path=str(SHOTS / "6-map.png"))
            assert page.locator("svg.map circle").count() >= len(F.records())
            page.close()
    finally:
        ws.close()
    assert errors == [], errors            # no script error, no blocked resource (CSP), no failed load
