"""The REST API under /api (OpenAPI at /openapi.json): the same library calls as the pages, as JSON."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from iconoscope.serve.deps import record_decision, state, writer
from iconoscope.serve.schemas import (
    IRI_PATTERN,
    ConceptRef,
    DecisionIn,
    DecisionOut,
    ErrorOut,
    Prediction,
    RecentDecision,
    RecordOut,
    ReviewQueueOut,
    SearchOut,
    SimilarOut,
)

router = APIRouter(prefix="/api", tags=["api"])

_ERR = {400: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}}
_WRITE_ERR = {**_ERR, 401: {"model": ErrorOut}, 403: {"model": ErrorOut}}
_NOT_FOUND = {404: {"model": ErrorOut, "description": "no such record"}, 422: {"model": ErrorOut}}

Lang = Query(None, max_length=16, pattern=r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$",
             description="preferred label language (then the collection's)")


@router.get("/search", response_model=SearchOut, responses=_ERR, summary="Search records")
def search(request: Request,
           q: str = Query("", max_length=500, description="text in titles, creators, subject text, concept labels"),
           concept: str | None = Query(None, max_length=2000, pattern=IRI_PATTERN,
                                        description="a concept IRI (narrower ones included)"),
           min_score: float | None = Query(None, ge=0, le=1, description="lowest score of a prediction matching "
                                           "the text or concept (default 0.5)"),
           creator: str | None = Query(None, max_length=500), source: str | None = Query(None, max_length=200),
           decade: int | None = Query(None, ge=0, le=9990), limit: int = Query(24, ge=1, le=200),
           offset: int = Query(0, ge=0, le=1_000_000), lang: str | None = Lang) -> SearchOut:
    """Records matching a text and/or a concept, best first, with facets by creator, decade and source."""
    return state(request).catalog.search(q=q, concept=concept, min_score=min_score, creator=creator, source=source,
                                         decade=decade, limit=limit, offset=offset, lang=lang)


@router.get("/concepts", response_model=list[ConceptRef], responses=_ERR, summary="Find concepts by label")
def concepts(request: Request, q: str = Query(..., min_length=1, max_length=200),
             limit: int = Query(20, ge=1, le=100), lang: str | None = Lang) -> list[ConceptRef]:
    return state(request).catalog.concepts(q, limit=limit, lang=lang)


@router.get("/records/{record_id:path}/predictions", response_model=list[Prediction], responses=_NOT_FOUND,
            summary="Predictions on a record's images")
def predictions(request: Request, record_id: str, lang: str | None = Lang) -> list[Prediction]:
    """Predicted concepts (and field values) from the latest run of each classifier, best first."""
    return state(request).catalog.predictions(record_id, lang)


@router.get("/records/{record_id:path}/similar", response_model=SimilarOut, responses=_NOT_FOUND,
            summary="Visually similar records")
def similar(request: Request, record_id: str, k: int = Query(10, ge=1, le=100)) -> SimilarOut:
    return state(request).catalog.similar(record_id, k)


@router.get("/records/{record_id:path}", response_model=RecordOut, responses=_NOT_FOUND, summary="One record")
def record(request: Request, record_id: str, lang: str | None = Lang) -> RecordOut:
    """Metadata, curated subjects (from the sources or accepted by curators) and images of a record."""
    return state(request).catalog.record(record_id, lang)


@router.get("/review", response_model=ReviewQueueOut, responses=_ERR, summary="The review queue")
def review_queue(request: Request,
                 kind: str = Query("suggestions", pattern="^(suggestions|silence|noise)$",
                                   description="suggestions: undecided predictions; silence: confident but not "
                                               "curated; noise: curated but unlikely"),
                 classifier: str | None = Query(None, max_length=200),
                 category: str | None = Query(None, max_length=2000, pattern=IRI_PATTERN,
                                          description="a category concept IRI"),
                 min_score: float = Query(0.0, ge=0, le=1), limit: int = Query(50, ge=1, le=500),
                 offset: int = Query(0, ge=0, le=1_000_000), lang: str | None = Lang) -> ReviewQueueOut:
    return state(request).catalog.review_queue(kind=kind, classifier=classifier, category=category,
                                               min_score=min_score, limit=limit, offset=offset, lang=lang)


@router.get("/review/recent", response_model=list[RecentDecision], responses=_ERR, summary="Latest decisions")
def recent(request: Request, limit: int = Query(20, ge=1, le=500), lang: str | None = Lang) -> list[RecentDecision]:
    return state(request).catalog.recent_decisions(limit, lang)


@router.post("/review", response_model=DecisionOut, responses=_WRITE_ERR, summary="Accept or reject a prediction",
             openapi_extra={"security": [{"bearer": []}]})
def review_decide(request: Request, body: DecisionIn) -> DecisionOut:
    """Write a curator's decision into the review graph. Accepting adds the curated subject the next ``labels``
    run reads. Needs ``Authorization: Bearer TOKEN`` (or the web app's session and CSRF token)."""
    user = writer(request)
    return record_decision(request, body.annotation, body.decision, user)
