"""CSV, TSV and JSON-Lines sources: one row (line) per record, columns named by ``[sources.X.fields]``.

Line numbers in the report are the physical line a row starts on (a quoted field may span lines), so a curator
can open the file at the right place. A row with the wrong number of fields (usually broken quoting), a line that
is not JSON, or bytes that are not valid UTF-8 (replaced by U+FFFD, the row kept) are reported, not fatal.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from iconoscope.config import SourceConfig
from iconoscope.errors import ConfigError, InputError
from iconoscope.ingest.records import ImageRef, Record
from iconoscope.ingest.report import IngestReport

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # catalogue descriptions can be long


def _values(v: Any) -> list[str]:
    """A cell or JSON value as a list of strings (lists stay lists; numbers as text; 1909.0 -> '1909.0')."""
    if v is None:
        return []
    if isinstance(v, list):
        return [x for item in v for x in _values(item)]
    if isinstance(v, dict):  # a language map {"fr": "...", "en": [...]}: its values
        return [x for item in v.values() for x in _values(item)]
    if isinstance(v, bool):
        return ["true" if v else "false"]
    return [str(v)]


def _get(row: Mapping[str, Any], key: str) -> Any:
    """``a.b`` reaches into nested JSON objects."""
    if key in row:
        return row[key]
    cur: Any = row
    for part in key.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


class TabularReader:
    """Yields :class:`Record` values from a CSV/TSV/JSONL file according to the source's field mapping."""

    def __init__(self, cfg: SourceConfig, report: IngestReport):
        self.cfg = cfg
        self.report = report
        self.path = cfg.path
        self.fields = dict(cfg.fields)
        opts = cfg.options
        self.extra: dict[str, str] = dict(opts.get("extra", {}))
        self.image_sep: str | None = opts.get("image_separator")
        self.encoding: str = opts.get("encoding", "utf-8-sig")
        default_delim = "\t" if cfg.kind == "tsv" else ","
        self.delimiter: str = opts.get("delimiter", default_delim)

    def _record(self, row: Mapping[str, Any], line: int) -> Record:
        f = self.fields
        rid = _values(_get(row, f["id"]))
        rec = Record(id=rid[0] if rid else "", line=line, origin=str(self.path))
        if "title" in f:
            rec.title = [(t, None) for t in _values(_get(row, f["title"]))]
        if "creator" in f:
            rec.creator = _values(_get(row, f["creator"]))
        if "date" in f:
            rec.date = _values(_get(row, f["date"]))
        if "medium" in f:
            rec.medium = _values(_get(row, f["medium"]))
        if "subject" in f:
            rec.subject = _values(_get(row, f["subject"]))
        if "image" in f:
            for cell in _values(_get(row, f["image"])):
                parts = cell.split(self.image_sep) if self.image_sep else [cell]
                rec.images.extend(ImageRef(p.strip()) for p in parts if p.strip())
        for name, col in self.extra.items():
            vals = _values(_get(row, col))
            if vals:
                rec.extra[name] = vals
        return rec

    def __iter__(self) -> Iterator[Record]:
        if self.cfg.kind == "jsonl":
            yield from self._jsonl()
        else:
            yield from self._csv()

    def _open(self):  # type: ignore[no-untyped-def]
        try:
            return open(self.path, encoding=self.encoding, errors="replace", newline="")
        except FileNotFoundError:
            raise ConfigError(f"source '{self.cfg.name}': file not found: {self.path}") from None
        except LookupError:
            raise ConfigError(f"source '{self.cfg.name}': unknown encoding {self.encoding!r}") from None
        except OSError as e:
            raise InputError(str(self.path), f"cannot read: {e.strerror}") from None

    def _csv(self) -> Iterator[Record]:
        rep = self.report
        with self._open() as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError(str(self.path), "empty file (no header row)") from None
            header = [h.strip() for h in header]
            if "id" not in self.fields and "id" in header:
                self.fields["id"] = "id"
            if "id" not in self.fields:
                raise ConfigError(f"source '{self.cfg.name}': no [sources.{self.cfg.name}.fields] id and no 'id' "
                                  f"column in {self.path} (columns: {', '.join(header)})")
            wanted = {**self.fields, **{f"extra.{k}": v for k, v in self.extra.items()}}
            missing = {k: v for k, v in wanted.items() if v not in header}
            if missing:
                raise ConfigError(f"source '{self.cfg.name}': column(s) "
                                  f"{', '.join(f'{v!r} (for {k})' for k, v in missing.items())} not in the header "
                                  f"of {self.path}; columns: {', '.join(header)}")
            width = len(header)
            start = reader.line_num + 1
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    rep.issue(f"malformed CSV: {e} (row skipped)", line=start, kind="malformed row")
                    start = reader.line_num + 1
                    continue
                line, start = start, reader.line_num + 1
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != width:
                    rep.issue(f"malformed row: {len(cells)} fields where the header has {width} (row skipped)",
                              line=line, record=cells[0] if cells else None, kind="malformed row")
                    continue
                row = dict(zip(header, cells, strict=True))
                if "\ufffd" in "".join(cells):
                    rep.issue(f"invalid {self.encoding} bytes replaced by U+FFFD", line=line,
                              record=row.get(self.fields["id"]), kind="invalid encoding")
                yield self._record(row, line)

    def _jsonl(self) -> Iterator[Record]:
        rep = self.report
        if "id" not in self.fields:
            self.fields["id"] = "id"
        with self._open() as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError as e:
                    rep.issue(f"not valid JSON: {e.msg} at column {e.colno} (line skipped)", line=lineno,
                              kind="malformed row")
                    continue
                if not isinstance(row, dict):
                    rep.issue(f"expected a JSON object, got {type(row).__name__} (line skipped)", line=lineno,
                              kind="malformed row")
                    continue
                if "\ufffd" in raw:
                    rep.issue(f"invalid {self.encoding} bytes replaced by U+FFFD", line=lineno,
                              kind="invalid encoding")
                yield self._record(row, lineno)


def read_records(cfg: SourceConfig, report: IngestReport) -> Iterator[Record]:
    return iter(TabularReader(cfg, report))


def check_path(cfg: SourceConfig) -> Path:
    if not Path(cfg.path).exists():
        raise ConfigError(f"source '{cfg.name}': file not found: {cfg.path}")
    return Path(cfg.path)
