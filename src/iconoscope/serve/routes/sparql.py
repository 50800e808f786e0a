"""The SPARQL 1.1 Protocol endpoint at /sparql (https://www.w3.org/TR/sparql11-protocol/).

Queries by GET (``?query=``), by POST as a form or as ``application/sparql-query``; updates only by POST (form
``update=`` or ``application/sparql-update``) and only with the write token. Results in JSON, XML, CSV or TSV,
graphs in Turtle, N-Triples, RDF/XML or JSON-LD, chosen by the Accept header or ``?format=``. The dataset is the
union of the workspace's named graphs. ``default-graph-uri``/``named-graph-uri`` are refused with a 400 (use
FROM / GRAPH in the query instead), as the protocol allows.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from iconoscope.graph.vocab import PREFIXES
from iconoscope.serve.deps import render, state, writer
from iconoscope.serve.errors import BadRequest, TooLarge, UnsupportedMediaType
from iconoscope.serve.sparql_exec import serialize_graph
from iconoscope.serve.sparql_results import negotiate, serialize_bindings, serialize_boolean

router = APIRouter(include_in_schema=False)

MAX_BODY = 1 << 20
EXAMPLES = [
    ("Records and their curated subjects",
     "SELECT ?record ?title ?subject WHERE {\n  ?record a ico:Record ; dcterms:title ?title .\n"
     "  OPTIONAL { ?record dcterms:subject ?subject }\n} LIMIT 50"),
    ("Best predictions",
     "SELECT ?image ?concept ?score WHERE {\n  ?a a oa:Annotation ; oa:hasTarget ?image ; oa:hasBody ?concept ;\n"
     "     ico:score ?score .\n} ORDER BY DESC(?score) LIMIT 50"),
    ("Curators' decisions",
     "SELECT ?annotation ?status ?who ?when WHERE {\n  ?annotation ico:reviewStatus ?status ;\n"
     "     prov:wasAttributedTo ?who ; dcterms:modified ?when .\n} ORDER BY DESC(?when)"),
    ("Named graphs", "SELECT ?g (COUNT(*) AS ?triples) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"),
]


def _prologue() -> str:
    return "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in PREFIXES.items())


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge(f"request body larger than {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge(f"request body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name, [])
    if len(values) > 1:
        raise BadRequest(f"more than one '{name}' parameter")
    return values[0] if values else None


def _fmt(params: dict[str, list[str]]) -> str | None:
    """``format``/``output`` (clients such as SPARQLWrapper send both, sometimes twice): the first one given."""
    values = params.get("format", []) + params.get("output", [])
    return values[0] if values else None


def _refuse_dataset(params: dict[str, list[str]]) -> None:
    for name in ("default-graph-uri", "named-graph-uri", "using-graph-uri", "using-named-graph-uri"):
        if params.get(name):
            raise BadRequest(f"'{name}' is not supported here: the dataset is the union of all graphs; "
                             "use FROM or GRAPH in the query")


async def _answer_query(request: Request, text: str, fmt: str | None) -> Response:
    st = state(request)
    if not text.strip():
        raise BadRequest("empty query")
    result = await run_in_threadpool(st.runner.run, text)
    accept = request.headers.get("accept")
    if result.kind == "graph":
        name, media = negotiate("graph", accept, fmt)
        body = await run_in_threadpool(serialize_graph, result, name, PREFIXES)
    elif result.kind == "boolean":
        name, media = negotiate("boolean", accept, fmt)
        body = serialize_boolean(result.boolean, name)
    else:
        name, media = negotiate("bindings", accept, fmt)
        body = await run_in_threadpool(serialize_bindings, result.variables, result.rows, name)
    return Response(body, media_type=media, headers={"vary": "Accept", "cache-control": "no-store"})


async def _answer_update(request: Request, text: str, csrf: str | None = None) -> Response:
    st = state(request)
    writer(request, csrf)
    if not text.strip():
        raise BadRequest("empty update")
    try:
        await run_in_threadpool(st.runner.update, text)
    finally:
        st.catalog.invalidate()
    return Response(status_code=204)


@router.get("/sparql")
async def sparql_get(request: Request) -> Response:
    params = parse_qs(request.url.query, keep_blank_values=True)
    _refuse_dataset(params)
    if params.get("update"):
        raise BadRequest("SPARQL updates must be sent by POST")
    query = _one(params, "query")
    fmt = _fmt(params)
    if query is None:
        if "text/html" in request.headers.get("accept", ""):
            return render(request, "sparql.html", examples=EXAMPLES, prologue=_prologue())
        raise BadRequest("missing 'query' parameter")
    return await _answer_query(request, query, fmt)


@router.post("/sparql")
async def sparql_post(request: Request) -> Response:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await _body(request)
    query_params = parse_qs(request.url.query, keep_blank_values=True)
    _refuse_dataset(query_params)
    fmt = _fmt(query_params)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8") from None
    if ctype == "application/sparql-query":
        return await _answer_query(request, text, fmt)
    if ctype == "application/sparql-update":
        return await _answer_update(request, text)
    if ctype == "application/x-www-form-urlencoded":
        form = parse_qs(text, keep_blank_values=True)
        _refuse_dataset(form)
        query, update = _one(form, "query"), _one(form, "update")
        fmt = fmt or _fmt(form)
        if query is not None and update is not None:
            raise BadRequest("send either 'query' or 'update', not both")
        if update is not None:
            return await _answer_update(request, update, _one(form, "csrf_token"))
        if query is None:
            raise BadRequest("missing 'query' (or 'update') form field")
        return await _answer_query(request, query, fmt)
    raise UnsupportedMediaType(f"content type {ctype or '(none)'!r} is not accepted: use application/sparql-query, "
                               "application/sparql-update or application/x-www-form-urlencoded")
