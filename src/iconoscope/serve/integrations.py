"""Calls into the other stages' libraries (enrichment search, exploration similar/duplicates/map), when present.

The web app must keep working when a stage is not installed yet, or when a workspace simply has no data for it
(no vector index, no map computed): then the page hides the section instead of failing. Each adapter imports its
function lazily, calls it, and normalises what comes back (lists of dicts or objects, pandas or Arrow tables) to
plain Python, so the pages do not depend on one stage's exact return type. Failures are logged with the reason.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("iconoscope.serve")

_RECORD_KEYS = ("record", "record_id", "id", "record_iri", "iri")
_SCORE_KEYS = ("score", "similarity", "sim", "relevance")


def optional_function(module: str, attr: str) -> Callable[..., Any] | None:
    """``module.attr`` if that stage is installed, else None (other import errors are logged, not hidden)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            return None
        log.warning("%s cannot be imported: %s", module, e)
        return None
    except ImportError as e:
        log.warning("%s cannot be imported: %s", module, e)
        return None
    fn = getattr(mod, attr, None)
    return fn if callable(fn) else None


def rows_of(obj: Any) -> list[dict[str, Any]]:
    """A list of dicts from what a library returned: list of dicts/objects/tuples, a DataFrame or an Arrow table."""
    if obj is None:
        return []
    if hasattr(obj, "to_pylist"):                       # pyarrow.Table
        return list(obj.to_pylist())
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):   # pandas.DataFrame
        return list(obj.to_dict(orient="records"))
    for attr in ("rows", "hits", "results", "items", "points", "groups"):
        inner = getattr(obj, attr, None)
        if inner is not None and not callable(inner) and not isinstance(obj, (list, tuple, dict)):
            return rows_of(inner)
    if isinstance(obj, dict):
        for key in ("rows", "hits", "results", "items", "points", "groups"):
            if key in obj:
                return rows_of(obj[key])
        return [obj]
    out = []
    for item in obj:
        if isinstance(item, dict):
            out.append(item)
        elif hasattr(item, "_asdict"):
            out.append(item._asdict())
        elif hasattr(item, "__dataclass_fields__"):
            out.append({k: getattr(item, k) for k in item.__dataclass_fields__})
        elif hasattr(item, "model_dump"):
            out.append(item.model_dump())
        elif hasattr(item, "__dict__"):
            out.append(dict(vars(item)))
        elif isinstance(item, (tuple, list)) and len(item) >= 2:
            out.append({"record": item[0], "score": item[1]})
        else:
            out.append({"record": item})
    return out


