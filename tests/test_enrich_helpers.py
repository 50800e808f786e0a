"""A small hand-made collection for the enrichment tests: a bilingual SKOS hierarchy, records with curated subjects
(some deliberately wrong or missing), images (tiny PNGs), out-of-fold scores and a fake classifier.

Built straight into the graph with N-Triples (graph-model.md) so these tests do not depend on the ingest stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from iconoscope.graph.terms import nt_iri, nt_literal
from iconoscope.graph.vocab import DCTERMS, ICO, RDF_TYPE, SKOS

# id -> (fr, en, broader)
CONCEPTS = {
    "animal": ("animal", "animal", None),
    "chien": ("chien", "dog", "animal"),
    "levrier": ("lévrier", "greyhound", "chien"),
    "chat": ("chat", "cat", "animal"),
    "fruit": ("fruit", "fruit", None),
    "pomme": ("pomme", "apple", "fruit"),
    "poire": ("poire", "pear", "fruit"),
}
CATEGORIES = ["chien", "chat", "pomme", "poire"]
N_RECORDS = 40


def concept(ws: Any, cid: str) -> str:
    return ws.iris.concept("demo", cid)


def truth_of(i: int) -> str:
    """What record i really depicts."""
    return CATEGORIES[i % 4]


# planted errors: record -> curated subject that is wrong (noise) / records whose subject is missing (silence)
SWAPPED = {3: "chien", 9: "pomme"}       # r3 is a poire labelled chien; r9 is a chat labelled pomme
MISSING = {14, 22}                        # r14 (pomme), r22 (pomme) have no curated subject
NARROWER = {4: "levrier"}                 # r4 (chien) is annotated with the narrower 'lévrier'


def curated_of(i: int) -> str | None:
    if i in MISSING:
        return None
    if i in SWAPPED:
        return SWAPPED[i]
    return NARROWER.get(i, truth_of(i))


def images_of(i: int) -> list[str]:
    return [f"r{i}", f"r{i}-2"] if i in (0, 5) else [f"r{i}"]


def build_graph(ws: Any, image_dir: Path | None = None) -> None:
    """Vocabulary + one source graph with N_RECORDS records."""
    from PIL import Image

    t = nt_iri(RDF_TYPE)
    lines = [f"{nt_iri(ws.iris.scheme('demo'))} {t} {nt_iri(SKOS + 'ConceptScheme')} .\n"]
    for cid, (fr, en, broader) in CONCEPTS.items():
        c = nt_iri(concept(ws, cid))
        lines.append(f"{c} {t} {nt_iri(SKOS + 'Concept')} .\n")
        lines.append(f"{c} {nt_iri(SKOS + 'prefLabel')} {nt_literal(fr, lang='fr')} .\n")
        lines.append(f"{c} {nt_iri(SKOS + 'prefLabel')} {nt_literal(en, lang='en')} .\n")
        lines.append(f"{c} {nt_iri(SKOS + 'inScheme')} {nt_iri(ws.iris.scheme('demo'))} .\n")
        if broader:
            b = nt_iri(concept(ws, broader))
            lines.append(f"{c} {nt_iri(SKOS + 'broader')} {b} .\n{b} {nt_iri(SKOS + 'narrower')} {c} .\n")
    ws.store.replace_graph(ws.iris.vocab_graph("demo"), lines)
    src = []
    for i in range(N_RECORDS):
        r = nt_iri(ws.iris.record(f"r{i}"))
        src.append(f"{r} {t} {nt_iri(ICO + 'Record')} .\n")
        src.append(f"{r} {nt_iri(DCTERMS + 'identifier')} {nt_literal(f'r{i}')} .\n")
        src.append(f"{r} {nt_iri(ICO + 'source')} {nt_literal('main')} .\n")
        cur = curated_of(i)
        text = CONCEPTS[cur][0] if cur else "sans sujet"
        src.append(f"{r} {nt_iri(ICO + 'subjectText')} {nt_literal(text, lang='fr')} .\n")
        if cur:
            src.append(f"{r} {nt_iri(DCTERMS + 'subject')} {nt_iri(concept(ws, cur))} .\n")
        for img_id in images_of(i):
            im = nt_iri(ws.iris.image(img_id))
            src.append(f"{r} {nt_iri(ICO + 'image')} {im} .\n{im} {nt_iri(ICO + 'record')} {r} .\n")
            src.append(f"{im} {t} {nt_iri(ICO + 'Image')} .\n")
            if image_dir is not None:
                image_dir.mkdir(parents=True, exist_ok=True)
                path = image_dir / f"{img_id}.png"
                if not path.exists():
                    Image.new("RGB", (24, 16), ((i * 37) % 255, 120, 200)).save(path)
                src.append(f"{im} {nt_iri(ICO + 'location')} {nt_literal(str(path))} .\n")
    ws.store.replace_graph(ws.iris.source_graph("main"), src)


def all_images() -> list[str]:
    return [img for i in range(N_RECORDS) for img in images_of(i)]


def record_of_image(img: str) -> str:
    return img.split("-")[0]


def curated_mask(images: list[str]) -> np.ndarray:
    """bool [images, categories]: the image's record is curated with the category (or below it)."""
    out = np.zeros((len(images), len(CATEGORIES)), dtype=bool)
    for k, img in enumerate(images):
        cur = curated_of(int(record_of_image(img)[1:]))
        if cur:
            out[k, CATEGORIES.index("chien" if cur == "levrier" else cur)] = True
    return out


