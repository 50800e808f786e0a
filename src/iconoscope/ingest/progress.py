"""Progress bars for long loads (tqdm on stderr, with rate and ETA; silent when stderr is not a terminal)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def counted(items: Iterable[T], desc: str, unit: str = "triples", total: int | None = None,
            show: bool | None = None) -> Iterator[T]:
    """Yield ``items`` unchanged while a progress bar counts them. ``show=None``: only on a terminal."""
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=None if show is None else not show,
              mininterval=0.5, smoothing=0.1) as bar:
        n = 0
        for item in items:
            yield item
            n += 1
            if n == 4096:
                bar.update(n)
                n = 0
        bar.update(n)
