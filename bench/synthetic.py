"""A Joconde-scale synthetic collection for benchmarks: records, a SKOS thesaurus and a ready iconoscope.toml.

``generate(out_dir, n_records=300_000, n_concepts=20_000, seed=0, images=False)`` writes

* ``thesaurus.ttl``: ``n_concepts`` SKOS concepts under 12 top concepts, at most 7 levels deep (preferential
  attachment, so a few concepts have many children as in real thesauri), with fr + en prefLabels and altLabels for
  about a third of them, some skos:related links;
* ``records.csv``: ``id,title,creator,date,medium,subject,image``; each record has 1-5 subjects drawn from a Zipf
  law over the concepts (a few subjects are very common, most are rare), written as their French or English label,
  an altLabel, or with the case and accents a cataloguer drops; about 3% are words no concept has;
* ``images/``: only with ``images=True``, one small procedurally coloured JPEG per record (otherwise the image
  column holds ``https://`` URLs, which ingest does not fetch);
* ``iconoscope.toml`` declaring the vocabulary ``synth`` and the source ``records``.

The output is cached: a second call with the same parameters returns at once. Other benchmarks import it with
``sys.path.insert(0, "bench"); from synthetic import generate``.
"""

from __future__ import annotations

import csv
import json
import random
import unicodedata
from pathlib import Path

VERSION = 2
BASE = "https://example.org/synthetic/"
SYLLABLES = ["ra", "mo", "li", "ta", "ne", "ssa", "ver", "gal", "on", "tri", "bel", "cor", "fu", "lan", "dé",
             "pi", "sè", "ro", "mar", "chi", "vo", "za", "qua", "ri", "el", "um", "ba", "to", "ix", "or"]
MEDIA = ["huile sur toile", "aquarelle", "gravure", "dessin", "photographie", "tapisserie", "sculpture"]


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(n))