def scores_for(images: list[str], seed: int = 0) -> np.ndarray:
    """Model scores: high for what an image really depicts, low otherwise; distinct values (no ties)."""
    rng = np.random.default_rng(seed)
    S = rng.uniform(0.001, 0.2, size=(len(images), len(CATEGORIES))).astype(np.float32)
    for k, img in enumerate(images):
        i = int(record_of_image(img)[1:])
        j = CATEGORIES.index(truth_of(i))
        S[k, j] = np.float32(rng.uniform(0.7, 0.99))
        if img.endswith("-2"):       # second images are details: weaker evidence
            S[k, j] = np.float32(S[k, j] * 0.5)
        if i in SWAPPED or i in MISSING:  # planted errors: the model is sure of the truth
            S[k, j] = np.float32(0.98 - i / 1000)
        if i in SWAPPED:
            S[k, CATEGORIES.index(SWAPPED[i])] = np.float32(0.002 + i / 10000)
    return S


def write_oof(ws: Any, name: str = "demo", seed: int = 1) -> pa.Table:
    """Out-of-fold scores for the labelled records (those with a curated subject), as `train` writes them."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[Any]] = {k: [] for k in ("record", "image", "concept", "score", "label", "fold")}
    for i in range(N_RECORDS):
        cur = curated_of(i)
        if cur is None:
            continue
        cur_cat = "chien" if cur == "levrier" else cur
        for img in images_of(i):
            for c in CATEGORIES:
                truth = truth_of(i) == c
                score = rng.uniform(0.6, 0.95) if truth else rng.uniform(0.0, 0.3)
                if i in SWAPPED and c == SWAPPED[i]:   # the fold model never saw it: it sees no c there...
                    score = 0.01
                if i in SWAPPED and truth:             # ...but clearly what it really is
                    score = 0.97
                rows["record"].append(f"r{i}")
                rows["image"].append(img)
                rows["concept"].append(concept(ws, c))
                rows["score"].append(float(score))
                rows["label"].append(int(cur_cat == c))
                rows["fold"].append(i % 5)
    table = pa.table({"record": pa.array(rows["record"], pa.string()), "image": pa.array(rows["image"], pa.string()),
                      "concept": pa.array(rows["concept"], pa.string()),
                      "score": pa.array(rows["score"], pa.float32()), "label": pa.array(rows["label"], pa.int8()),
                      "fold": pa.array(rows["fold"], pa.int16())})
    pq.write_table(table, ws.model_dir(name) / "oof_scores.parquet")
    return table


def add_classifier_config(ws_root: Path, name: str = "demo", categories: list[str] | None = None) -> None:
    cfg = ws_root / "iconoscope.toml"
    cats = categories or [f"https://example.org/test/concept/demo/{c}" for c in CATEGORIES]
    cfg.write_text(cfg.read_text(encoding="utf-8") + f"\n[classifiers.{name}]\ncategories = {cats!r}\n".replace(
        "'", '"'), encoding="utf-8")


class FakeClassifier:
    """What ``iconoscope.learn.classifier.load_classifier`` returns, for tests: a fixed score table by image."""

    def __init__(self, ws: Any, images: list[str], S: np.ndarray, version: int = 1):
        self.categories = [concept(ws, c) for c in CATEGORIES]
        self.labels = {concept(ws, c): CONCEPTS[c][1] for c in CATEGORIES}
        self.backbone = "fake:identity"
        self.version = version
        self.kind = "linear"
        self.card: dict[str, Any] = {}
        self._row = {img: k for k, img in enumerate(images)}
        self._S = S

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        # the "vectors" carry the row index of the image in column 0
        return self._S[np.asarray(X[:, 0], dtype=np.int64)]


def test_fixture_builds(workspace: Any) -> None:
    build_graph(workspace)
    n = workspace.store.select("PREFIX ico: <https://w3id.org/iconoscope/ns#> "
                               "SELECT (COUNT(*) AS ?n) WHERE { ?r ico:image ?i }").rows[0][0]
    assert int(n.value) == len(all_images())
