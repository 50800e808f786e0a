"""Clusters of a collection: k-means and HDBSCAN over several settings, each scored by silhouette.

Why both: k-means partitions everything into k round groups (good for browsing a fixed number of piles), HDBSCAN
finds groups of any shape and size and leaves outliers unassigned (noise, label -1), which is what a collection
with a few dense series (a printer's plates, an artist's studies) and many singletons looks like.

Scores: the silhouette (cosine) of each setting on at most ``sample`` points. HDBSCAN's silhouette is computed on
the points it clustered, so it is reported with the noise fraction, and settings are ranked by
``silhouette x (1 - noise)``: a setting cannot win by calling the hard half of the collection noise.

HDBSCAN runs on a PCA reduction of the unit vectors (density estimates degrade in 512-d) and, above
``max_hdbscan`` points, on a sample whose labels are then given to every point by its nearest sampled neighbour.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.explore.index import normalize

KMEANS_K = (8, 16, 32)
HDBSCAN_MIN_SIZE = (5, 15, 40)


@dataclass
class ClusterSetting:
    method: str  # kmeans | hdbscan
    param: int  # k, or min_cluster_size
    n_clusters: int
    noise: float
    silhouette: float | None
    seconds: float
    labels: np.ndarray = field(repr=False)

    @property
    def name(self) -> str:
        return f"{self.method}:{self.param}"

    @property
    def rank_score(self) -> float:
        return -1.0 if self.silhouette is None else self.silhouette * (1.0 - self.noise)

    def row(self) -> dict[str, Any]:
        return {"setting": self.name, "method": self.method, "param": self.param, "clusters": self.n_clusters,
                "noise": round(self.noise, 4), "silhouette": None if self.silhouette is None else
                round(self.silhouette, 4), "rank_score": round(self.rank_score, 4), "seconds": round(self.seconds, 2)}


def silhouette(X: np.ndarray, labels: np.ndarray, sample: int = 5000, seed: int = 0) -> float | None:
    """Cosine silhouette over the non-noise points (a sample of them); None with fewer than 2 clusters."""
    from sklearn.metrics import silhouette_score

    keep = np.flatnonzero(labels >= 0)
    if len(np.unique(labels[keep])) < 2 or len(keep) < 3:
        return None
    if len(keep) > sample:
        keep = np.sort(np.random.default_rng(seed).choice(keep, sample, replace=False))
        if len(np.unique(labels[keep])) < 2:
            return None
    return float(silhouette_score(X[keep], labels[keep], metric="cosine"))


def kmeans_labels(X: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means on unit vectors (mini-batch above 50k points, where full k-means costs minutes)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    k = max(1, min(k, len(X)))
    if len(X) > 50_000:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=4096, n_init=3)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=3)
    return model.fit_predict(X).astype(np.int64)


def reduce(X: np.ndarray, dims: int = 32, seed: int = 0) -> np.ndarray:
    """PCA to ``dims`` (no-op when already that small): the space HDBSCAN's densities are estimated in."""
    from sklearn.decomposition import PCA

    if X.shape[1] <= dims or len(X) <= dims:
        return X
    return PCA(n_components=dims, random_state=seed).fit_transform(X).astype(np.float32)


def hdbscan_labels(Z: np.ndarray, min_cluster_size: int, max_points: int = 30_000, seed: int = 0) -> np.ndarray:
    """HDBSCAN labels (-1 = noise); above ``max_points`` fit a sample and label the rest by nearest sampled point."""
    from sklearn.cluster import HDBSCAN

    n = len(Z)
    if n < max(min_cluster_size, 2):
        return np.full(n, -1, np.int64)
    if n <= max_points:
        return HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(Z).astype(np.int64)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, max_points, replace=False))
    scaled = max(2, round(min_cluster_size * max_points / n))
    sample_labels = HDBSCAN(min_cluster_size=scaled, copy=True).fit_predict(Z[pick]).astype(np.int64)
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1).fit(Z[pick])
    _, near = nn.kneighbors(Z)
    return sample_labels[near[:, 0]]