def _strip_accents(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def _thesaurus(rng: random.Random, n: int) -> tuple[list[dict], list[tuple[int, int]]]:
    concepts: list[dict] = []
    depth: list[int] = []
    weight: list[float] = []
    seen: set[str] = set()
    for i in range(n):
        while True:
            fr = " ".join(_word(rng, rng.randint(2, 3)) for _ in range(rng.choice([1, 1, 1, 2])))
            if fr not in seen:
                seen.add(fr)
                break
        c = {"id": f"C{i:06d}", "fr": fr, "en": f"{_word(rng, 2)} {fr.split()[0][::-1]}", "parent": None, "alt": []}
        if i >= 12:
            # preferential attachment among concepts that can still have children
            while True:
                p = rng.choices(range(i), weights=weight, k=1)[0]
                if depth[p] < 6:
                    break
            c["parent"] = p
            depth.append(depth[p] + 1)
        else:
            depth.append(0)
        weight.append(1.0 + (3.0 if depth[-1] < 3 else 0.0))
        if c["parent"] is not None:
            weight[c["parent"]] += 1.0
        if rng.random() < 0.33:
            c["alt"].append(f"{fr} {_word(rng, 1)}")
        concepts.append(c)
    related = [(rng.randrange(n), rng.randrange(n)) for _ in range(n // 20)]
    return concepts, [(a, b) for a, b in related if a != b]


def _turtle(concepts: list[dict], related: list[tuple[int, int]]) -> str:
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace('"', '\\"')

    out = ["@prefix skos: <http://www.w3.org/2004/02/skos/core#> .", f"@prefix c: <{BASE}concept/> .",
           f"<{BASE}scheme> a skos:ConceptScheme ; skos:prefLabel \"Synthetic thesaurus\"@en .", ""]
    rel: dict[int, list[int]] = {}
    for a, b in related:
        rel.setdefault(a, []).append(b)
    for i, c in enumerate(concepts):
        parts = [f"c:{c['id']} a skos:Concept", f"skos:inScheme <{BASE}scheme>", f"skos:notation \"{c['id']}\"",
                 f"skos:prefLabel \"{esc(c['fr'])}\"@fr, \"{esc(c['en'])}\"@en"]
        if c["alt"]:
            parts.append("skos:altLabel " + ", ".join(f'"{esc(a)}"@fr' for a in c["alt"]))
        if c["parent"] is None:
            parts.append(f"skos:topConceptOf <{BASE}scheme>")
        else:
            parts.append(f"skos:broader c:{concepts[c['parent']]['id']}")
        if i in rel:
            parts.append("skos:related " + ", ".join(f"c:{concepts[j]['id']}" for j in rel[i]))
        out.append(" ;\n    ".join(parts) + " .")
    return "\n".join(out) + "\n"


CONFIG = """# A synthetic Joconde-scale collection (bench/synthetic.py); regenerated on demand, never edited by hand.
[collection]
name = "synthetic"
base_iri = "{base}"
languages = ["fr", "en"]

[vocabularies.synth]
path = "thesaurus.ttl"
format = "skos"
languages = ["fr", "en"]

[sources.records]
kind = "csv"
path = "records.csv"
images = "images"
vocabularies = ["synth"]
subject_parser = "list"
subject_separator = ";"
subject_lang = "fr"
check_images = "{check}"

[sources.records.fields]
id = "id"
title = "title"
creator = "creator"
date = "date"
medium = "medium"
subject = "subject"
image = "image"
"""


def generate(out_dir: Path | str, n_records: int = 300_000, n_concepts: int = 20_000, seed: int = 0,
             images: bool = False) -> dict[str, Path]:
    """Write (or reuse) the collection in ``out_dir``; returns the paths of what it wrote."""
    out = Path(out_dir)
    params = {"version": VERSION, "n_records": n_records, "n_concepts": n_concepts, "seed": seed, "images": images}
    paths = {"root": out, "config": out / "iconoscope.toml", "thesaurus": out / "thesaurus.ttl",
             "records": out / "records.csv", "images": out / "images", "params": out / "params.json"}
    if paths["params"].exists() and json.loads(paths["params"].read_text()) == params and all(
            paths[k].exists() for k in ("config", "thesaurus", "records")):
        return paths
    out.mkdir(parents=True, exist_ok=True)
    paths["params"].unlink(missing_ok=True)
    rng = random.Random(seed)
    concepts, related = _thesaurus(rng, n_concepts)
    paths["thesaurus"].write_text(_turtle(concepts, related), encoding="utf-8")

    # Zipf-like popularity over a shuffled order of the concepts
    order = list(range(n_concepts))
    rng.shuffle(order)
    weights = [1.0 / (rank + 1) ** 0.9 for rank in range(n_concepts)]
    cum: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cum.append(total)
    creators = [f"{_word(rng, 2).capitalize()}, {_word(rng, 2).capitalize()}" for _ in range(2000)]
    if images:
        paths["images"].mkdir(exist_ok=True)
    tmp = paths["records"].with_suffix(".part")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "creator", "date", "medium", "subject", "image"])
        for i in range(n_records):
            k = rng.choices([1, 2, 3, 4, 5], weights=[30, 30, 20, 12, 8])[0]
            texts = []
            for idx in rng.choices(order, cum_weights=cum, k=k):
                c = concepts[idx]
                roll = rng.random()
                if roll < 0.03:
                    texts.append(_word(rng, 3))  # no concept has this
                elif roll < 0.15 and c["alt"]:
                    texts.append(c["alt"][0])
                elif roll < 0.30:
                    texts.append(c["en"])
                elif roll < 0.40:
                    texts.append(_strip_accents(c["fr"]).upper())
                else:
                    texts.append(c["fr"])
            rid = f"R{i:07d}"
            year = rng.randint(1450, 1990)
            if images:
                from PIL import Image

                name = f"{rid}.jpg"
                Image.new("RGB", (32, 32), (rng.randrange(256), rng.randrange(256), rng.randrange(256))).save(
                    paths["images"] / name, quality=80)
            else:
                name = f"https://images.example.org/synthetic/{rid}.jpg"
            date = str(year) if rng.random() < 0.7 else f"{rng.randint(1, 4)}e quart {year // 100 + 1}e siècle"
            w.writerow([rid, f"{concepts[order[i % n_concepts]]['fr'].capitalize()} n° {i}", rng.choice(creators),
                        date, rng.choice(MEDIA), " ; ".join(texts), name])
    tmp.replace(paths["records"])
    paths["config"].write_text(CONFIG.format(base=BASE, check="exists" if images else "none"), encoding="utf-8")
    paths["params"].write_text(json.dumps(params), encoding="utf-8")
    return paths


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--records", type=int, default=300_000)
    ap.add_argument("--concepts", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", action="store_true")
    a = ap.parse_args()
    for k, v in generate(a.out, a.records, a.concepts, a.seed, a.images).items():
        print(f"{k:10} {v}")
