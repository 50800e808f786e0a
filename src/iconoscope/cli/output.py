"""Printing tables as text, CSV or JSON: one helper so every verb's ``--format`` behaves the same."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table",
                 max_width: int = 60) -> str:
    if fmt == "json":
        return json.dumps([dict(zip(columns, r, strict=True)) for r in rows], ensure_ascii=False, indent=1,
                          default=str)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
        return buf.getvalue()
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [min(max_width, max([len(c)] + [len(r[i]) for r in cells])) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join((v if len(v) <= w else v[: w - 1] + "…").ljust(w) for v, w in zip(values, widths,
                                                                                           strict=True)).rstrip()

    out = [line(list(columns)), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out) + "\n"


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table",
                out: TextIO | None = None) -> None:
    (out or sys.stdout).write(format_table(columns, rows, fmt))
