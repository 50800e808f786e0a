"""A small, complete collection for the web app's tests (and for anyone who needs one): a workspace with a SKOS
vocabulary, records with real (generated) images, two prediction runs with scored Web Annotations, and a model
card, all written exactly as docs/graph-model.md says.

Scores are drawn from a seeded generator around a known truth (the concept a record depicts), so tests can
assert on the ranking a correct implementation must produce without hard-coding any result of the code under test.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from iconoscope.graph.terms import XSD, nt_float, nt_iri, nt_literal, triple
from iconoscope.graph.vocab import DCTERMS, ICO, OA, PROV, RDF_TYPE, SKOS
from iconoscope.workspace import Workspace

BASE = "https://example.org/pomona/"
TOKEN = "test-token-0123456789"

# concept id -> (English label, French label, colour of the painted fruit)
CONCEPTS = {
    "apple": ("Apple", "Pomme", (196, 40, 40)),
    "pear": ("Pear", "Poire", (190, 190, 60)),
    "peach": ("Peach", "Pêche", (240, 150, 90)),
    "cherry": ("Cherry", "Cerise", (130, 10, 40)),
}
CREATORS = ["Passmore, Deborah Griscom", "Newton, Amanda Almira", "Heiges, Bertha", "Arnold, Mary Daisy"]


@dataclass
class Rec:
    id: str
    title: str
    creator: str
    year: int
    truth: str                 # the concept the painting depicts
    curated: str | None        # the curated subject in the source (None: not indexed yet)
    images: list[str] = field(default_factory=list)


def records() -> list[Rec]:
    """Twelve records: eight indexed (one wrongly: r08), four not (their subjects are 'silence')."""
    truths = ["apple", "pear", "peach", "cherry"] * 3
    out = []
    for i, t in enumerate(truths, start=1):
        rid = f"r{i:02d}"
        curated: str | None = t if i <= 8 else None
        if rid == "r08":
            curated = "pear"   # a curated subject the model disagrees with: 'noise'
        title = f"{CONCEPTS[t][0]} variety no. {i}"
        if rid == "r12":
            title = '<script>alert("x")</script> & "quoted" cherry'
        out.append(Rec(rid, title, CREATORS[i % len(CREATORS)], 1890 + 4 * i, t, curated, [rid]))
    out[2].images.append("r03-2")          # a record with two images
    out.append(Rec("T 13/b é", "Odd identifier peach", CREATORS[0], 1931, "peach", "peach", ["T 13/b é"]))
    return out


def concept_iri(cid: str) -> str:
    return f"{BASE}concept/fruit/{cid}"


def paint(path: Path, colour: tuple[int, int, int], seed: int) -> None:
    """A watercolour-like fruit on paper, so screenshots look like a collection and images decode for real."""
    rng = random.Random(seed)
    img = Image.new("RGB", (240, 320), (246, 241, 228))
    d = ImageDraw.Draw(img)
    cx, cy, r = 120 + rng.randint(-15, 15), 175 + rng.randint(-15, 15), 70 + rng.randint(-8, 8)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour, outline=tuple(max(0, c - 60) for c in colour), width=3)
    d.ellipse([cx - r // 2, cy - r // 2, cx - r // 6, cy - r // 6], fill=tuple(min(255, c + 50) for c in colour))
    d.line([cx, cy - r, cx + 8, cy - r - 30], fill=(90, 60, 30), width=5)
    d.polygon([(cx + 8, cy - r - 22), (cx + 55, cy - r - 45), (cx + 20, cy - r - 8)], fill=(60, 120, 50))
    d.text((12, 296), f"no. {seed}", fill=(80, 70, 60))
    if path.suffix == ".jpg":
        img.save(path, quality=90)
    else:
        img.save(path)


def _t(s: str, p: str, o: str) -> str:
    return triple(s, nt_iri(p), o)


def vocab_lines() -> list[str]:
    lines = []
    scheme = f"{BASE}scheme/fruit"
    top = concept_iri("fruit")
    lines += [_t(nt_iri(scheme), RDF_TYPE, nt_iri(SKOS + "ConceptScheme")),
              _t(nt_iri(top), RDF_TYPE, nt_iri(SKOS + "Concept")),
              _t(nt_iri(top), SKOS + "prefLabel", nt_literal("Fruit", lang="en")),
              _t(nt_iri(top), SKOS + "prefLabel", nt_literal("Fruit", lang="fr")),
              _t(nt_iri(top), SKOS + "inScheme", nt_iri(scheme)),
              _t(nt_iri(top), SKOS + "topConceptOf", nt_iri(scheme))]
    for n, (cid, (en, fr, _)) in enumerate(CONCEPTS.items(), start=1):
        c = nt_iri(concept_iri(cid))
        lines += [_t(c, RDF_TYPE, nt_iri(SKOS + "Concept")),
                  _t(c, SKOS + "prefLabel", nt_literal(en, lang="en")),
                  _t(c, SKOS + "prefLabel", nt_literal(fr, lang="fr")),
                  _t(c, SKOS + "notation", nt_literal(f"F.{n}")),
                  _t(c, SKOS + "inScheme", nt_iri(scheme)),
                  _t(c, SKOS + "broader", nt_iri(top)),
                  _t(nt_iri(top), SKOS + "narrower", c)]
    lines.append(_t(nt_iri(concept_iri("apple")), SKOS + "altLabel", nt_literal("Malus", lang="en")))
    return lines


def source_lines(ws: Workspace, recs: list[Rec], image_dir: Path) -> list[str]:
    iris = ws.iris
    lines = []
    for n, r in enumerate(recs):
        s = nt_iri(iris.record(r.id))
        lines += [_t(s, RDF_TYPE, nt_iri(ICO + "Record")),
                  _t(s, DCTERMS + "identifier", nt_literal(r.id)),
                  _t(s, ICO + "source", nt_literal("main")),
                  _t(s, DCTERMS + "title", nt_literal(r.title, lang="en")),
                  _t(s, DCTERMS + "creator", nt_literal(r.creator)),
                  _t(s, DCTERMS + "created", nt_literal(f"ca. {r.year}")),
                  _t(s, ICO + "year", nt_literal(r.year, datatype=XSD + "integer")),
                  _t(s, DCTERMS + "medium", nt_literal("watercolour")),
                  _t(s, ICO + "subjectText", nt_literal(CONCEPTS[r.truth][1].lower())),
                  _t(s, iris.field("variety"), nt_literal(f"Variety {n + 1}"))]
        if r.curated:
            lines.append(_t(s, DCTERMS + "subject", nt_iri(concept_iri(r.curated))))
        for k, img_id in enumerate(r.images):
            suffix = ".jpg" if n % 2 else ".png"
            path = image_dir / f"img{n:02d}-{k}{suffix}"
            paint(path, CONCEPTS[r.truth][2], seed=n * 10 + k)
            im = nt_iri(iris.image(img_id))
            lines += [_t(s, ICO + "image", im), _t(im, RDF_TYPE, nt_iri(ICO + "Image")),
                      _t(im, ICO + "location", nt_literal(str(path))), _t(im, ICO + "record", s)]
    return lines


def run_lines(ws: Workspace, recs: list[Rec], run_id: str, seed: int, ended: str, version: str) -> list[str]:
    """A prediction run: the true concept scores high, others low; r08's curated 'pear' scores low (noise)."""
    iris = ws.iris
    rng = random.Random(seed)
    run = nt_iri(iris.run(run_id))
    dt = XSD + "dateTime"
    lines = [_t(run, RDF_TYPE, nt_iri(PROV + "Activity")), _t(run, ICO + "classifier", nt_literal("fruit")),
             _t(run, PROV + "used", nt_iri(iris.model("fruit"))), _t(run, ICO + "modelVersion", nt_literal(version)),
             _t(run, ICO + "parameters", nt_literal(json.dumps({"head": "linear"}))),
             _t(run, PROV + "startedAtTime", nt_literal(ended.replace("T10", "T09"), datatype=dt)),
             _t(run, PROV + "endedAtTime", nt_literal(ended, datatype=dt))]
    for r in recs:
        for img_id in r.images:
            for cid in CONCEPTS:
                score = rng.uniform(0.62, 0.97) if cid == r.truth else rng.uniform(0.02, 0.38)
                a = nt_iri(iris.annotation(run_id, f"{img_id}|{cid}"))
                lines += [_t(a, RDF_TYPE, nt_iri(OA + "Annotation")),
                          _t(a, OA + "motivatedBy", nt_iri(OA + "classifying")),
                          _t(a, OA + "hasTarget", nt_iri(iris.image(img_id))),
                          _t(a, OA + "hasBody", nt_iri(concept_iri(cid))),
                          _t(a, ICO + "score", nt_float(score)),
                          _t(a, PROV + "wasGeneratedBy", run)]
    return lines


