"""Dates as catalogues write them -> years -> bins of a configurable width (the year task and year inputs).

Catalogue dates are text: "1909", "ca. 1900", "1886-1942", "1412-1420", "500 BC", "19th century", "1890s",
"1909-05-03". We read the first year of what is written (the convention ``ico:year`` follows), so a range falls into
the bin of its start; years before the common era are negative integers (-500 = 500 BC; there is no year 0 in the
text, and we do not shift to astronomical numbering).

Bins are half-open intervals ``[k*w, (k+1)*w)`` by floor division, so they tile the whole line without a gap at 0:
with width 10, 1909 -> 1900/1909, 1910 -> 1910/1919, -1 -> -10/-1, 0 -> 0/9. Labels use the ISO 8601 interval
shape ``start/end`` (inclusive end), which sorts and parses back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}
_BCE = r"(?:b\.?\s?c\.?(?:e\.?)?|bce|v\.\s?chr\.?|av\.?\s?j\.?-?c\.?|before\s+christ)"
_CE = r"(?:a\.?\s?d\.?|c\.?e\.?|n\.\s?chr\.?|ap\.?\s?j\.?-?c\.?)"
_APPROX = re.compile(r"\b(?:ca\.?|c\.|circa|about|around|approx\.?|vers|um|after|before|post|ante)(?=[\s\d])\s*", re.I)
_ISO_DATE = re.compile(r"^\s*([+-]?\d{4})-(\d{2})(?:-(\d{2}))?(?:T.*)?\s*$")
_ERA = rf"(?:{_BCE}|{_CE})"
_RANGE = re.compile(rf"(?<![\w.])(?P<a>-?\d{{1,4}})\s*(?P<aera>{_ERA})?\s*(?:-|–|—|/|\bto\b|\bbis\b|\bà\b)\s*"
                    rf"(?P<b>-?\d{{1,4}})(?!\d)\s*(?P<bera>{_ERA})?", re.I)
_YEAR = re.compile(rf"(?<![\w.])(?P<neg>-)?(?P<y>\d{{1,4}})(?P<suffix>s)?(?!\d)\s*(?P<era>{_ERA})?", re.I)
_CENTURY = re.compile(
    rf"(?P<n>\d{{1,2}})\s*(?:st|nd|rd|th|e|ème|eme|\.)?\s*(?:century|cent\.?|siècle|siecle|jh\.?|jahrhundert)"
    rf"\s*(?P<era>{_BCE}|{_CE})?", re.I)
_ROMAN_CENTURY = re.compile(rf"\b(?P<n>[ivxlc]+)(?:e|ème|eme)?\s+(?:siècle|siecle)\s*(?P<era>{_BCE})?", re.I)


def _roman(text: str) -> int | None:
    total, prev = 0, 0
    for ch in reversed(text.lower()):
        v = _ROMAN.get(ch)
        if v is None:
            return None
        total = total - v if v < prev else total + v
        prev = max(prev, v)
    return total or None


def _century_start(n: int, bce: bool) -> int:
    # the 19th century is 1801-1900 strictly, but catalogues mean 1800-1899; BC centuries count down
    return -(n * 100) if bce else (n - 1) * 100


def parse_year_range(text: str | int | None) -> tuple[int, int] | None:
    """(first, last) year of a catalogue date, or None when no year can be read."""
    if text is None:
        return None
    if isinstance(text, int):
        return text, text
    s = str(text).strip()
    if not s:
        return None
    m = _ISO_DATE.match(s)
    if m and (m.group(3) is not None or int(m.group(2)) <= 12) and len(m.group(1).lstrip("+-")) == 4:
        y = int(m.group(1))
        return y, y
    s = _APPROX.sub("", s)
    m = _CENTURY.search(s)
    if m:
        start = _century_start(int(m.group("n")), bool(m.group("era") and re.fullmatch(_BCE, m.group("era"), re.I)))
        return start, start + 99
    m = _ROMAN_CENTURY.search(s)
    if m and (n := _roman(m.group("n"))):
        start = _century_start(n, bool(m.group("era")))
        return start, start + 99
    m = _RANGE.search(s)
    if m:
        return _range(m)
    cands = []
    for m in _YEAR.finditer(s):
        y, digits, era = int(m.group("y")), m.group("y"), m.group("era")
        if _is_bce(era) or m.group("neg"):
            y = -y
        span = 0
        if m.group("suffix"):  # '1890s' = the decade, '1800s' = the century
            span = 99 if digits.endswith("00") else 9
        cands.append((len(digits) >= 3 or era is not None, y, y + span))
    # '12 May 1890': a one- or two-digit number is a day, unless nothing longer is there
    strong = [c for c in cands if c[0]] or cands
    return (strong[0][1], strong[0][2]) if strong else None


def _is_bce(era: str | None) -> bool:
    return bool(era) and re.fullmatch(_BCE, era.strip(), re.I) is not None


def _range(m: re.Match[str]) -> tuple[int, int]:
    a_txt, b_txt = m.group("a"), m.group("b")
    a, b = int(a_txt), int(b_txt)
    bce_b = _is_bce(m.group("bera"))
    bce_a = _is_bce(m.group("aera")) or (bce_b and not m.group("aera"))
    if bce_a:
        a = -abs(a)
    if bce_b:
        b = -abs(b)
    if a < 0 and b > 0 and b <= -a and not m.group("bera"):
        b = -b  # '-500-450' is a range before the common era
    if a >= 100 and 0 <= b < 100 and len(b_txt) < len(a_txt):
        # '1886-92': an abbreviated end year takes the start's leading digits
        scale = 10 ** len(b_txt)
        b = a - a % scale + b
        if b < a:
            b += scale
    return (a, b) if b >= a else (a, a)


def parse_year(text: str | int | None) -> int | None:
    """The first year of a catalogue date (see module doc), or None."""
    r = parse_year_range(text)
    return r[0] if r else None


@dataclass(frozen=True)
class DateBins:
    """Fixed-width year bins; ``width`` years per bin, aligned on multiples of ``width`` (plus ``origin``)."""

    width: int = 10
    origin: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"date bin width must be a positive integer of years, not {self.width!r}")

    def index(self, year: int) -> int:
        return (year - self.origin) // self.width

    def start(self, index: int) -> int:
        return index * self.width + self.origin

    def label_of_index(self, index: int) -> str:
        s = self.start(index)
        return f"{s}/{s + self.width - 1}"

    def label(self, year: int | None) -> str | None:
        return None if year is None else self.label_of_index(self.index(year))

    def label_of_text(self, text: str | int | None) -> str | None:
        return self.label(parse_year(text))

    @staticmethod
    def parse_label(label: str) -> tuple[int, int]:
        """'1900/1909' -> (1900, 1909); '-10/-1' -> (-10, -1)."""
        m = re.fullmatch(r"(-?\d+)/(-?\d+)", label.strip())
        if not m:
            raise ValueError(f"not a date bin label: {label!r}")
        return int(m.group(1)), int(m.group(2))

    def centre(self, label: str) -> float:
        lo, hi = self.parse_label(label)
        return (lo + hi) / 2
