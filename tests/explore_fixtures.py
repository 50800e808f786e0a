"""A small explorable workspace for the exploration tests: drawn images with planted copies, records, embeddings."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SPEC = "builtin:smallcnn"
N_BASES = 10


def drawn_image(seed: int, size: tuple[int, int] = (96, 128)) -> Image.Image:
    """A 'sheet': paper ground with a few coloured shapes; different seeds give clearly different pictures."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, (240, 235, 220))
    d = ImageDraw.Draw(img)
    w, h = size
    for _ in range(6):
        x0, y0 = rng.integers(0, w - 20), rng.integers(0, h - 20)
        x1, y1 = x0 + rng.integers(15, w // 2), y0 + rng.integers(15, h // 2)
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            d.ellipse([int(x0), int(y0), int(x1), int(y1)], fill=color)
        else:
            d.rectangle([int(x0), int(y0), int(x1), int(y1)], fill=color)
    return img


def reencoded(img: Image.Image, scale: float = 0.7, quality: int = 30) -> Image.Image:
    small = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def watermarked(img: Image.Image) -> Image.Image:
    out = img.copy()
    d = ImageDraw.Draw(out)
    d.text((5, img.height // 2), "(c) museum", fill=(255, 255, 255), font=ImageFont.load_default(size=12))
    return out


def write_graph(ws, rows: list[tuple[str, str, str]], source: str = "test") -> None:
    """rows: (record id, image id, location): the ingest stage's shapes (docs/graph-model.md)."""
    from iconoscope.graph.terms import nt_iri, nt_literal, triple
    from iconoscope.graph.vocab import DCTERMS, ICO, RDF_TYPE

    a = nt_iri(RDF_TYPE)
    lines = []
    for rec, img, loc in rows:
        r, i = nt_iri(ws.iris.record(rec)), nt_iri(ws.iris.image(img))
        lines += [triple(r, a, nt_iri(ICO + "Record")), triple(r, nt_iri(DCTERMS + "identifier"), nt_literal(rec)),
                  triple(r, nt_iri(ICO + "source"), nt_literal(source)), triple(r, nt_iri(ICO + "image"), i),
                  triple(i, a, nt_iri(ICO + "Image")), triple(i, nt_iri(ICO + "location"), nt_literal(loc)),
                  triple(i, nt_iri(ICO + "record"), r)]
    ws.store.replace_graph(ws.iris.source_graph(source), lines)


def build(ws, folder: Path) -> dict[str, list[str]]:
    """Images: 10 bases b0..b9, each with a re-encoded copy (bK-r) and a watermarked one (bK-w); record 'multi' has
    two images (m-1 = b0 re-encoded differently, m-2 = a new picture). Returns {"families": [[ids]], ...}."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, families = [], []
    for k in range(N_BASES):
        base = drawn_image(100 + k)
        fam = []
        for suffix, img in (("", base), ("-r", reencoded(base)), ("-w", watermarked(base))):
            iid = f"b{k}{suffix}"
            path = folder / f"{iid}.jpg"
            img.save(path, "JPEG", quality=92)
            rows.append((iid, iid, str(path)))
            fam.append(iid)
        families.append(fam)
    m1, m2 = folder / "m-1.jpg", folder / "m-2.jpg"
    reencoded(drawn_image(100), scale=0.8, quality=50).save(m1, "JPEG", quality=90)
    drawn_image(999).save(m2, "JPEG", quality=92)
    rows += [("multi", "m-1", str(m1)), ("multi", "m-2", str(m2))]
    write_graph(ws, rows)
    from iconoscope.learn.embed import embed_images

    rep = embed_images(ws, SPEC, workers=0, show_progress=False)
    assert rep.failed == 0, rep.failures
    return {"families": families, "images": [r[1] for r in rows]}
