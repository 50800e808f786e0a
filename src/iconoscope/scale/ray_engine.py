"""``--engine ray``: batch inference (embed, predict) with Ray Data and an actor pool per backbone.

Why actors: loading a backbone costs far more than one batch, so each actor loads it once (``make_backbone()``) and
then embeds batch after batch; Ray Data streams the image list to the pool, keeps every actor busy, and streams the
results back to the driver, which writes them as they come. Decoding happens inside the actor, next to the network:
shipping decoded ``[3, 224, 224]`` float arrays through the object store would move ~600 KB per image instead of a
path, which on CPU clusters costs more than it saves (on GPU clusters a separate CPU decode stage pays off; see
docs/scaling.md).

Same outputs and resumability as the local engine (``iconoscope.learn.embed.embed_pending``): the same
``EmbeddingStore`` shards, written every ``flush_every`` images as results arrive, so an interrupted run keeps what
it finished and the next run embeds only what is missing; the same per-image failure reasons (the actors use the
local engine's own image loader).

Where the cluster is: ``address`` or ``RAY_ADDRESS`` (``ray start --head`` on the head node prints it); without
either, a local single-node Ray is started for the run. A process that is already connected (``ray.init``) is reused.
Every node must have Iconoscope installed and see the image locations and backbone files at the same paths (or
URLs).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from iconoscope.errors import ConfigError, IconoscopeError

DEFAULT_CPUS_PER_ACTOR = 1
ACTOR_START_TIMEOUT_S = 300


@contextlib.contextmanager
def ray_connection(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Connected to a Ray cluster for the duration (disconnects only if it connected)."""
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray[data] is a dependency
        raise ConfigError(f"engine 'ray' needs the ray[data] package: {e}") from None
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False,
                              "configure_logging": True}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = address or "a local Ray instance"
        raise IconoscopeError(f"cannot connect to the Ray cluster at {where}: {e} (set RAY_ADDRESS to the head's "
                              "address as printed by 'ray start --head')") from None
    try:
        yield ray
    finally:
        ray.shutdown()


class ImageBatch(NamedTuple):
    """Results for some inputs: their ``idx``, ``vectors`` (zeros where ``reasons`` is non-empty), ``nodes``, and
    when the actor started and ended that work (``span``, epoch seconds)."""

    idx: np.ndarray
    vectors: np.ndarray
    reasons: list[str]
    nodes: list[str]
    span: tuple[float, float]


class ImageActor:
    """One pool member: holds a backbone (and optionally a head) and turns batches of image locations into rows.

    Output per input row: ``idx`` (as given), ``vector`` (float32 embedding, or class scores when a head is given;
    zeros for a failed image), ``reason`` (empty, or why the image could not be read), ``node`` (the Ray node that
    did the work) and ``started``/``ended`` (wall-clock time of the batch): what benchmarks need to tell the
    throughput of a running pool from the time it takes to start.
    """

    def __init__(self, make_backbone: Callable[[], Any], make_head: Callable[[], Any] | None = None,
                 cache_dir: str | None = None):
        threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        if threads > 0:  # Ray sets OMP_NUM_THREADS to the actor's CPUs: torch should use exactly those
            with contextlib.suppress(ImportError):
                import torch

                torch.set_num_threads(threads)
        self.backbone = make_backbone()
        self.head = make_head() if make_head is not None else None
        self.cache_dir = cache_dir
        import ray

        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from iconoscope.learn.embed import _prepare_one  # the local engine's loader: identical failure reasons

        started = time.time()

        preparer = self.backbone.preparer
        prepared: list[np.ndarray] = []
        ok = np.zeros(len(batch["idx"]), dtype=bool)
        reasons = []
        for k, location in enumerate(batch["location"]):
            _, arr, reason = _prepare_one((k, str(location)), preparer, self.cache_dir)
            if arr is None:
                reasons.append(reason or "unknown error")
            else:
                prepared.append(arr)
                ok[k] = True
                reasons.append("")
        X = self.backbone.forward_prepared(prepared)
        if self.head is not None and len(X):
            X = np.asarray(self.head.predict_proba(X), dtype=np.float32)
        width = X.shape[1] if len(X) else self._width()
        out = np.zeros((len(ok), width), dtype=np.float32)
        out[ok] = X
        n = len(ok)
        return {"idx": np.asarray(batch["idx"]), "vector": out, "reason": np.asarray(reasons, dtype=object),
                "node": np.full(n, self.node, dtype=object), "started": np.full(n, started),
                "ended": np.full(n, time.time())}

    def _width(self) -> int:
        """Output width when no image of a batch could be read (nothing went through the network)."""
        if self.head is not None:
            classes = getattr(self.head, "categories", None)
            return len(classes if classes is not None else self.head.classes_)
        return int(self.backbone.dim)


