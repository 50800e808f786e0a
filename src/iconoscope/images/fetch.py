"""Fetching remote images (HTTP and IIIF Image API) with an on-disk cache keyed by URL.

The cache makes a second ``embed`` over a IIIF collection cost nothing on the network, and a failed download is
reported with the URL and the HTTP status rather than retried forever.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from iconoscope.images.decode import ImageError


def is_remote(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def iiif_image_url(service: str, size: int | None = None, region: str = "full") -> str:
    """A IIIF Image API request for a service base URL (``max`` when size is None, else ``!size,size``)."""
    base = service.rstrip("/")
    if base.endswith("/info.json"):
        base = base[: -len("/info.json")]
    sz = "max" if size is None else f"!{size},{size}"
    return f"{base}/{region}/{sz}/0/default.jpg"


def fetch_bytes(url: str, cache_dir: Path | None = None, timeout_s: float = 30.0) -> bytes:
    """The bytes at ``url``, from the cache when present; raises ImageError naming the URL and status."""
    import httpx

    cached: Path | None = None
    if cache_dir is not None:
        key = hashlib.sha1(url.encode("utf-8")).hexdigest()
        cached = Path(cache_dir) / key[:2] / key
        if cached.exists():
            return cached.read_bytes()
    try:
        r = httpx.get(url, timeout=timeout_s, follow_redirects=True)
    except httpx.HTTPError as e:
        raise ImageError(url, f"download failed: {e}") from None
    if r.status_code != 200:
        raise ImageError(url, f"HTTP {r.status_code}")
    data = r.content
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(cached)
    return data
