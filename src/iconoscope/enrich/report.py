"""The audit as a self-contained HTML page: thumbnail, record, subject text, concept, score and threshold, worst first.

Thumbnails are embedded (base64 JPEG, 128 px), so the page can be mailed or archived without the workspace; an image
that cannot be read shows its reason instead of breaking the page.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

from iconoscope.enrich.audit import AuditItem
from iconoscope.graph import queries
from iconoscope.graph.queries import values_iris

THUMB = 128


def thumbnails(ws: Any, image_ids: Sequence[str]) -> dict[str, str]:
    """image id -> data: URI of a small JPEG, or an error text (no image / unreadable)."""
    from iconoscope.images import ImageError, iiif_image_url, load_image

    ids = list(dict.fromkeys(i for i in image_ids if i))
    out: dict[str, str] = {}
    for k in range(0, len(ids), 500):
        chunk = ids[k:k + 500]
        res = ws.store.select(queries.load("enrich_image_locations",
                                           images=values_iris([ws.iris.image(i) for i in chunk])))
        for row in res.dicts():
            img = ws.iris.id_of(str(row["image"]), "image")
            loc = row.get("location") or (iiif_image_url(str(row["service"]), THUMB * 2) if row.get("service")
                                          else None)
            if loc is None:
                out[img] = "no image location"
                continue
            try:
                im = load_image(str(loc), cache_dir=ws.cache_dir("images"), min_side=THUMB)
            except ImageError as e:
                out[img] = f"unreadable: {e.reason}"
                continue
            im.thumbnail((THUMB, THUMB))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80)
            out[img] = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return out


def audit_html(ws: Any, name: str, kind: str, items: Sequence[AuditItem], title: str | None = None) -> str:
    thumbs = thumbnails(ws, [i.image for i in items if i.image])
    e = html.escape
    what = {"noise": "annotated, but the model disagrees (possible wrong annotation)",
            "silence": "not annotated, but the model is confident (possible missing annotation)"}[kind]
    rows = []
    for n, it in enumerate(items, start=1):
        t = thumbs.get(it.image or "", "no image")
        cell = f'<img src="{t}" alt="{e(it.image or "")}">' if t.startswith("data:") else f"<em>{e(t)}</em>"
        score = "below the run's floor" if it.score is None else f"{it.score:.3f}"
        rows.append(f"<tr><td>{n}</td><td>{cell}</td><td><b>{e(it.record)}</b><br><small>{e(it.image or '')}"
                    f"</small></td><td>{e(it.subject_text or '')}</td><td><a href=\"{e(it.concept)}\">"
                    f"{e(it.label)}</a></td><td>{score}</td><td>{it.threshold:.3f}</td></tr>")
    head = e(title or f"{kind} - {name}")
    run = e(items[0].run) if items else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{head}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #ddd; padding: 6px 10px; text-align: left;
vertical-align: top; }} img {{ max-width: {THUMB}px; max-height: {THUMB}px; }} small {{ color: #666; }}
</style></head><body>
<h1>{head}</h1>
<p>{e(what)}. Classifier <code>{e(name)}</code>, run <code>{run}</code>; {len(items)} item(s), worst first.
Thresholds are per category, from cross-validated (out-of-fold) scores.</p>
<table><thead><tr><th>#</th><th>image</th><th>record</th><th>subject text</th><th>concept</th><th>score</th>
<th>threshold</th></tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
