"""IIIF Presentation 3 manifests: one per record, with its predictions as Web Annotations.

The predictions keep the graph's shape (docs/graph-model.md): motivation ``classifying``, the concept as the body
(a SpecificResource whose source is the concept IRI, with its label), the score, and the run as the generator,
so a IIIF viewer (Mirador, Universal Viewer) shows what the models said next to the image. ``score``, ``field`` and
``reviewStatus`` are defined by a small JSON-LD context this server publishes at ``/iiif/context.json``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from iconoscope.graph.vocab import ICO, SKOS, XSD
from iconoscope.serve.catalog import Catalog, url_id
from iconoscope.serve.errors import NotFound
from iconoscope.serve.iiif_image import ImageSource

PRESENTATION_CONTEXT = "http://iiif.io/api/presentation/3/context.json"
EXTENSION_CONTEXT: dict[str, Any] = {
    "@context": {
        "ico": ICO,
        "score": {"@id": "ico:score", "@type": XSD + "float"},
        "reviewStatus": {"@id": "ico:reviewStatus"},
        "field": {"@id": "ico:field"},
        "Concept": SKOS + "Concept",
    }
}


def _lang_map(value: str, lang: str | None) -> dict[str, list[str]]:
    return {lang or "none": [value]}


def build_manifest(catalog: Catalog, images: ImageSource, record_id: str, base_url: str,
                   lang: str | None = None) -> dict[str, Any]:
    """The manifest of a record; NotFound when the record does not exist or has no readable image."""
    base = base_url.rstrip("/")
    rec = catalog.record(record_id, lang)
    preds = catalog.predictions(record_id, lang)
    rid = url_id(record_id)
    mid = f"{base}/iiif/{rid}/manifest"
    title_lang = next((f.lang for f in rec.fields if f.label == "Title"), None)

    grouped: OrderedDict[str, list[tuple[str, str | None]]] = OrderedDict()
    for f in rec.fields:
        if f.label != "Title":
            grouped.setdefault(f.label, []).append((f.value, f.lang))
    metadata = []
    for label, values in grouped.items():
        by_lang: dict[str, list[str]] = {}
        for v, lg in values:
            by_lang.setdefault(lg or "none", []).append(v)
        metadata.append({"label": {"en": [label]}, "value": by_lang})
    if rec.subjects:
        metadata.append({"label": {"en": ["Subjects"]}, "value": {"none": [s.label for s in rec.subjects]}})

    canvases = []
    for n, img in enumerate(rec.images, start=1):
        _iri, location, service, _rec = catalog.image(img.id)
        try:
            loc = images.location_of(location, service)
            w, h = images.size(loc)
        except NotFound:
            continue   # an unreadable image gets no canvas; the others still do
        cid = f"{mid.rsplit('/', 1)[0]}/canvas/{n}"
        svc = f"{base}/iiif/image/{url_id(img.id)}"
        service_ref = [{"id": svc, "type": "ImageService3", "profile": "level0"}]
        canvas: dict[str, Any] = {
            "id": cid, "type": "Canvas", "label": {"none": [img.id]}, "width": w, "height": h,
            "thumbnail": [{"id": f"{svc}/full/!300,300/0/default.jpg", "type": "Image", "format": "image/jpeg",
                           "service": service_ref}],
            "items": [{
                "id": f"{cid}/page", "type": "AnnotationPage",
                "items": [{"id": f"{cid}/painting", "type": "Annotation", "motivation": "painting",
                           "body": {"id": f"{svc}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
                                    "width": w, "height": h, "service": service_ref},
                           "target": cid}]}],
        }
        annos = [_prediction(p, cid, title_lang or lang) for p in preds if p.image == img.id]
        if annos:
            canvas["annotations"] = [{"id": f"{cid}/predictions", "type": "AnnotationPage",
                                      "label": {"en": ["Predicted subjects"]}, "items": annos}]
        canvases.append(canvas)
    if not canvases:
        raise NotFound(f"record {record_id!r}: no readable image, so no IIIF manifest")

    return {
        "@context": [f"{base}/iiif/context.json", PRESENTATION_CONTEXT],
        "id": mid, "type": "Manifest", "label": _lang_map(rec.title, title_lang),
        "metadata": metadata,
        "summary": {"en": [f"{len(preds)} predicted subject(s) from the latest model runs"]},
        "thumbnail": canvases[0]["thumbnail"],
        "homepage": [{"id": f"{base}/record/{rid}", "type": "Text", "label": {"en": ["Record page"]},
                      "format": "text/html"}],
        "seeAlso": [{"id": f"{base}/api/records/{rid}", "type": "Dataset", "label": {"en": ["Record (JSON)"]},
                     "format": "application/json"}],
        "items": canvases,
    }


def _prediction(p: Any, canvas_id: str, lang: str | None) -> dict[str, Any]:
    if p.concept is not None:
        body: dict[str, Any] = {"type": "SpecificResource", "purpose": "classifying",
                                "source": {"id": p.concept, "type": "Concept", "label": {lang or "none": [p.label]}}}
    else:
        body = {"type": "TextualBody", "value": p.label, "purpose": "describing"}
    anno: dict[str, Any] = {
        "id": p.annotation, "type": "Annotation", "motivation": "classifying", "body": body, "target": canvas_id,
        "score": round(p.score, 6),
        "generator": {"id": p.run, "type": "Software",
                      "name": f"{p.classifier} (model version {p.model_version or '?'})"},
    }
    if p.field:
        anno["field"] = p.field
    if p.status:
        anno["reviewStatus"] = p.status
    return anno
