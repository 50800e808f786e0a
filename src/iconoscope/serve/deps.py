"""What routes share: the app state, page rendering with the CSRF token, and the write check."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from iconoscope.serve.security import CSRF_HEADER, SESSION_COOKIE, USER_HEADER, same_origin

NAV = [("/", "Search"), ("/review", "Review"), ("/map", "Map"), ("/models", "Models"), ("/sparql", "SPARQL"),
       ("/api-docs", "API")]


def state(request: Request) -> Any:
    return request.app.state.iconoscope


def csrf_seed(request: Request) -> str:
    return str(request.scope.get("state", {}).get("csrf_seed", ""))


def current_user(request: Request) -> str | None:
    return state(request).security.read_session(request.cookies.get(SESSION_COOKIE))


def render(request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    """A page: every template gets the collection name, navigation, the user, and the CSRF token for its forms."""
    st = state(request)
    html = st.templates.get_template(template).render(
        request=request, path=request.url.path, nav=NAV, collection=st.ws.config.name,
        user=current_user(request), writes_enabled=st.security.writes_enabled,
        csrf_token=st.security.csrf_token(csrf_seed(request)), **context)
    return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store", **(headers or {})})


def record_decision(request: Request, annotation: str, decision: str, user: str) -> Any:
    """Write a review decision, then let the SPARQL endpoint's snapshot catch up."""
    from iconoscope.serve.review import decide

    st = state(request)
    try:
        return decide(st.ws, annotation, decision, user)
    finally:
        st.runner.invalidate()
        st.catalog.invalidate()


def writer(request: Request, csrf_supplied: str | None = None) -> str:
    """The user a write is attributed to (Bearer token, or a session cookie plus a CSRF token), else 401/403."""
    st = state(request)
    return st.security.writer(
        authorization=request.headers.get("authorization"), session_cookie=request.cookies.get(SESSION_COOKIE),
        csrf_seed=csrf_seed(request), csrf_supplied=csrf_supplied or request.headers.get(CSRF_HEADER),
        origin_ok=same_origin(request.headers.get("origin"), request.headers.get("host")),
        user_header=request.headers.get(USER_HEADER))
