"""The web app over real records and real images: a sample of the USDA Pomological Watercolor Collection.

The graph is written here as docs/graph-model.md says (records, images, a genus > species SKOS tree); expectations
are computed from records.csv independently of the code under test.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from iconoscope.graph.terms import XSD, nt_iri, nt_literal, triple
from iconoscope.graph.vocab import DCTERMS, ICO, RDF_TYPE, SKOS
from iconoscope.serve import create_app
from iconoscope.workspace import Workspace

pytestmark = pytest.mark.shared_data
BASE = "https://example.org/pomo/"
STEP = 120          # every 120th row: ~50 records across artists, decades and genera


def concept(kind: str, name: str) -> str:
    return f"{BASE}concept/pomo/{kind}-{quote(name.replace(' ', '_'), safe='')}"


@pytest.fixture(scope="module")
def sample(shared_data: Path) -> list[dict[str, str]]:
    folder = shared_data / "pomological"
    with open(folder / "records.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[::STEP]
    for r in rows:
        r["path"] = str(folder / "images" / r["image"])
        r["id"] = r["naldc_id"]
    return [r for r in rows if Path(r["path"]).is_file() and r["genus"] and r["scientific_name"]]


@pytest.fixture(scope="module")
def client(sample: list[dict[str, str]], tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("pomo") / "ws"
    root.mkdir()
    (root / "iconoscope.toml").write_text(f'[collection]\nname = "pomo"\nbase_iri = "{BASE}"\n', encoding="utf-8")
    ws = Workspace(root)

    def t(s: str, p: str, o: str) -> str:
        return triple(nt_iri(s), nt_iri(p), o)

    vocab, records = [], []
    for genus in sorted({r["genus"] for r in sample}):
        vocab += [t(concept("genus", genus), RDF_TYPE, nt_iri(SKOS + "Concept")),
                  t(concept("genus", genus), SKOS + "prefLabel", nt_literal(genus, lang="la"))]
    for r in sample:
        sp, g = concept("species", r["scientific_name"]), concept("genus", r["genus"])
        vocab += [t(sp, RDF_TYPE, nt_iri(SKOS + "Concept")), t(sp, SKOS + "broader", nt_iri(g)),
                  t(g, SKOS + "narrower", nt_iri(sp)), t(sp, SKOS + "prefLabel", nt_literal(r["scientific_name"],
                                                                                            lang="la"))]
        rec, img = ws.iris.record(r["id"]), ws.iris.image(r["id"])
        title = r["variety"] or r["scientific_name"]
        records += [t(rec, RDF_TYPE, nt_iri(ICO + "Record")), t(rec, DCTERMS + "identifier", nt_literal(r["id"])),
                    t(rec, DCTERMS + "title", nt_literal(title, lang="en")), t(rec, ICO + "source", nt_literal("usda")),
                    t(rec, DCTERMS + "subject", nt_iri(sp)), t(rec, ICO + "image", nt_iri(img)),
                    t(img, RDF_TYPE, nt_iri(ICO + "Image")), t(img, ICO + "location", nt_literal(r["path"])),
                    t(img, ICO + "record", nt_iri(rec))]
        if r["artist"]:
            records.append(t(rec, DCTERMS + "creator", nt_literal(r["artist"])))
        if r["year"].isdigit():
            records += [t(rec, DCTERMS + "created", nt_literal(r["year"])),
                        t(rec, ICO + "year", nt_literal(r["year"], datatype=XSD + "integer"))]
    ws.store.replace_graph(ws.iris.vocab_graph("pomo"), vocab)
    ws.store.replace_graph(ws.iris.source_graph("usda"), records)
    yield TestClient(create_app(ws, token="t"), raise_server_exceptions=False)
    ws.close()


def test_facets_match_the_csv(client: TestClient, sample: list[dict[str, str]]) -> None:
    res = client.get("/api/search", params={"limit": 200}).json()
    assert res["total"] == len(sample)
    want = Counter(r["artist"] for r in sample if r["artist"])
    got = {f["value"]: f["count"] for f in res["facets"]["creator"]}
    assert got == dict(want.most_common(30))
    decades = Counter(str(int(r["year"]) // 10 * 10) for r in sample if r["year"].isdigit())
    assert {f["value"]: f["count"] for f in res["facets"]["decade"]} == dict(decades)


def test_genus_search_finds_its_species_records(client: TestClient, sample: list[dict[str, str]]) -> None:
    for genus in ("Malus", "Prunus"):
        want = {r["id"] for r in sample if r["genus"] == genus}
        assert want, genus
        res = client.get("/api/search", params={"concept": concept("genus", genus), "limit": 200}).json()
        assert {i["id"] for i in res["items"]} == want
        assert all(i["match"] == "curated" for i in res["items"])
        by_label = client.get("/api/search", params={"q": genus.lower(), "limit": 200}).json()
        assert want <= {i["id"] for i in by_label["items"]}


def test_real_images_through_iiif(client: TestClient, sample: list[dict[str, str]]) -> None:
    from iiif_prezi3 import Manifest

    for r in sample[:5]:
        with Image.open(r["path"]) as im:
            size = im.size
        info = client.get(f"/iiif/image/{r['id']}/info.json").json()
        assert (info["width"], info["height"]) == size
        thumb = client.get(f"/iiif/image/{r['id']}/full/!100,100/0/default.jpg")
        img = Image.open(io.BytesIO(thumb.content))
        scale = min(100 / size[0], 100 / size[1], 1.0)
        assert img.size == (round(size[0] * scale), round(size[1] * scale))
        doc = client.get(f"/iiif/{r['id']}/manifest").json()
        Manifest(**doc)
        assert doc["items"][0]["width"] == size[0]
    page = client.get(f"/record/{sample[0]['id']}").text
    assert (sample[0]["variety"] or sample[0]["scientific_name"]).split(":")[0] in page
