"""A small, self-made collection for the demo: procedurally drawn images with known subjects.

No network and no shared data: everything is generated from a seed, so the demo runs on a fresh machine and its
results are reproducible. The collection imitates a real one on purpose:

* a bilingual (fr/en) SKOS thesaurus with a hierarchy (``nature > astre > soleil``) so label derivation along
  ``skos:broader*`` matters;
* records with Garnier-style subject strings (``paysage (soleil, arbre)``), a creator whose palette and stroke are
  recognisable, a date and a technique (engravings are drawn in grey), so the multimodal model has signal;
* planted errors a curator would want found: some records' subject swapped for another (noise), some subjects
  left out (silence), and near-duplicate images (re-encoded, resized, cropped copies).

The truth about every planted error is written to ``truth.json`` so the demo can check what the audit finds.
"""

from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIZE = 96

# concept id -> (fr label, en label, broader id or None)
THESAURUS: dict[str, tuple[str, str, str | None]] = {
    "nature": ("nature", "nature", None),
    "astre": ("astre", "celestial body", "nature"),
    "soleil": ("soleil", "sun", "astre"),
    "lune": ("lune", "moon", "astre"),
    "etoile": ("étoile", "star", "astre"),
    "vegetal": ("végétal", "plant", "nature"),
    "arbre": ("arbre", "tree", "vegetal"),
    "fleur": ("fleur", "flower", "vegetal"),
    "eau": ("eau", "water", "nature"),
    "mer": ("mer", "sea", "eau"),
    "architecture": ("architecture", "architecture", None),
    "maison": ("maison", "house", "architecture"),
    "tour": ("tour", "tower", "architecture"),
    "transport": ("moyen de transport", "means of transport", None),
    "bateau": ("bateau", "boat", "transport"),
}
# extra labels a cataloguer might have typed (altLabels): exercises the multilingual matcher
ALT_LABELS: dict[str, list[tuple[str, str]]] = {
    "etoile": [("etoile", "fr"), ("astérisme", "fr")],
    "bateau": [("navire", "fr"), ("ship", "en")],
    "maison": [("habitation", "fr"), ("building", "en")],
    "arbre": [("arbre isolé", "fr")],
}
RELATED = [("mer", "bateau"), ("lune", "etoile")]

# the drawable subjects (leaves) and the category set the demo classifier learns
DRAWABLE = ["soleil", "lune", "etoile", "arbre", "fleur", "mer", "maison", "tour", "bateau"]

ARTISTS = {
    # name: (palette, stroke width, background)
    "Berthe Lumière": ([(222, 170, 40), (200, 80, 60), (60, 120, 180), (70, 140, 70)], 2, (245, 238, 220)),
    "Jules Ombre": ([(90, 60, 40), (40, 40, 90), (110, 90, 30), (60, 80, 60)], 4, (200, 190, 170)),
    "Aïcha Marine": ([(20, 110, 160), (10, 60, 120), (240, 200, 60), (30, 150, 130)], 3, (225, 240, 245)),
    "Piet Carré": ([(230, 30, 30), (20, 40, 200), (250, 210, 0), (10, 10, 10)], 5, (250, 250, 250)),
}
TECHNIQUES = ["huile sur toile", "aquarelle", "gravure"]
GENRES = {"paysage": ["soleil", "lune", "etoile", "arbre", "fleur", "mer"],
          "vue urbaine": ["maison", "tour", "soleil", "lune"],
          "marine": ["mer", "bateau", "soleil", "lune", "etoile"],
          "nature morte": ["fleur"]}


@dataclass
class DemoRecord:
    id: str
    title: str
    creator: str
    date: str
    technique: str
    subjects: list[str]  # the true subjects (what is drawn)
    annotated: list[str]  # what the catalogue says (after planted errors)
    image: str
    genre: str


