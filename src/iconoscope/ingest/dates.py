"""A year (``ico:year``) from the date text catalogues actually hold.

The text itself is kept verbatim in ``dcterms:created``; the year is only a sortable, filterable number: the first
year of a range or period. Handled: plain years (``1909``, ``1909.0`` from a spreadsheet, ``ca. 1860-1943``),
centuries in French and English with their parts (``4e quart 19e siècle`` -> 1875, ``XIXe siècle`` -> 1800,
``2nd half of the 18th century`` -> 1750).
"""

from __future__ import annotations

import re

_YEAR = re.compile(r"(?<![\d.])(\d{3,4})(?:\.0)?(?!\d)")
_CENTURY = re.compile(r"\b([0-9]{1,2}|[IVXL]+)\s*(?:e|è|ème|eme|er|st|nd|rd|th)\.?\s*(?:siècle|siecle|s\.|century|c\.)",
                      re.IGNORECASE)
_PART = re.compile(r"\b(1er|1re|1ère|2e|2nd|3e|3rd|4e|4th|first|second|third|fourth|last)\s*"
                   r"(quart|quarter|moitié|moitie|half|tiers|third)", re.IGNORECASE)
_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50}
_ORD = {"1er": 1, "1re": 1, "1ère": 1, "first": 1, "2e": 2, "2nd": 2, "second": 2, "3e": 3, "3rd": 3,
        "third": 3, "4e": 4, "4th": 4, "fourth": 4}


def _roman(s: str) -> int:
    total, prev = 0, 0
    for ch in reversed(s.upper()):
        v = _ROMAN[ch]
        total = total - v if v < prev else total + v
        prev = max(prev, v)
    return total


def parse_year(text: str | None) -> int | None:
    """The first year the text denotes, or None."""
    if not text:
        return None
    m = _YEAR.search(text)
    if m:
        y = int(m.group(1))
        if 100 <= y <= 2100:
            return y
    c = _CENTURY.search(text)
    if not c:
        return None
    token = c.group(1)
    century = int(token) if token.isdigit() else _roman(token)
    if not 1 <= century <= 21:
        return None
    start = (century - 1) * 100
    p = _PART.search(text[: c.start()])
    if p:
        which, unit = p.group(1).lower(), p.group(2).lower()
        size = {"quart": 25, "quarter": 25, "moitié": 50, "moitie": 50, "half": 50}.get(unit, 33)
        n = _ORD.get(which, 4 if size == 25 else 2 if size == 50 else 3) if which != "last" else 100 // size
        start += (n - 1) * size
    return start
