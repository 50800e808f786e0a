"""IIIF: Presentation 3 manifests validated with the iiif-prezi3 models, and the Image API over real images."""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import quote

import pytest
import serve_fixtures as F
from fastapi.testclient import TestClient
from PIL import Image

from iconoscope.serve import create_app
from iconoscope.serve.errors import BadRequest
from iconoscope.serve.iiif_image import parse_request, region_box, target_size


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    ws = F.build_workspace(tmp_path_factory.mktemp("iiif") / "ws")
    yield TestClient(create_app(ws, token=F.TOKEN), raise_server_exceptions=False)
    ws.close()


def test_manifest_validates_and_carries_the_predictions(client: TestClient) -> None:
    from iiif_prezi3 import Manifest
    from pydantic import ValidationError

    r = client.get("/iiif/r03/manifest")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/ld+json")
    assert r.headers["access-control-allow-origin"] == "*"
    doc = r.json()
    Manifest(**doc)                                   # raises on any violation of the Presentation 3 model
    broken = json.loads(r.text)
    del broken["items"][0]["items"][0]["items"][0]["body"]["id"]
    with pytest.raises(ValidationError):               # the validator is not vacuous
        Manifest(**broken)
    assert doc["@context"][-1] == "http://iiif.io/api/presentation/3/context.json"
    assert doc["label"] == {"en": ["Peach variety no. 3"]}
    assert len(doc["items"]) == 2                     # two images, two canvases
    canvas = doc["items"][0]
    painting = canvas["items"][0]["items"][0]
    assert (canvas["width"], canvas["height"]) == (240, 320)
    assert painting["body"]["service"][0] == {"id": "http://testserver/iiif/image/r03", "type": "ImageService3",
                                              "profile": "level0"}
    annos = canvas["annotations"][0]["items"]
    assert len(annos) == 4 and {a["motivation"] for a in annos} == {"classifying"}
    best = annos[0]
    assert best["body"]["source"]["id"] == F.concept_iri("peach")
    assert best["body"]["source"]["label"] == {"en": ["Peach"]}
    assert best["generator"]["id"] == F.BASE + "run/run-1" and "fruit" in best["generator"]["name"]
    assert best["target"] == canvas["id"] and 0.62 <= best["score"] <= 0.97
    assert [a["score"] for a in annos] == sorted((a["score"] for a in annos), reverse=True)
    # every annotation's context term resolves on this server
    ctx = client.get("/iiif/context.json").json()["@context"]
    assert ctx["score"]["@id"] == "ico:score"


def test_manifest_of_an_odd_identifier_and_errors(client: TestClient) -> None:
    from iiif_prezi3 import Manifest

    rid = quote("T 13/b é", safe="")
    doc = client.get(f"/iiif/{rid}/manifest").json()
    Manifest(**doc)
    assert doc["id"] == f"http://testserver/iiif/{rid}/manifest"
    r = client.get("/iiif/nope/manifest")
    assert r.status_code == 404 and r.json() == {"error": "record 'nope': no such record"}


def test_image_api_info_and_sizes(client: TestClient) -> None:
    info = client.get("/iiif/image/r01/info.json").json()
    assert info["type"] == "ImageService3" and info["profile"] == "level0"
    assert (info["width"], info["height"]) == (240, 320)
    assert info["id"] == "http://testserver/iiif/image/r01"
    for size in info["sizes"]:                          # level 0: every listed size is served
        r = client.get(f"/iiif/image/r01/full/{size['width']},{size['height']}/0/default.jpg")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(r.content)).size == (size["width"], size["height"])
    r = client.get("/iiif/image/r01/full/!100,100/0/default.png")
    assert Image.open(io.BytesIO(r.content)).size == (75, 100)
    r = client.get("/iiif/image/r01/square/60,/90/gray.webp")
    img = Image.open(io.BytesIO(r.content))
    assert img.size == (60, 60) and img.format == "WEBP"
    r = client.get("/iiif/image/r01/10,20,100,50/max/0/default.jpg")
    assert Image.open(io.BytesIO(r.content)).size == (100, 50)
    r = client.get("/iiif/image/r01", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/iiif/image/r01/info.json"


def test_the_rendered_pixels_come_from_the_image(client: TestClient) -> None:
    # the fixture paints fruit colours: the centre of an apple thumbnail must be red, a pear's yellow-green
    def centre(rid: str) -> tuple[int, int, int]:
        r = client.get(f"/iiif/image/{rid}/full/!120,120/0/default.png")
        img = Image.open(io.BytesIO(r.content)).convert("RGB")
        return img.getpixel((img.width // 2 + 10, img.height // 2 + 15))

    red, green, blue = centre("r01")
    assert red > 150 and green < 90 and blue < 90
    red, green, blue = centre("r02")
    assert red > 150 and green > 150 and blue < 110


@pytest.mark.parametrize(("path", "message"), [
    ("/iiif/image/r01/full/max/45/default.jpg", "rotation"),
    ("/iiif/image/r01/full/^300,/0/default.jpg", "upscaling"),
    ("/iiif/image/r01/full/500,/0/default.jpg", "larger than"),
    ("/iiif/image/r01/full/max/0/bitonal.jpg", "quality"),
    ("/iiif/image/r01/full/max/0/default.tif", "format"),
    ("/iiif/image/r01/900,900,10,10/max/0/default.jpg", "outside"),
    ("/iiif/image/r01/abc/max/0/default.jpg", "region"),
])
def test_image_api_rejects_bad_requests_by_name(client: TestClient, path: str, message: str) -> None:
    r = client.get(path)
    assert r.status_code == 400 and message in r.json()["error"]


def test_missing_or_unreadable_images_are_404(client: TestClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/iiif/image/nope/info.json").status_code == 404
    _iri, location, _service, _rec = client.app.state.iconoscope.catalog.image("r05")
    path = Path(location)
    original = path.read_bytes()
    try:
        path.write_bytes(b"not an image at all")
        r = client.get("/iiif/image/r05/full/!50,50/0/default.jpg")
        assert r.status_code == 404 and "not a readable image" in r.json()["error"]
    finally:
        path.write_bytes(original)


def test_request_parsing_units() -> None:
    req = parse_request("pct:10,10,50,50", "pct:50", "180", "color.png")
    assert (req.region, req.size, req.rotation, req.quality, req.fmt) == ("pct:10,10,50,50", "pct:50", 180, "color",
                                                                          "png")
    assert region_box("square", 240, 320) == (0, 40, 240, 280)
    assert region_box("pct:10,10,50,50", 200, 100) == (20, 10, 120, 60)
    assert target_size("!100,100", 240, 320) == (75, 100)
    assert target_size(",160", 240, 320) == (120, 160)
    with pytest.raises(BadRequest):
        target_size("pct:0", 10, 10)
