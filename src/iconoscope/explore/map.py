"""A 2-D map of the collection: a UMAP layout saved as JSON for the web app, and a PixPlot-style PNG of thumbnails.

``build_map`` lays out one backbone's embeddings (UMAP on cosine distance; ``method="pca"`` is the instant,
dependency-light fallback), normalises x/y to [0, 1] and colours points with the kept clustering (``clusters``).
The JSON (``vectors/{slug}/explore/map.json``) is what ``load_map`` returns::

    {"spec": ..., "method": "umap", "params": {...}, "created": ..., "count": N,
     "points": [{"record": ..., "image": ..., "x": 0.12, "y": 0.80, "cluster": 3}, ...]}

The PNG snaps each thumbnail to the nearest free cell of a grid (a greedy version of PixPlot's "rasterfairy"
layout), so neighbourhoods stay where UMAP put them but no image hides another.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.explore.index import normalize
from iconoscope.explore.vectors import EXPLORE_DIR

METHODS = ("umap", "pca")


def layout_2d(X: np.ndarray, method: str = "umap", n_neighbors: int = 15, min_dist: float = 0.1,
              seed: int = 0) -> np.ndarray:
    """[N, 2] coordinates in [0, 1] (aspect kept) for the rows of ``X`` (cosine geometry)."""
    Xn = normalize(X)
    n = len(Xn)
    if method not in METHODS:
        raise ConfigError(f"map: method {method!r}: expected one of {', '.join(METHODS)}")
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if n < 4:
        Y = np.zeros((n, 2), np.float64)
        Y[:, 0] = np.arange(n)
    elif method == "pca" or n <= n_neighbors + 1:
        from sklearn.decomposition import PCA

        Y = PCA(n_components=2, random_state=seed).fit_transform(Xn)
    else:
        import warnings

        import umap

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "n_jobs overridden by random_state": a seed is what we want
            Y = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric="cosine",
                          random_state=seed).fit_transform(Xn)
    Y = np.asarray(Y, dtype=np.float64)
    lo, hi = Y.min(axis=0), Y.max(axis=0)
    span = float(max((hi - lo).max(), 1e-12))
    Y = (Y - lo) / span
    Y += (1.0 - (hi - lo) / span) / 2  # centre the shorter axis
    return Y.astype(np.float32)


def map_path(ws: Any, spec: str) -> Path:
    from iconoscope.explore.vectors import explore_dir

    return explore_dir(ws, spec) / "map.json"


def build_map(ws: Any, spec: str | None = None, method: str = "umap", n_neighbors: int = 15, min_dist: float = 0.1,
              seed: int = 0) -> dict[str, Any]:
    """Compute and save the 2-D layout of one backbone's embeddings; returns it (see the module docstring)."""
    from iconoscope.explore.clusters import load_clusters
    from iconoscope.explore.vectors import load_matrix

    spec, images, records, X = load_matrix(ws, spec)
    t0 = time.perf_counter()
    Y = layout_2d(X, method, n_neighbors, min_dist, seed)
    clusters = load_clusters(ws, spec)
    points = [{"record": r, "image": i, "x": round(float(x), 5), "y": round(float(y), 5),
               "cluster": int(clusters[i]) if i in clusters else None}
              for i, r, (x, y) in zip(images, records, Y, strict=True)]
    data = {"spec": spec, "method": method, "params": {"n_neighbors": n_neighbors, "min_dist": min_dist,
                                                       "seed": seed, "metric": "cosine"},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.perf_counter() - t0, 2),
            "count": len(points), "points": points}
    path = map_path(ws, spec)
    tmp = path.with_name(f"map.json.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return data


def latest_map_path(ws: Any) -> Path | None:
    """The most recently built map of any backbone (what a viewer wants when none is named), or None."""
    root = Path(ws.root) / "vectors"
    maps = [p for p in root.glob(f"*/{EXPLORE_DIR}/map.json") if p.is_file()] if root.is_dir() else []
    return max(maps, key=lambda p: p.stat().st_mtime) if maps else None


def load_map(ws: Any, spec: str | None = None) -> dict[str, Any]:
    """The saved layout (``build_map``'s JSON); a clear error when the map has not been made yet.

    With no ``spec``: the map of the default backbone when there is one, else the most recently built map (a
    workspace whose map was laid out on a fine-tuned network, as the demo's, still shows it in the web app)."""
    from iconoscope.explore.vectors import resolve_spec

    if spec:
        path: Path | None = map_path(ws, spec)
    else:
        try:
            path = map_path(ws, resolve_spec(ws))
        except ConfigError:  # no embeddings, or several and none the default: a map may still exist
            path = None
        if path is None or not path.exists():
            path = latest_map_path(ws) or path
    if path is None or not path.exists():
        raise IconoscopeError(f"{path or ws.root}: no map yet for backbone {spec or 'the default'}; "
                              "run 'iconoscope map'")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise IconoscopeError(f"{path}: corrupt map ({e}); re-run 'iconoscope map'") from None


# ---- the PNG ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ThumbPreparer:
    """Image -> RGB uint8 array fitting in ``side`` x ``side`` (picklable, runs in decoding workers)."""

    side: int = 32

    @property
    def min_side(self) -> int:
        return self.side

    def __call__(self, img: Image.Image) -> np.ndarray:
        img = img.copy()
        img.thumbnail((self.side, self.side), Image.Resampling.LANCZOS)
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def snap_to_grid(xy: np.ndarray, cells: int, seed: int = 0) -> np.ndarray:
    """Greedy: each point (in random order) takes the free grid cell nearest to its position. -> int [N, 2]."""
    n = len(xy)
    if n > cells * cells:
        raise ValueError(f"{n} points do not fit a {cells}x{cells} grid")
    free = np.ones((cells, cells), dtype=bool)
    target = np.clip((xy * cells).astype(np.int64), 0, cells - 1)
    out = np.zeros((n, 2), np.int64)
    order = np.random.default_rng(seed).permutation(n)
    for p in order.tolist():
        cx, cy = int(target[p, 0]), int(target[p, 1])
        if free[cx, cy]:
            free[cx, cy] = False
            out[p] = (cx, cy)
            continue
        r = 1
        while True:  # look at rings of growing radius; take the nearest free cell of the first ring with one
            x0, x1, y0, y1 = max(cx - r, 0), min(cx + r, cells - 1), max(cy - r, 0), min(cy + r, cells - 1)
            sub = free[x0:x1 + 1, y0:y1 + 1]
            if sub.any():
                fx, fy = np.nonzero(sub)
                fx, fy = fx + x0, fy + y0
                best = int(np.argmin((fx - cx) ** 2 + (fy - cy) ** 2))
                out[p] = (fx[best], fy[best])
                free[fx[best], fy[best]] = False
                break
            r += 1
    return out


PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120), (152, 223, 138),
           (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (219, 219, 141), (158, 218, 229)]