def write_model_card(ws: Workspace) -> None:
    d = ws.model_dir("fruit")
    card = {"name": "fruit", "version": "2", "backbone": "builtin:smallcnn", "head": "linear",
            "trained_at": "2024-05-02T10:00:00Z", "n_images": 13, "folds": 5,
            "metrics": {"micro_f1": 0.81, "macro_f1": 0.78, "map": 0.86},
            "per_class": {concept_iri(c): {"label": CONCEPTS[c][0], "ap": 0.7 + 0.05 * i, "f1": 0.6 + 0.07 * i,
                                           "support": 3} for i, c in enumerate(CONCEPTS)}}
    (d / "model_card.json").write_text(json.dumps(card, indent=1), encoding="utf-8")
    (d / "model_card.md").write_text("# fruit\n\nA linear probe on builtin:smallcnn embeddings.\n", encoding="utf-8")
    img = Image.new("RGB", (320, 200), "white")
    dr = ImageDraw.Draw(img)
    for i in range(4):
        dr.rectangle([30 + 70 * i, 180 - 30 * (i + 2), 80 + 70 * i, 180], fill=(60, 100, 160))
    img.save(d / "pr_curves.png")


def write_config(root: Path) -> None:
    cats = ", ".join(f'"{concept_iri(c)}"' for c in CONCEPTS)
    root.mkdir(parents=True, exist_ok=True)
    (root / "iconoscope.toml").write_text(f'''[collection]
name = "pomona"
base_iri = "{BASE}"
languages = ["en", "fr"]

[vocabularies.fruit]
format = "skos"

[sources.main]
kind = "csv"
path = "records.csv"
vocabularies = ["fruit"]

[classifiers.fruit]
vocabulary = "fruit"
categories = [{cats}]

[serve]
token_env = "ICONOSCOPE_SERVE_TEST_TOKEN_UNSET"
query_timeout_s = 5
''', encoding="utf-8")


def build_workspace(root: Path) -> Workspace:
    """Create the whole collection under ``root`` and return it opened (the caller closes it)."""
    write_config(root)
    image_dir = root / "images"
    image_dir.mkdir(exist_ok=True)
    ws = Workspace(root)
    recs = records()
    st = ws.store
    st.replace_graph(ws.iris.vocab_graph("fruit"), vocab_lines())
    st.replace_graph(ws.iris.source_graph("main"), source_lines(ws, recs, image_dir))
    st.replace_graph(ws.iris.run_graph("run-0"), run_lines(ws, recs, "run-0", seed=1,
                                                           ended="2024-05-01T10:00:00Z", version="1"))
    st.replace_graph(ws.iris.run_graph("run-1"), run_lines(ws, recs, "run-1", seed=2,
                                                           ended="2024-05-02T10:00:00Z", version="2"))
    write_model_card(ws)
    return ws


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(app: object) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on a free loopback port in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