def map_images(locations: Sequence[str], make_backbone: Callable[[], Any], *,
               make_head: Callable[[], Any] | None = None, batch_size: int = 64, workers: int | None = None,
               cpus_per_actor: float = DEFAULT_CPUS_PER_ACTOR,
               cache_dir: Path | None = None, address: str | None = None
               ) -> Iterator[ImageBatch]:
    """Stream ``ImageBatch`` results for ``locations``, computed by a pool of ``ImageActor``.

    ``workers``: actors in the pool (default: as many as the cluster's CPUs allow at ``cpus_per_actor`` each).
    Batches arrive in completion order, not input order; ``indices`` say which inputs they hold.
    """
    if not locations:
        return
    with ray_connection(address) as ray:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the caller shows one bar for the whole run
        ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        # start only once the whole pool is up: otherwise the first actor to load its model takes every batch of a
        # short job, and a cluster too small for the pool fails with a clear error instead of waiting forever
        ctx.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S
        if workers is None:
            cpus = float(ray.cluster_resources().get("CPU", 1))
            workers = max(1, int(cpus // cpus_per_actor))
        if workers < 1:
            raise ConfigError(f"workers = {workers}: expected at least 1 actor")
        n = len(locations)
        blocks = max(workers, min(4096, -(-n // batch_size)))
        ds = ray.data.from_items([{"idx": i, "location": str(loc)} for i, loc in enumerate(locations)],
                                 override_num_blocks=blocks)
        ds = ds.map_batches(ImageActor, fn_constructor_args=(make_backbone, make_head,
                                                             str(cache_dir) if cache_dir else None),
                            batch_size=batch_size, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=cpus_per_actor)
        try:
            batches = iter(ds.iter_batches(batch_size=None, batch_format="numpy"))
            first = next(batches, None)
        except ray.exceptions.GetTimeoutError:
            raise IconoscopeError(f"the Ray cluster could not start {workers} actor(s) of {cpus_per_actor:g} CPU each "
                                  f"within {ACTOR_START_TIMEOUT_S} s (cluster CPUs: "
                                  f"{ray.cluster_resources().get('CPU', 0):g}); ask for fewer workers") from None
        for out in itertools.chain([first] if first is not None else [], batches):
            yield ImageBatch(np.asarray(out["idx"], dtype=np.int64), np.asarray(out["vector"], dtype=np.float32),
                             [str(r) for r in out["reason"]], [str(n) for n in out["node"]],
                             (float(np.min(out["started"])), float(np.max(out["ended"]))))


def embed_pending(ws: Any, spec: str, pending: Sequence[Any], store: Any, make_backbone: Callable[[], Any],
                  batch_size: int = 64, workers: int | None = None, flush_every: int = 2048,
                  show_progress: bool = True, address: str | None = None) -> Any:
    """The Ray engine behind ``embed_images(..., engine="ray")``: same signature and outputs as the local engine."""
    from tqdm import tqdm

    from iconoscope.learn.embed import EmbedReport

    report = EmbedReport(spec=spec, total=len(pending))
    t0 = time.perf_counter()
    buf_idx: list[np.ndarray] = []
    buf_X: list[np.ndarray] = []
    fails: list[tuple[str, str, str, str]] = []

    def write() -> None:
        if buf_idx:
            idx = np.concatenate(buf_idx)
            X = np.concatenate(buf_X, axis=0)
            store.append([pending[i].image for i in idx], [pending[i].record for i in idx], X)
            report.embedded += len(idx)
            report.dim = int(X.shape[1])
            buf_idx.clear()
            buf_X.clear()
        if fails:
            store.add_failures(fails)
            fails.clear()

    cache = ws.cache_dir("images") if hasattr(ws, "cache_dir") else None
    with tqdm(total=len(pending), desc=f"embed {spec[:40]} (ray)", unit="img", disable=not show_progress,
              dynamic_ncols=True) as bar:
        try:
            for idx, X, reasons, _, _ in map_images([p.location for p in pending], make_backbone,
                                                 batch_size=batch_size, workers=workers, cache_dir=cache,
                                                 address=address):
                ok = np.array([not r for r in reasons], dtype=bool)
                for i, r in zip(idx[~ok], (r for r in reasons if r), strict=True):
                    p = pending[int(i)]
                    fails.append((p.image, p.record, p.location, r))
                    report.failures.append((p.image, r))
                if ok.any():
                    buf_idx.append(idx[ok])
                    buf_X.append(X[ok])
                if sum(len(b) for b in buf_idx) >= flush_every:
                    write()
                bar.update(len(idx))
        finally:
            write()  # an interrupted run keeps every finished batch
    report.failed = len(report.failures)
    report.seconds = time.perf_counter() - t0
    return report


def score_images(locations: Sequence[str], make_backbone: Callable[[], Any], make_head: Callable[[], Any], *,
                 batch_size: int = 64, workers: int | None = None, cache_dir: Path | None = None,
                 address: str | None = None, show_progress: bool = True
                 ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Class scores for images, computed by actors holding a backbone and a head (``predict --engine ray``).

    Returns ``(ok_indices, scores [len(ok_indices), C], failures {index: reason})``, indices into ``locations`` in
    ascending order, ready for ``iconoscope.enrich.write.write_run``.
    """
    from tqdm import tqdm

    parts_idx: list[np.ndarray] = []
    parts_S: list[np.ndarray] = []
    failures: dict[int, str] = {}
    with tqdm(total=len(locations), desc="predict (ray)", unit="img", disable=not show_progress,
              dynamic_ncols=True) as bar:
        for idx, S, reasons, _, _ in map_images(locations, make_backbone, make_head=make_head, batch_size=batch_size,
                                             workers=workers, cache_dir=cache_dir, address=address):
            ok = np.array([not r for r in reasons], dtype=bool)
            failures.update({int(i): r for i, r in zip(idx, reasons, strict=True) if r})
            parts_idx.append(idx[ok])
            parts_S.append(S[ok])
            bar.update(len(idx))
    if not parts_idx:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32), failures
    idx = np.concatenate(parts_idx)
    S = np.concatenate(parts_S, axis=0)
    order = np.argsort(idx, kind="stable")
    return idx[order], S[order], failures
