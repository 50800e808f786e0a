"""The curator's pages: search, item, review queue, map, model cards, sign-in and the API overview.

Pages render server-side (Jinja2, autoescaped) and work without JavaScript; ``static/app.js`` only adds keyboard
review, in-place decisions and map previews. Sections fed by other stages (similar items, duplicates, the map)
are hidden with a short note when that stage or its data is absent.
"""

from __future__ import annotations

import json
import math
import mimetypes
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from iconoscope.serve import integrations
from iconoscope.serve.catalog import DEFAULT_THRESHOLD, REVIEW_KINDS
from iconoscope.serve.deps import record_decision, render, state, writer
from iconoscope.serve.errors import Forbidden, NotFound
from iconoscope.serve.review import clean_user
from iconoscope.serve.security import SESSION_COOKIE, safe_next

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 24
LANG = r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$"
MODEL_FILES = {".png", ".jpg", ".jpeg", ".svg", ".html", ".json", ".csv", ".md", ".txt"}
ACTIVE_CONTENT = {".html", ".svg"}


def _url(path: str, params: dict[str, Any]) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(clean)}" if clean else path


@router.get("/")
def search_page(request: Request, q: str = Query("", max_length=500),
                concept: str | None = Query(None, max_length=2000),
                min_score: float | None = Query(None, ge=0, le=1), creator: str | None = Query(None, max_length=500),
                source: str | None = Query(None, max_length=200), decade: int | None = Query(None, ge=0, le=9990),
                page: int = Query(1, ge=1, le=100_000), lang: str | None = Query(None, pattern=LANG)) -> Response:
    st = state(request)
    result = st.catalog.search(q=q, concept=concept or None, min_score=min_score, creator=creator, source=source,
                               decade=decade, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, lang=lang)
    params = {"q": q, "concept": concept, "min_score": min_score, "creator": creator, "source": source,
              "decade": decade, "lang": lang}
    effective = min_score if min_score is not None else DEFAULT_THRESHOLD
    facet_links = {
        name: [(v, _url("/", {**params, name: None if v.selected else v.value})) for v in values]
        for name, values in result.facets.items()}
    pages = max(1, math.ceil(result.total / PAGE_SIZE))
    concept_label = st.catalog.labels([concept], lang).get(concept) if concept else None
    return render(request, "search.html", result=result, params=params, effective_min=effective,
                  facet_links=facet_links, page=page, pages=pages, concept_label=concept_label,
                  prev_url=_url("/", {**params, "page": page - 1}) if page > 1 else None,
                  next_url=_url("/", {**params, "page": page + 1}) if page < pages else None,
                  clear_concept=_url("/", {**params, "concept": None}))


@router.get("/record/{record_id:path}")
def record_page(request: Request, record_id: str, lang: str | None = Query(None, pattern=LANG)) -> Response:
    st = state(request)
    rec = st.catalog.record(record_id, lang)
    preds = st.catalog.predictions(record_id, lang)
    similar = st.catalog.similar(record_id, 8)
    duplicates = st.catalog.duplicates(record_id)
    return render(request, "record.html", rec=rec, preds=preds, similar=similar, duplicates=duplicates,
                  here=request.url.path)


@router.get("/review")
def review_page(request: Request, kind: str = Query("suggestions", pattern="^(suggestions|silence|noise)$"),
                classifier: str | None = Query(None, max_length=200),
                category: str | None = Query(None, max_length=2000),
                min_score: float = Query(0.0, ge=0, le=1), page: int = Query(1, ge=1, le=100_000),
                lang: str | None = Query(None, pattern=LANG)) -> Response:
    st = state(request)
    classifier = classifier or None
    category = category or None
    size = 30
    queue = st.catalog.review_queue(kind=kind, classifier=classifier, category=category, min_score=min_score,
                                    limit=size, offset=(page - 1) * size, lang=lang)
    runs = st.catalog.runs()
    cats: list[str] = []
    for name, cfg in st.ws.config.classifiers.items():
        if classifier in (None, name):
            cats += [c for c in cfg.categories if c not in cats]
    cat_labels = st.catalog.labels(cats, lang)
    params = {"kind": kind, "classifier": classifier, "category": category,
              "min_score": min_score or None, "lang": lang}
    here = _url("/review", {**params, "page": page if page > 1 else None})
    return render(request, "review.html", queue=queue, runs=runs, kinds=REVIEW_KINDS, params=params,
                  categories=sorted(cat_labels.items(), key=lambda kv: kv[1].lower()), page=page, here=here,
                  kind_urls={k: _url("/review", {**params, "kind": k}) for k in REVIEW_KINDS},
                  prev_url=_url("/review", {**params, "page": page - 1}) if page > 1 else None,
                  next_url=_url("/review", {**params, "page": page + 1}) if queue.has_more else None,
                  recent=st.catalog.recent_decisions(12, lang))


