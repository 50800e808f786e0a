"""The REST API's data types (pydantic): the OpenAPI spec is generated from them, schemathesis checks responses
against them, and the HTML templates render the very same objects, so the web pages and the API cannot drift apart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# An absolute IRI (RFC 3987 characters; others percent-encoded): the API documents IRI parameters with it, so
# clients (and schemathesis) know what is valid; the library still checks each value with the store's parser.
IRI_PATTERN = (r"^[A-Za-z][A-Za-z0-9+.\-]*:(?:[!$&-;=?-Z_a-z~\u00A0-\uD7FF\uF900-\uFDCF\uFDF0-\uFFEF]"
               r"|%[0-9A-Fa-f]{2})+$")


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer of the API: a message naming the parameter, record or problem."""

    error: str


class ConceptRef(BaseModel):
    iri: str
    label: str
    notation: str | None = None


class ConceptScore(BaseModel):
    iri: str
    label: str
    score: float


class RecordSummary(BaseModel):
    id: str
    iri: str
    title: str
    creator: str | None = None
    date: str | None = None
    image: str | None = Field(None, description="id of the record's first image")
    thumbnail: str | None = Field(None, description="URL of a small rendition (IIIF Image API)")
    score: float | None = Field(None, description="best prediction score that matched the query")
    match: Literal["curated", "predicted", "all"] = "all"
    concepts: list[ConceptScore] = Field(default_factory=list, description="best predicted concepts")


class FacetValue(BaseModel):
    value: str
    count: int
    selected: bool = False


class SearchOut(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[RecordSummary]
    facets: dict[str, list[FacetValue]]


class FieldValue(BaseModel):
    name: str
    label: str
    value: str
    lang: str | None = None


class Subject(BaseModel):
    iri: str
    label: str
    notation: str | None = None
    origin: Literal["source", "review"] = Field(description="a source graph, or accepted by a curator")


class ImageOut(BaseModel):
    id: str
    iri: str
    url: str | None = Field(None, description="the image's URL when it is on the web (local paths are not shown)")
    iiif_service: str | None = None
    info: str = Field(description="IIIF Image API info.json served here")
    thumbnail: str


class Prediction(BaseModel):
    annotation: str
    image: str
    concept: str | None = Field(None, description="the predicted concept (None for a predicted field value)")
    label: str
    field: str | None = None
    score: float
    run: str
    classifier: str
    model_version: str | None = None
    status: Literal["accepted", "rejected"] | None = None
    curated: bool = False


class RecordOut(BaseModel):
    id: str
    iri: str
    title: str
    fields: list[FieldValue]
    subjects: list[Subject]
    images: list[ImageOut]
    manifest: str


class SimilarItem(BaseModel):
    id: str
    title: str
    score: float | None = None
    thumbnail: str | None = None


class SimilarOut(BaseModel):
    available: bool = Field(description="False when the exploration stage has no index for this workspace")
    message: str | None = None
    items: list[SimilarItem]


class ReviewItem(BaseModel):
    annotation: str
    record: str
    record_title: str
    image: str
    thumbnail: str
    concept: str
    label: str
    score: float
    threshold: float
    classifier: str


class ReviewQueueOut(BaseModel):
    kind: Literal["suggestions", "silence", "noise"]
    classifier: str | None
    category: str | None
    offset: int
    limit: int
    has_more: bool
    items: list[ReviewItem]
    method: Literal["audit", "graph"] = Field(
        "graph", description="audit: the enrichment stage's noise/silence lists (out-of-fold thresholds); graph: "
                             "this server's own reading of the run graphs")


class DecisionIn(BaseModel):
    annotation: str = Field(max_length=2000, pattern=IRI_PATTERN,
                            description="IRI of the prediction (an oa:Annotation of a run)")
    decision: Literal["accepted", "rejected"]


class DecisionOut(BaseModel):
    annotation: str
    record: str
    concept: str
    status: Literal["accepted", "rejected"]
    by: str
    at: str


class RecentDecision(BaseModel):
    annotation: str
    status: str
    by: str | None = None
    at: str | None = None
    record: str | None = None
    concept: str | None = None
    label: str | None = None