def _record_id(ws: Any, value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if text.startswith(("http://", "https://", "urn:")):
        for kind in ("record", "image"):
            try:
                return str(ws.iris.id_of(text, kind))
            except ValueError:
                continue
        return None
    return text


def _scored(ws: Any, rows: Iterable[dict[str, Any]]) -> list[tuple[str, float | None]]:
    out: list[tuple[str, float | None]] = []
    for r in rows:
        rid = next((_record_id(ws, r[k]) for k in _RECORD_KEYS if k in r and r[k] is not None), None)
        if rid is None:
            continue
        score = next((r[k] for k in _SCORE_KEYS if isinstance(r.get(k), (int, float))), None)
        out.append((rid, float(score) if score is not None else None))
    return out


class Failure:
    """Why another stage's function gave nothing (its error message, shown to the curator as a hint)."""

    def __init__(self, message: str):
        self.message = message


def call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(...)``, or None when it fails: another stage's failure hides a section, never breaks a page.
    Its own errors (no index yet, no map yet) are expected and logged quietly; anything else is a warning."""
    res = call_or_failure(what, fn, *args, **kwargs)
    return None if isinstance(res, Failure) else res


def call_or_failure(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from iconoscope.errors import IconoscopeError

    try:
        return fn(*args, **kwargs)
    except IconoscopeError as e:
        log.info("%s: %s", what, e)
        return Failure(str(e))
    except Exception as e:
        log.warning("%s failed, section hidden: %s: %s", what, type(e).__name__, e)
        return Failure(f"{what} failed ({type(e).__name__})")


def search(ws: Any, text: str, lang: str | None, min_score: float, limit: int = 500) -> list[tuple[str, float]]:
    """Records the enrichment stage's ranked search finds for a text (empty when it is absent)."""
    fn = optional_function("iconoscope.enrich.search", "search")
    if fn is None:
        return []
    res = call("enrich.search", fn, ws, text, lang=lang, min_score=min_score, limit=limit, offset=0)
    return [(rid, s if s is not None else 0.0) for rid, s in _scored(ws, rows_of(res))]


def similar(ws: Any, record_id: str, k: int) -> tuple[list[tuple[str, float | None]] | None, str | None]:
    """Nearest records by image embedding; (None, why) when exploration (or its index) is unavailable."""
    fn = optional_function("iconoscope.explore.similar", "similar")
    if fn is None:
        return None, "similar items need the exploration stage (iconoscope.explore)"
    res = call_or_failure("explore.similar", fn, ws, record_id, k=k)
    if isinstance(res, Failure):
        return None, res.message
    return _scored(ws, rows_of(res)), None


_DUP_TTL_S = 600.0
_dup_lock = threading.Lock()
_DUP_CACHE: dict[str, tuple[float, list[list[str]]]] = {}
_DUP_RUNNING: set[str] = set()


def _normalise_groups(ws: Any, res: Any) -> list[list[str]]:
    groups: list[list[str]] = []
    for g in (res if isinstance(res, list) else rows_of(res)):
        members = g
        if isinstance(g, dict):
            members = next((g[k] for k in ("records", "members", "ids", "images", "group") if k in g), [])
        ids: list[str] = []
        for m in members:
            value = m if not isinstance(m, dict) else next((m[k] for k in _RECORD_KEYS if k in m), None)
            rid = _record_id(ws, value)
            if rid and rid not in ids:
                ids.append(rid)
        if len(ids) > 1:
            groups.append(ids)
    return groups


def duplicate_groups(ws: Any, wait: bool = False) -> list[list[str]] | None:
    """Groups of record ids that exploration flags as (near-)duplicates, or None while unknown.

    Finding duplicates hashes every image, far too slow for a page view: it runs in a background thread, its
    result is kept for ten minutes, and pages show the flags once it is there (``wait`` blocks, for tests)."""
    fn = optional_function("iconoscope.explore.similar", "duplicate_groups")
    if fn is None:
        return None
    key = str(ws.root)

    def work() -> None:
        res = call("explore.duplicate_groups", fn, ws)
        with _dup_lock:
            _DUP_RUNNING.discard(key)
            if res is not None:
                _DUP_CACHE[key] = (time.monotonic(), _normalise_groups(ws, res))

    with _dup_lock:
        hit = _DUP_CACHE.get(key)
        fresh = hit is not None and time.monotonic() - hit[0] < _DUP_TTL_S
        start = not fresh and key not in _DUP_RUNNING
        if start:
            _DUP_RUNNING.add(key)
    if start:
        if wait:
            work()
        else:
            threading.Thread(target=work, name="iconoscope-duplicates", daemon=True).start()
    if wait and not start:
        while key in _DUP_RUNNING:
            time.sleep(0.05)
    with _dup_lock:
        hit = _DUP_CACHE.get(key)
    return hit[1] if hit else None


def load_map(ws: Any) -> list[dict[str, Any]] | None:
    """The 2-D layout (points with record, image, x, y, cluster), or None when there is none."""
    fn = optional_function("iconoscope.explore.map", "load_map")
    if fn is None:
        return None
    res = call("explore.load_map", fn, ws)
    if res is None:
        return None
    points = []
    for p in rows_of(res):
        try:
            x, y = float(p["x"]), float(p["y"])
        except (KeyError, TypeError, ValueError):
            continue
        rid = next((_record_id(ws, p[k]) for k in _RECORD_KEYS if p.get(k) is not None), None)
        img = p.get("image")
        points.append({"record": rid, "image": _image_id(ws, img) if img is not None else rid, "x": x, "y": y,
                       "cluster": p.get("cluster")})
    return points


def _image_id(ws: Any, value: Any) -> str:
    text = str(value)
    if text.startswith(("http://", "https://", "urn:")):
        try:
            return str(ws.iris.id_of(text, "image"))
        except ValueError:
            return text
    return text
