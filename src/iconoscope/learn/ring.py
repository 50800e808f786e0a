"""Decoded images handed from worker processes to the network through shared memory, not a pipe.

``multiprocessing.Pool.imap`` pickles every result: a worker serialises the 0.6 MB float32 array of one 224-px view
(0.32 ms), writes it to a pipe, and the main process reads and unpickles it (0.11 ms) while the network waits for
the CPU. On two cores that traffic is taken from the network itself (``bench/embed.py``). Here the workers write
each prepared image straight into a slot of an anonymous shared mapping created before they fork, and send back
only ``(index, slot, failure reason)``.

Slots are reused: item ``i`` goes to slot ``i % slots``. The feeder that hands items to the pool waits on a semaphore
before it gives out an item, and the consumer releases one permit each time it asks for the next item, so a worker
never writes into a slot the consumer may still be reading. Hence the contract: **an array yielded here is valid
until the consumer asks for the next item**; copy it (``run_backbone`` copies it into its batch) to keep it.

Only preparers that declare their output (``layout``, ``into``, ``wrap``: :class:`~iconoscope.learn.backbones.base.
Preparer` and the concat one) and the ``fork`` start method (Linux) use this path; others keep the pickling one.
"""

from __future__ import annotations

import itertools
import mmap
import multiprocessing as mp
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

#: ring arrays by token; set in the parent before the pool forks, so every worker inherits the same mappings
_RINGS: dict[int, list[np.ndarray]] = {}
_TOKENS = itertools.count()

#: the most shared memory one stream may map; chunks shrink to fit it when an image is large (many views)
RING_BYTES = 256 << 20


def supports_ring(preparer: Any) -> bool:
    """Whether ``preparer`` declares its output so that workers can write it in place."""
    return all(hasattr(preparer, a) for a in ("layout", "into", "wrap")) and "fork" in mp.get_all_start_methods()


def ring_size(layout: Sequence[tuple[tuple[int, ...], str]], workers: int, chunksize: int, ahead: int = 0,
              budget: int | None = None) -> tuple[int, int]:
    """``(chunksize, slots)``: room for ``ahead`` images (the consumer's batch) plus two chunks per worker, within
    ``budget`` bytes.

    The consumer takes a whole batch before it runs the network; if the ring held less, the workers would stop while
    the network runs and the network would then wait for them (measured: 0.7 ms per image lost with 32 slots for a
    batch of 64). The feeder must also be able to complete the chunk that holds the item the consumer waits for, so
    ``slots`` is always at least one chunk plus one."""
    budget = RING_BYTES if budget is None else budget
    slot_bytes = sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in layout)
    cap = max(2, budget // max(1, slot_bytes))
    chunk = max(1, min(chunksize, cap // (4 * workers)))
    return chunk, max(chunk + 1, min(cap, ahead + 2 * workers * chunk))


def _prepare_slot(item: tuple[int, str, int], preparer: Any, token: int, cache_dir: str | None
                  ) -> tuple[int, int, str | None]:
    """Worker: decode one image and prepare it into its slot; a failure comes back as a reason, never raised."""
    idx, location, slot = item
    img, reason = open_in_worker(location, cache_dir, preparer.min_side)
    if reason is not None:
        return idx, slot, reason
    try:
        preparer.into(img, [a[slot] for a in _RINGS[token]])
    except Exception as e:  # a failure on one image must never stop the run
        return idx, slot, f"{type(e).__name__}: {e}"
    return idx, slot, None


def ring_stream(preparer: Any, locations: Sequence[str], workers: int, cache_dir: str | None = None,
                chunksize: int = 16, ahead: int = 0, initializer: Callable[[], None] | None = None
                ) -> Iterator[tuple[int, Any, str | None]]:
    """``(index, prepared or None, failure reason)`` in input order, prepared by ``workers`` forked processes.
    The arrays are valid until the next item is requested; ``ahead``: how many items the consumer gathers before it
    is busy elsewhere (its batch size), so that the workers can go on meanwhile."""
    layout = preparer.layout
    chunk, slots = ring_size(layout, workers, chunksize, ahead)
    arrays = [np.frombuffer(mmap.mmap(-1, slots * int(np.prod(shape)) * np.dtype(dtype).itemsize),
                            dtype=dtype).reshape(slots, *shape) for shape, dtype in layout]
    token = next(_TOKENS)
    _RINGS[token] = arrays
    free = threading.Semaphore(slots)
    stop = threading.Event()

    def feed() -> Iterator[tuple[int, str, int]]:
        # runs in the pool's task-handler thread: blocks there, never in the consumer
        for i, loc in enumerate(locations):
            free.acquire()
            if stop.is_set():
                return
            yield i, loc, i % slots

    fn = partial(_prepare_slot, preparer=preparer, token=token, cache_dir=cache_dir)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "fork in a multi-threaded process": see embed
            pool = mp.get_context("fork").Pool(workers, initializer=initializer)
        with pool:
            try:
                for idx, slot, reason in pool.imap(fn, feed(), chunksize=chunk):
                    yield idx, (preparer.wrap([a[slot] for a in arrays]) if reason is None else None), reason
                    free.release()  # the consumer is done with this slot: it asked for the next item
            finally:
                stop.set()
                free.release(slots + 1)  # wake a feeder waiting for a slot, so the pool can shut down
    finally:
        _RINGS.pop(token, None)


def open_in_worker(location: str, cache_dir: str | None, min_side: int | None) -> tuple[Any, str | None]:
    """``(image, None)`` or ``(None, reason)``: the decoding step of every worker, which must never raise."""
    from iconoscope.images import ImageError, load_image

    try:
        if not location:
            raise ImageError("(none)", "the image has no location (ico:location) and no IIIF service")
        return load_image(location, Path(cache_dir) if cache_dir else None, min_side=min_side), None
    except ImageError as e:
        return None, e.reason
    except Exception as e:  # a failure on one image must never stop the run
        return None, f"{type(e).__name__}: {e}"
