"""IIIF: Presentation 3 manifests per record, and the Image API 3.0 over the collection's images.

Open to any origin (CORS ``*``), as IIIF viewers usually run on another site.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from iconoscope.serve.catalog import url_id
from iconoscope.serve.deps import state
from iconoscope.serve.iiif import EXTENSION_CONTEXT, build_manifest
from iconoscope.serve.iiif_image import parse_request

router = APIRouter(prefix="/iiif", include_in_schema=False)

PRESENTATION_MEDIA = 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'
IMAGE_MEDIA = 'application/ld+json;profile="http://iiif.io/api/image/3/context.json"'


def _json(doc: object, media: str, max_age: int = 60) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False, indent=1), media_type=media,
                    headers={"cache-control": f"public, max-age={max_age}"})


@router.get("/context.json")
def context() -> Response:
    return _json(EXTENSION_CONTEXT, "application/ld+json", max_age=86400)


@router.get("/image/{image_id:path}/info.json")
def image_info(request: Request, image_id: str) -> Response:
    st = state(request)
    _iri, location, service, _rec = st.catalog.image(image_id)
    loc = st.images.location_of(location, service)
    sid = f"{st.base_url(request)}/iiif/image/{url_id(image_id)}"
    return _json(st.images.info(sid, loc), IMAGE_MEDIA, max_age=3600)


@router.get("/image/{image_id:path}/{region}/{size}/{rotation}/{quality_format}")
def image(request: Request, image_id: str, region: str, size: str, rotation: str, quality_format: str) -> Response:
    st = state(request)
    req = parse_request(region, size, rotation, quality_format)
    _iri, location, service, _rec = st.catalog.image(image_id)
    data, media = st.images.render(st.images.location_of(location, service), req)
    return Response(data, media_type=media, headers={"cache-control": "public, max-age=86400"})


@router.get("/image/{image_id:path}")
def image_base(request: Request, image_id: str) -> Response:
    """The image's base URI redirects to its info.json (Image API 3.0, section 2.2)."""
    state(request).catalog.image(image_id)
    return RedirectResponse(f"/iiif/image/{url_id(image_id)}/info.json", status_code=303)


@router.get("/{record_id:path}/manifest")
def manifest(request: Request, record_id: str,
             lang: str | None = Query(None, pattern=r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")) -> Response:
    st = state(request)
    doc = build_manifest(st.catalog, st.images, record_id, st.base_url(request), lang)
    return _json(doc, PRESENTATION_MEDIA)
