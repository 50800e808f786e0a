"""Load SPARQL from ``queries/*.rq`` files and fill their ``{{placeholders}}`` safely.

SPARQL lives in files, not in string soup: a curator can read, copy and run each one with ``iconoscope sparql``.
Placeholders are replaced with properly escaped SPARQL terms (IRIs, literals, VALUES lists), never with raw text,
so a label typed into the web app cannot change a query's structure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from iconoscope.errors import IconoscopeError
from iconoscope.graph.terms import Term, nt_iri, nt_literal
from iconoscope.graph.vocab import prefix_block

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class IRI(str):
    """Marks a value to be written as an IRI."""


class Raw(str):
    """Marks a value to be inserted as trusted SPARQL text (numbers we computed, VALUES blocks we built)."""


def values_iris(items: Iterable[str]) -> Raw:
    return Raw(" ".join(nt_iri(i) for i in items))


def to_sparql(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, IRI):
        return nt_iri(value)
    if isinstance(value, Term):
        return value.n3()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple) and len(value) == 2:  # (text, lang)
        return nt_literal(value[0], lang=value[1])
    return nt_literal(str(value))


@cache
def query_text(name: str) -> str:
    """The text of the packaged query ``name`` (without .rq)."""
    try:
        return (resources.files("iconoscope.graph") / "queries" / f"{name}.rq").read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise IconoscopeError(f"no packaged query named '{name}.rq'") from e


def render(text: str, **params: Any) -> str:
    """Fill placeholders; every placeholder must be given (a missing one is a bug, not a silent blank)."""
    missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(params))
    if missing:
        raise IconoscopeError(f"query needs parameter(s) {', '.join(missing)}")
    body = _PLACEHOLDER.sub(lambda m: to_sparql(params[m.group(1)]), text)
    # SPARQL allows repeated PREFIX declarations (a later one wins), so a file may declare its own.
    return prefix_block() + body


def load(name: str, **params: Any) -> str:
    """A packaged query with its placeholders filled and our PREFIX block prepended."""
    return render(query_text(name), **params)


def load_file(path: Path, **params: Any) -> str:
    """A user's .rq file (for ``sparql`` and ``rules apply``), with the same placeholder rules."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise IconoscopeError(f"{path}: cannot read query file: {e.strerror}") from e
    return render(text, **params)


_PROLOGUE = re.compile(r"^\s*(?:(?:PREFIX\s+[\w-]*:\s*<[^>]*>|BASE\s+<[^>]*>)\s*|#[^\n]*\n\s*)*", re.IGNORECASE)


def prefix_free(text: str) -> str:
    """The query without its prologue (PREFIX/BASE declarations and leading comments)."""
    return _PROLOGUE.sub("", text, count=1)