@router.post("/review/decide")
def review_decide_form(request: Request, annotation: str = Form(..., max_length=2000),
                       decision: str = Form(..., max_length=20), csrf_token: str = Form("", max_length=200),
                       next: str = Form("/review", max_length=4000)) -> Response:
    """The no-JavaScript path of the review buttons: a form post, then back to where the curator was."""
    user = writer(request, csrf_token)
    record_decision(request, annotation, decision, user)
    return RedirectResponse(safe_next(next, "/review"), status_code=303)


@router.get("/map")
def map_page(request: Request) -> Response:
    st = state(request)
    points = integrations.load_map(st.ws)
    layout = None
    if points:
        xs = [p["x"] for p in points]
        ys = [p["y"] for p in points]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        sx = 960 / ((x1 - x0) or 1.0)
        sy = 640 / ((y1 - y0) or 1.0)
        clusters = sorted({str(p["cluster"]) for p in points if p["cluster"] is not None})
        index = {c: i for i, c in enumerate(clusters)}
        ids = [p["record"] for p in points if p["record"]]
        titles = {s.id: s.title for s in st.catalog.summaries([st.ws.iris.record(r) for r in ids[:5000]])}
        layout = {
            "points": [{"x": round(20 + (p["x"] - x0) * sx, 1), "y": round(20 + (y1 - p["y"]) * sy, 1),
                        "record": p["record"], "image": p["image"], "title": titles.get(p["record"], p["record"]),
                        "cls": f"c{index[str(p['cluster'])] % 12}" if p["cluster"] is not None else "cn",
                        "cluster": p["cluster"]} for p in points],
            "clusters": [(c, f"c{i % 12}") for i, c in enumerate(clusters)],
        }
    return render(request, "map.html", layout=layout)


def _models_root(ws: Any) -> Path:
    return Path(ws.root) / "models"


def _model_names(ws: Any) -> list[str]:
    root = _models_root(ws)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "model_card.json").is_file())


def _model_files(ws: Any, name: str) -> dict[str, Path]:
    """Files a model card may show: its own folder and its evaluation reports (reports/NAME, reports/eval-NAME,
    reports/eval/NAME), flat, known suffixes only."""
    out: dict[str, Path] = {}
    reports = Path(ws.root) / "reports"
    for folder in (_models_root(ws) / name, reports / name, reports / f"eval-{name}", reports / "eval" / name):
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                if p.is_file() and p.suffix.lower() in MODEL_FILES and p.name not in out:
                    out[p.name] = p
    return out


def _load_card(ws: Any, name: str) -> dict[str, Any]:
    if name not in _model_names(ws):
        raise NotFound(f"model {name!r}: no such model card (train it with 'iconoscope train {name}')")
    path = _models_root(ws) / name / "model_card.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise NotFound(f"{path}: unreadable model card ({e})") from None
    return card if isinstance(card, dict) else {"card": card}


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, default=str)[:300]
    return "" if v is None else str(v)


def _scalar(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool)) or v is None


def card_sections(card: dict[str, Any], prefix: str = "", depth: int = 0) -> list[dict[str, Any]]:
    """A model card (any JSON) as page sections: facts (scalars), tables (dicts of scalars, dicts of dicts,
    lists of records) and nested sections; whatever else, as JSON. Generic, so every head's card renders."""
    facts = [(k, _cell(v)) for k, v in card.items() if _scalar(v)]
    sections: list[dict[str, Any]] = [{"title": prefix, "facts": facts}] if facts else []
    for k, v in card.items():
        title = f"{prefix} · {k}" if prefix else k
        if _scalar(v):
            continue
        if isinstance(v, dict) and v and all(_scalar(x) for x in v.values()):
            sections.append({"title": title, "cols": ["", "value"], "rows": [[str(a), _cell(b)] for a, b in v.items()]})
        elif isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            cols: list[str] = []
            for x in v.values():
                cols += [c for c in x if c not in cols]
            sections.append({"title": title, "cols": ["", *cols],
                             "rows": [[str(a)] + [_cell(x.get(c)) for c in cols] for a, x in v.items()]})
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            cols = []
            for x in v:
                cols += [c for c in x if c not in cols]
            sections.append({"title": title, "cols": cols, "rows": [[_cell(x.get(c)) for c in cols] for x in v]})
        elif isinstance(v, dict) and v and depth < 2:
            sections += card_sections(v, title, depth + 1)
        elif isinstance(v, list) and all(_scalar(x) for x in v):
            sections.append({"title": title, "facts": [("", ", ".join(_cell(x) for x in v))]})
        else:
            sections.append({"title": title, "json": json.dumps(v, indent=1, ensure_ascii=False, default=str)[:20000]})
    return sections


