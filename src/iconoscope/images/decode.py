"""Decoding images quickly and failing clearly.

Pillow's draft mode lets the JPEG decoder scale by 1/2, 1/4 or 1/8 while decoding, which is several times faster
than decoding full size and resizing; we ask for it whenever the caller only needs a small image.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from iconoscope.errors import IconoscopeError

Image.MAX_IMAGE_PIXELS = 400_000_000  # large archival scans are legitimate; decompression bombs beyond this are not


class ImageError(IconoscopeError):
    """An image that cannot be read: names the location and the reason."""

    def __init__(self, location: str, reason: str):
        self.location = location
        self.reason = reason
        super().__init__(f"{location}: {reason}")


def open_image(data: bytes | Path | str, min_side: int | None = None, location: str | None = None) -> Image.Image:
    """Decode to RGB. ``min_side``: the smallest side the caller needs (enables JPEG draft decoding)."""
    where = location or (str(data) if not isinstance(data, bytes) else "<bytes>")
    try:
        src = io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise ImageError(where, "file not found") from None
    except OSError as e:
        raise ImageError(where, f"cannot open: {e.strerror}") from None
    try:
        with src:
            img = Image.open(src)
            if min_side and img.format == "JPEG":
                w, h = img.size
                scale = min(w, h) / float(min_side)
                if scale >= 2:
                    img.draft("RGB", (max(1, int(w / scale)), max(1, int(h / scale))))
            img.load()
            return img.convert("RGB") if img.mode != "RGB" else img
    except UnidentifiedImageError:
        raise ImageError(where, "not a recognised image format") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(where, f"corrupt or truncated image ({e})") from None
    except Image.DecompressionBombError as e:
        raise ImageError(where, f"image too large ({e})") from None


def load_image(location: str, cache_dir: Path | None = None, min_side: int | None = None,
               timeout_s: float = 30.0) -> Image.Image:
    """Open an image by location: a local path, ``file://``, ``http(s)://`` (cached) or a IIIF Image service."""
    from iconoscope.images.fetch import fetch_bytes, is_remote

    if is_remote(location):
        return open_image(fetch_bytes(location, cache_dir, timeout_s=timeout_s), min_side, location=location)
    path = location[7:] if location.startswith("file://") else location
    return open_image(Path(path), min_side, location=location)
