"""SPARQL SELECT results as Arrow tables, through the store's native CSV serializer when it has one.

Large results (hundreds of thousands of rows for an audit) are dominated by building one Python object per term;
Oxigraph can serialize a result to CSV in Rust and pyarrow parses that in C++, which is several times faster than
``Store.select``. Values come back as strings (IRIs, literal lexical forms); unbound cells are null.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv


def select_table(store: Any, query: str) -> pa.Table:
    """Run a SELECT and return every column as strings (null when unbound)."""
    raw = getattr(store, "raw_query", None)
    if raw is not None:
        data, media = raw(query, "csv")
        if media.startswith("text/csv"):
            return _parse_csv(data)
    res = store.select(query)
    cols = {v: [None if r[i] is None else r[i].value for r in res.rows] for i, v in enumerate(res.vars)}
    return pa.table({v: pa.array(c, pa.string()) for v, c in cols.items()})


def _parse_csv(data: bytes) -> pa.Table:
    end = data.find(b"\n")
    header = data if end < 0 else data[:end]
    # some servers (Virtuoso) quote the header's names
    names = [n.strip().strip('"') for n in header.decode("utf-8").rstrip("\r").split(",") if n.strip()]
    if not names:
        return pa.table({})
    if end < 0 or not data[end + 1:end + 64].strip():   # no row after the header
        return pa.table({n: pa.array([], pa.string()) for n in names})
    return pacsv.read_csv(
        io.BytesIO(data),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                             strings_can_be_null=True, quoted_strings_can_be_null=False),
    )