def headline_metrics(card: dict[str, Any]) -> list[tuple[str, float]]:
    """The few numbers a list of models shows: evaluation means (learning's card) or a flat 'metrics' table."""
    ev = card.get("evaluation")
    table = ev.get("mean") if isinstance(ev, dict) and isinstance(ev.get("mean"), dict) else card.get("metrics")
    if not isinstance(table, dict):
        return []
    return [(k, float(v)) for k, v in table.items() if isinstance(v, (int, float)) and not isinstance(v, bool)][:6]


@router.get("/models")
def models_page(request: Request) -> Response:
    ws = state(request).ws
    cards = []
    for name in _model_names(ws):
        try:
            card = _load_card(ws, name)
        except NotFound:
            continue
        cards.append({"name": name, "card": card, "metrics": headline_metrics(card)})
    return render(request, "models.html", cards=cards)


@router.get("/models/{name}")
def model_page(request: Request, name: str) -> Response:
    ws = state(request).ws
    card = _load_card(ws, name)
    files = _model_files(ws, name)
    images = [f for f in files if Path(f).suffix.lower() in (".png", ".jpg", ".jpeg", ".svg")]
    md = files.get("model_card.md")
    markdown = md.read_text(encoding="utf-8", errors="replace")[:20000] if md else None
    return render(request, "model.html", name=name, sections=card_sections(card), images=images,
                  files=sorted(files), markdown=markdown, metrics=headline_metrics(card))


@router.get("/models/{name}/files/{filename}")
def model_file(request: Request, name: str, filename: str) -> Response:
    """A file of a model card, by exact name from a listing of its folder: no path ever reaches the disk."""
    ws = state(request).ws
    if name not in _model_names(ws):
        raise NotFound(f"model {name!r}: no such model card")
    files = _model_files(ws, name)
    if filename not in files:
        raise NotFound(f"model {name!r} has no file {filename!r}")
    path = files[filename]
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {"content-security-policy": "sandbox"} if path.suffix.lower() in ACTIVE_CONTENT else {}
    return FileResponse(path, media_type=media, headers=headers)


@router.get("/login")
def login_page(request: Request, next: str = Query("/", max_length=4000)) -> Response:
    return render(request, "login.html", next=safe_next(next), error=None)


@router.post("/login")
def login(request: Request, token: str = Form(..., max_length=500), name: str = Form("", max_length=64),
          csrf_token: str = Form("", max_length=200), next: str = Form("/", max_length=4000)) -> Response:
    st = state(request)
    sec = st.security
    if not sec.csrf_ok(request.scope.get("state", {}).get("csrf_seed"), csrf_token):
        raise Forbidden("missing or invalid CSRF token: reload the sign-in page and try again")
    if not sec.writes_enabled:
        raise Forbidden("writes are disabled on this server: set the token ([serve] token_env, default "
                        "ICONOSCOPE_TOKEN) and restart it")
    user = clean_user(name)
    if not sec.token_ok(token):
        time.sleep(0.5)   # slows down guessing
        return render(request, "login.html", status=401, next=safe_next(next), error="wrong token")
    resp = RedirectResponse(safe_next(next), status_code=303)
    secure = request.url.scheme == "https"
    resp.set_cookie(SESSION_COOKIE, sec.make_session(user), max_age=sec.session_ttl_s, httponly=True,
                    samesite="strict", secure=secure, path="/")
    return resp


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form("", max_length=200)) -> Response:
    st = state(request)
    if not st.security.csrf_ok(request.scope.get("state", {}).get("csrf_seed"), csrf_token):
        raise Forbidden("missing or invalid CSRF token")
    resp = RedirectResponse("/", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/api-docs")
def api_docs(request: Request) -> Response:
    spec = request.app.openapi()
    ops = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            params = [(p["name"], p.get("in", ""), p.get("description", "")) for p in op.get("parameters", [])]
            ops.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                        "description": op.get("description", ""), "params": params,
                        "auth": bool(op.get("security"))})
    return render(request, "api.html", ops=ops, title=spec.get("info", {}).get("title", "API"))