def _draw(draw: ImageDraw.ImageDraw, subject: str, box: tuple[int, int, int], color: tuple[int, int, int],
          width: int, rng: random.Random, background: tuple[int, ...]) -> None:
    """Draw one subject centred at (x, y) with radius r."""
    x, y, r = box
    if subject == "soleil":
        draw.ellipse([x - r // 2, y - r // 2, x + r // 2, y + r // 2], fill=color)
        for k in range(8):
            a = k * math.pi / 4 + rng.uniform(-0.1, 0.1)
            draw.line([x + math.cos(a) * r * 0.65, y + math.sin(a) * r * 0.65,
                       x + math.cos(a) * r, y + math.sin(a) * r], fill=color, width=max(1, width - 1))
    elif subject == "lune":
        draw.ellipse([x - r // 2, y - r // 2, x + r // 2, y + r // 2], fill=color)
        o = r // 3
        draw.ellipse([x - r // 2 + o, y - r // 2 - o // 2, x + r // 2 + o, y + r // 2 - o // 2], fill=background)
    elif subject == "etoile":
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = r if k % 2 == 0 else r * 0.4
            pts.append((x + math.cos(a) * rr, y + math.sin(a) * rr))
        draw.polygon(pts, fill=color)
    elif subject == "arbre":
        draw.rectangle([x - r // 8, y, x + r // 8, y + r], fill=(100, 70, 40))
        draw.ellipse([x - r // 2, y - r // 1.5, x + r // 2, y + r // 6], fill=color)
    elif subject == "fleur":
        for k in range(5):
            a = k * 2 * math.pi / 5
            cx, cy = x + math.cos(a) * r * 0.45, y + math.sin(a) * r * 0.45
            draw.ellipse([cx - r * 0.3, cy - r * 0.3, cx + r * 0.3, cy + r * 0.3], fill=color)
        draw.ellipse([x - r * 0.2, y - r * 0.2, x + r * 0.2, y + r * 0.2], fill=(250, 220, 60))
    elif subject == "mer":
        for row in range(3):
            yy = y + row * max(3, r // 3)
            pts = [(xx, yy + math.sin(xx / 5.0 + row) * 3) for xx in range(max(0, x - 2 * r), min(SIZE, x + 2 * r), 2)]
            if len(pts) > 1:
                draw.line(pts, fill=color, width=width)
    elif subject == "maison":
        draw.rectangle([x - r // 2, y - r // 4, x + r // 2, y + r // 2], fill=color)
        draw.polygon([(x - r * 0.65, y - r // 4), (x + r * 0.65, y - r // 4), (x, y - r * 0.85)], fill=(150, 40, 30))
    elif subject == "tour":
        draw.rectangle([x - r // 5, y - r, x + r // 5, y + r], fill=color)
        for k in range(3):
            draw.rectangle([x - r // 5 + k * (r // 5), y - r - 4, x - r // 5 + k * (r // 5) + 2, y - r], fill=color)
    elif subject == "bateau":
        draw.polygon([(x - r * 0.8, y), (x + r * 0.8, y), (x + r * 0.5, y + r * 0.35), (x - r * 0.5, y + r * 0.35)],
                     fill=(90, 50, 30))
        draw.line([x, y, x, y - r], fill=(60, 40, 20), width=2)
        draw.polygon([(x + 1, y - r), (x + 1, y - 3), (x + r * 0.6, y - 3)], fill=color)


def draw_image(subjects: list[str], artist: str, technique: str, rng: random.Random) -> Image.Image:
    palette, width, background = ARTISTS[artist]
    bg = tuple(max(0, min(255, c + rng.randint(-12, 12))) for c in background)
    img = Image.new("RGB", (SIZE, SIZE), bg)
    draw = ImageDraw.Draw(img)
    # a faint ground line and paper texture make images less trivial than flat shapes
    draw.line([(0, int(SIZE * rng.uniform(0.6, 0.8))), (SIZE, int(SIZE * rng.uniform(0.6, 0.8)))],
              fill=tuple(int(c * 0.85) for c in bg), width=1)
    n = len(subjects)
    for i, s in enumerate(subjects):
        r = rng.randint(12, 20) if n > 1 else rng.randint(18, 26)
        x = int((i + 0.5) * SIZE / n + rng.randint(-6, 6))
        y = rng.randint(int(SIZE * 0.3), int(SIZE * 0.65))
        if s in ("soleil", "lune", "etoile"):
            y = rng.randint(16, 34)
        if s == "mer":
            y = rng.randint(62, 76)
        _draw(draw, s, (x, y, r), palette[rng.randrange(len(palette))], width, rng, bg)
    if technique == "gravure":
        img = img.convert("L").convert("RGB")
    elif technique == "aquarelle":
        img = img.filter(ImageFilter.GaussianBlur(0.8))
    return img


def _title(genre: str, subjects: list[str]) -> str:
    names = [THESAURUS[s][0] for s in subjects]
    if len(names) == 1:
        return f"{genre.capitalize()} : {names[0]}"
    return f"{genre.capitalize()} avec {', '.join(names[:-1])} et {names[-1]}"


def _subject_text(genre: str, subjects: list[str], rng: random.Random) -> str:
    """Garnier-style REPR strings, with the occasional altLabel and accent dropped, as real catalogues have."""
    words = []
    for s in subjects:
        label = THESAURUS[s][0]
        if s in ALT_LABELS and rng.random() < 0.25:
            label = ALT_LABELS[s][0][0]
        words.append(label)
    return f"{genre} ({', '.join(words)})"


def generate(out: Path, n: int = 300, seed: int = 7, n_duplicates: int = 12, noise_rate: float = 0.05,
             silence_rate: float = 0.05) -> dict[str, Path]:
    """Write the collection to ``out``: images/, records.csv, thesaurus.ttl, truth.json. Returns the paths."""
    out = Path(out)
    rng = random.Random(seed)
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    records: list[DemoRecord] = []
    artists = list(ARTISTS)
    for i in range(n):
        genre = rng.choice(list(GENRES))
        pool = GENRES[genre]
        k = 1 if genre == "nature morte" else rng.choice([1, 2, 2, 3])
        subjects = rng.sample(pool, min(k, len(pool)))
        artist = artists[i % len(artists)] if rng.random() < 0.9 else rng.choice(artists)
        technique = rng.choice(TECHNIQUES)
        year = 1850 + (artists.index(artist) * 25) + rng.randint(0, 30)
        rid = f"D{i:04d}"
        img = draw_image(subjects, artist, technique, rng)
        name = f"{rid}.jpg"
        img.save(img_dir / name, quality=90)
        records.append(DemoRecord(rid, _title(genre, subjects), artist, str(year), technique, subjects,
                                  list(subjects), name, genre))

    # planted catalogue errors: swapped subjects (noise) and missing subjects (silence)
    ids = list(range(n))
    rng.shuffle(ids)
    n_noise, n_silence = int(n * noise_rate), int(n * silence_rate)
    noise, silence = [], []
    for i in ids[:n_noise]:
        r = records[i]
        old = rng.choice(r.annotated)
        new = rng.choice([s for s in DRAWABLE if s not in r.subjects])
        r.annotated[r.annotated.index(old)] = new
        noise.append({"record": r.id, "annotated": new, "drawn": old})
    for i in ids[n_noise:n_noise + n_silence]:
        r = records[i]
        if len(r.annotated) < 2:
            continue
        gone = rng.choice(r.annotated)
        r.annotated.remove(gone)
        silence.append({"record": r.id, "missing": gone})

    # planted near-duplicates: a re-encoded/resized/cropped copy catalogued as a new record
    duplicates = []
    for j, i in enumerate(rng.sample(range(n), n_duplicates)):
        src = records[i]
        img = Image.open(img_dir / src.image).convert("RGB")
        kind = ["reencode", "resize", "crop"][j % 3]
        if kind == "resize":
            img = img.resize((SIZE * 2, SIZE * 2), Image.Resampling.BICUBIC)
        elif kind == "crop":
            c = int(SIZE * 0.04)
            img = img.crop((c, c, SIZE - c, SIZE - c)).resize((SIZE, SIZE))
        rid = f"D{n + j:04d}"
        name = f"{rid}.jpg"
        img.save(img_dir / name, quality=60 if kind == "reencode" else 85)
        records.append(DemoRecord(rid, src.title, src.creator, src.date, src.technique, list(src.subjects),
                                  list(src.annotated), name, src.genre))
        duplicates.append({"record": rid, "copy_of": src.id, "transform": kind})

    with open(out / "records.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "titre", "auteur", "date", "technique", "sujet", "image"])
        for r in records:
            w.writerow([r.id, r.title, r.creator, r.date, r.technique,
                        _subject_text(r.genre, r.annotated, rng), r.image])
    (out / "thesaurus.ttl").write_text(thesaurus_turtle(), encoding="utf-8")
    truth = {"noise": noise, "silence": silence, "duplicates": duplicates,
             "subjects": {r.id: r.subjects for r in records}}
    (out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return {"records": out / "records.csv", "images": img_dir, "thesaurus": out / "thesaurus.ttl",
            "truth": out / "truth.json"}


SCHEME = "https://example.org/demo/thesaurus"


def concept_iri(cid: str) -> str:
    return f"{SCHEME}/{cid}"


def thesaurus_turtle() -> str:
    """The demo thesaurus as SKOS Turtle (fr + en labels, broader/narrower, related, altLabels)."""
    lines = ["@prefix skos: <http://www.w3.org/2004/02/skos/core#> .",
             f"<{SCHEME}> a skos:ConceptScheme ; skos:prefLabel \"Thésaurus de démonstration\"@fr, "
             "\"Demo thesaurus\"@en .", ""]
    for cid, (fr, en, broader) in THESAURUS.items():
        parts = [f"<{concept_iri(cid)}> a skos:Concept", f"skos:inScheme <{SCHEME}>",
                 f'skos:prefLabel "{fr}"@fr, "{en}"@en', f'skos:notation "{cid}"']
        if broader:
            parts.append(f"skos:broader <{concept_iri(broader)}>")
        else:
            parts.append(f"skos:topConceptOf <{SCHEME}>")
        for label, lang in ALT_LABELS.get(cid, []):
            parts.append(f'skos:altLabel "{label}"@{lang}')
        for a, b in RELATED:
            if a == cid:
                parts.append(f"skos:related <{concept_iri(b)}>")
        lines.append(" ;\n    ".join(parts) + " .")
    return "\n".join(lines) + "\n"
