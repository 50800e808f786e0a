"""A collection's folder: the config, the graph store, vectors, models, caches and run logs.

Every stage reaches its files through this class, so the layout is written down once:

    iconoscope.toml   the configuration
    graph/            the embedded Oxigraph store (when [store] kind = "oxigraph")
    vectors/<slug>/   image embeddings per backbone (float32 .npy shards + Parquet id tables)
    models/<name>/    trained classifier projects, model cards, out-of-fold scores
    labels/           derived training labels (Parquet)
    runs/             prediction runs and reports
    cache/            fetched images (IIIF/HTTP), thumbnails
    reports/          HTML/CSV reports (eval, audit, duplicates, map)
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from iconoscope.config import CONFIG_NAME, Config, load_config
from iconoscope.graph.store import Store, open_store
from iconoscope.graph.vocab import IRIs

FOLDERS = ("vectors", "models", "labels", "runs", "cache", "reports")


#: longest slug kept whole: file systems cap a name at 255 bytes, and a ``concat:`` spec of several multi-view
#: backbones easily exceeds that; room is left for suffixes such as ``.parquet``.
SLUG_MAX = 200


def slug(text: str) -> str:
    """A file-system-safe name for a backbone spec or classifier (``hf:org/model`` -> ``hf-org-model``).

    A name longer than :data:`SLUG_MAX` keeps its readable head and ends with a hash of the whole text, so two
    long specs that share a prefix still get different folders (and short names are unchanged).
    """
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "default"
    if len(s) > SLUG_MAX:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        s = f"{s[:SLUG_MAX - 17].rstrip('-')}-{digest}"
    return s


class Workspace:
    """Opens a workspace folder; the store is opened lazily (and only once) because it takes a file lock."""

    def __init__(self, root: Path | str, config: Config | None = None):
        self.root = Path(root).resolve()
        self.config = config or load_config(self.root)
        self.iris = IRIs(self.config.base_iri)
        self._store: Store | None = None
        self._read_only = False

    @classmethod
    def open(cls, root: Path | str, read_only: bool = False) -> Workspace:
        ws = cls(root)
        ws._read_only = read_only
        return ws

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.config, read_only=self._read_only)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- paths
    def _dir(self, *parts: str) -> Path:
        p = self.root.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    def vectors_dir(self, backbone: str) -> Path:
        return self._dir("vectors", slug(backbone))

    def model_dir(self, classifier: str) -> Path:
        return self._dir("models", slug(classifier))

    def labels_path(self, classifier: str) -> Path:
        return self._dir("labels") / f"{slug(classifier)}.parquet"

    def runs_dir(self) -> Path:
        return self._dir("runs")

    def cache_dir(self, *parts: str) -> Path:
        return self._dir("cache", *parts)

    def reports_dir(self, *parts: str) -> Path:
        return self._dir("reports", *parts)
