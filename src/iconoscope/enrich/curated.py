"""Curated annotations as a matrix: which records carry a subject at or below which category.

Read from the graph on every call (sources and the review graph's accepted subjects alike), through the store's
native CSV path: at Joconde scale this is a few hundred thousand rows, the largest read an audit makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iconoscope.enrich.tables import select_table
from iconoscope.graph import queries
from iconoscope.graph.queries import Raw
from iconoscope.graph.terms import nt_iri


def curated_matrix(ws: Any, categories: Sequence[str], records: Sequence[str] | np.ndarray) -> np.ndarray:
    """bool ``[len(records), len(categories)]``: record i has a curated subject at or below category j."""
    out = np.zeros((len(records), len(categories)), dtype=bool)
    if not len(categories) or not len(records):
        return out
    pairs = list(enumerate(categories))
    parts = [pairs[i::2] for i in range(2)] if len(pairs) >= 4 else [pairs]

    def fetch(part: list[tuple[int, str]]) -> pa.Table:
        block = Raw(" ".join(f"({nt_iri(c)} {k})" for k, c in part))
        return select_table(ws.store, queries.load("enrich_curated_pairs", categories=block))

    # two halves in two threads: the store decodes strings outside the GIL, so a second core halves the wait
    if len(parts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(parts)) as ex:
            t = pa.concat_tables(list(ex.map(fetch, parts)))
    else:
        t = fetch(parts[0])
    if t.num_rows:
        rec_list = records.tolist() if isinstance(records, np.ndarray) else list(records)
        r = pc.index_in(t.column("record"), value_set=pa.array(rec_list, pa.string()))
        k = pc.cast(t.column("k"), pa.int64()).to_numpy(zero_copy_only=False)
        ok = pc.is_valid(r).to_numpy(zero_copy_only=False)
        rows = r.to_numpy(zero_copy_only=False)[ok].astype(np.int64)
        out[rows, k[ok]] = True
    return out