def render_points_png(points: Sequence[dict[str, Any]], locations: dict[str, str], out: Path | str, thumb: int = 32,
                      grid: bool = True, fill: float = 1.6, max_side: int = 8192, title: str | None = None,
                      cache_dir: Path | None = None, workers: int | None = None, show_progress: bool = False,
                      seed: int = 0) -> tuple[Path, dict[str, int]]:
    """Draw thumbnails at their map positions; returns the PNG path and counts (placed, missing)."""
    from tqdm import tqdm

    from iconoscope.learn.embed import default_workers, prepared_stream

    pts = [p for p in points if locations.get(p["image"])]
    missing = len(points) - len(pts)
    n = len(pts)
    xy = np.array([[p["x"], 1.0 - p["y"]] for p in pts], dtype=np.float64).reshape(-1, 2)  # y up, as on a chart
    if grid:
        cells = max(1, math.ceil(math.sqrt(max(n, 1) * fill)))
        thumb = max(4, min(thumb, max_side // cells))
        pos = snap_to_grid(xy, cells, seed) * thumb if n else np.zeros((0, 2), np.int64)
        side = cells * thumb
    else:
        side = int(min(max_side, max(512, math.sqrt(max(n, 1)) * thumb * 1.4)))
        pos = (xy * (side - thumb)).astype(np.int64)
    top = 28 if title else 0
    pad = thumb // 2
    canvas = Image.new("RGB", (side + 2 * pad, side + 2 * pad + top), (22, 22, 26))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, 8), title, fill=(230, 230, 230))
    placed = 0
    workers = default_workers() if workers is None else workers
    stream = prepared_stream(ThumbPreparer(thumb - 2 if grid else thumb), [locations[p["image"]] for p in pts],
                             workers, cache_dir, chunksize=32)
    for idx, arr, _reason in tqdm(stream, total=n, desc="map thumbnails", unit="img", disable=not show_progress,
                                  dynamic_ncols=True):
        if arr is None:
            missing += 1
            continue
        img = Image.fromarray(arr)
        x, y = int(pos[idx, 0]) + pad, int(pos[idx, 1]) + pad + top
        cl = pts[idx].get("cluster")
        if cl is not None and cl >= 0:
            draw.rectangle([x - 1, y - 1, x + img.width, y + img.height], outline=PALETTE[int(cl) % len(PALETTE)])
        canvas.paste(img, (x + (thumb - 2 - img.width) // 2 if grid else x, y))
        placed += 1
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}.png")
    canvas.save(tmp, "PNG", optimize=False)
    os.replace(tmp, out)
    return out, {"placed": placed, "missing": missing, "side": canvas.width, "thumb": thumb}


def render_map_png(ws: Any, out: Path | str | None = None, spec: str | None = None, thumb: int = 32,
                   grid: bool = True, max_points: int = 40_000, show_progress: bool = False) -> Path:
    """The PixPlot-style PNG of the saved map (``reports/map-{slug}.png`` by default); at most ``max_points``."""
    from iconoscope.explore.vectors import image_locations
    from iconoscope.workspace import slug

    data = load_map(ws, spec)
    points = data["points"]
    if len(points) > max_points:
        rng = np.random.default_rng(0)
        points = [points[i] for i in sorted(rng.choice(len(points), max_points, replace=False).tolist())]
    where = {img: loc for img, (_rec, loc) in image_locations(ws).items()}
    out = Path(out) if out else ws.reports_dir() / f"map-{slug(data['spec'])}.png"
    title = f"{ws.config.name}: {len(points)} images, {data['spec']} ({data['method']})"
    path, _counts = render_points_png(points, where, out, thumb=thumb, grid=grid, title=title,
                                      cache_dir=ws.cache_dir("images"), show_progress=show_progress)
    return path