def cluster_settings(X: np.ndarray, ks: Sequence[int] = KMEANS_K, min_sizes: Sequence[int] = HDBSCAN_MIN_SIZE,
                     sample: int = 5000, seed: int = 0, show_progress: bool = False) -> list[ClusterSetting]:
    """Every setting of k-means (``ks``) and HDBSCAN (``min_sizes``) on ``X`` with its silhouette."""
    from tqdm import tqdm

    Xn = normalize(X)
    Z = reduce(Xn, seed=seed) if min_sizes else Xn
    out: list[ClusterSetting] = []
    jobs = [("kmeans", k) for k in ks] + [("hdbscan", m) for m in min_sizes]
    for method, p in tqdm(jobs, desc="clusters", disable=not show_progress, dynamic_ncols=True):
        t0 = time.perf_counter()
        labels = kmeans_labels(Xn, p, seed) if method == "kmeans" else hdbscan_labels(Z, p, seed=seed)
        secs = time.perf_counter() - t0
        n_clusters = len(np.unique(labels[labels >= 0]))
        out.append(ClusterSetting(method, int(p), n_clusters, float(np.mean(labels < 0)),
                                  silhouette(Xn, labels, sample, seed), secs, labels))
    return out


def best_setting(settings: Sequence[ClusterSetting]) -> ClusterSetting:
    if not settings:
        raise ConfigError("clusters: no setting to compare (give --k and/or --min-size)")
    return max(settings, key=lambda s: (s.rank_score, -s.noise))


@dataclass
class ClusterReport:
    spec: str
    settings: list[ClusterSetting]
    chosen: ClusterSetting
    images: list[str]
    records: list[str]


def cluster_collection(ws: Any, spec: str | None = None, ks: Sequence[int] = KMEANS_K,
                       min_sizes: Sequence[int] = HDBSCAN_MIN_SIZE, choose: str | None = None, seed: int = 0,
                       show_progress: bool = False) -> ClusterReport:
    """Cluster one backbone's embeddings, keep the best setting (or ``choose`` = "kmeans:16"), and save it.

    Saved in ``vectors/{slug}/explore/``: ``clusters.parquet`` (image, record, cluster) and ``clusters.json``
    (every setting's scores and which was kept); the map colours its points with it.
    """
    from iconoscope.explore.vectors import explore_dir, load_matrix

    spec, images, records, X = load_matrix(ws, spec)
    settings = cluster_settings(X, ks, min_sizes, seed=seed, show_progress=show_progress)
    if choose:
        chosen = next((s for s in settings if s.name == choose), None)
        if chosen is None:
            raise ConfigError(f"clusters: --choose {choose!r} is not among the settings run "
                              f"({', '.join(s.name for s in settings)})")
    else:
        chosen = best_setting(settings)
    d = explore_dir(ws, spec)
    table = pa.table({"image": pa.array(images, pa.string()), "record": pa.array(records, pa.string()),
                      "cluster": pa.array(chosen.labels, pa.int64())})
    tmp = d / f"clusters.parquet.tmp-{os.getpid()}"
    pq.write_table(table, tmp)
    os.replace(tmp, d / "clusters.parquet")
    info = {"spec": spec, "chosen": chosen.name, "settings": [s.row() for s in settings],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (d / "clusters.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return ClusterReport(spec, settings, chosen, images, records)


def load_clusters(ws: Any, spec: str | None = None) -> dict[str, int]:
    """image id -> cluster (-1 = noise) of the kept clustering; empty when 'clusters' has not been run."""
    from iconoscope.explore.vectors import explore_dir, resolve_spec

    p = explore_dir(ws, resolve_spec(ws, spec)) / "clusters.parquet"
    if not p.exists():
        return {}
    try:
        t = pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as e:
        raise IconoscopeError(f"{p}: unreadable ({e}); re-run 'iconoscope clusters'") from None
    return dict(zip(t.column("image").to_pylist(), t.column("cluster").to_pylist(), strict=True))
