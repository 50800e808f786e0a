"""IIIF Image API 3.0 (level 0, plus sizes, regions and quarter turns) over the collection's images.

The image routes take an image *id* and resolve its location through the graph, never a path from the request,
so there is no path to traverse. Every answer is re-encoded by Pillow from a decoded image: even if a record
pointed at a file that is not an image, its bytes could never be sent. Derived images are cached on disk under
``cache/iiif`` by (location, file time, request), so thumbnails cost one decode.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from iconoscope.images.decode import ImageError, open_image
from iconoscope.images.fetch import fetch_bytes, iiif_image_url, is_remote
from iconoscope.serve.errors import BadRequest, NotFound

FORMATS = {"jpg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png"), "webp": ("WEBP", "image/webp")}
QUALITIES = ("default", "color", "gray")
EXTRA_FEATURES = ["regionByPct", "regionByPx", "regionSquare", "rotationBy90s", "sizeByConfinedWh", "sizeByH",
                  "sizeByPct", "sizeByW", "sizeByWh"]
MAX_SIDE = 4096
THUMB_SIDES = (150, 300, 600, 1200)

_NUM = r"\d+(?:\.\d+)?"


@dataclass(frozen=True)
class ImageRequest:
    region: str
    size: str
    rotation: int
    quality: str
    fmt: str

    def key(self) -> str:
        return f"{self.region}/{self.size}/{self.rotation}/{self.quality}.{self.fmt}"


def parse_request(region: str, size: str, rotation: str, quality_format: str) -> ImageRequest:
    """Validate the four path parameters; a malformed one is a 400 naming it (IIIF Image API 3.0, 4)."""
    if "." not in quality_format:
        raise BadRequest(f"{quality_format!r}: expected QUALITY.FORMAT, e.g. default.jpg")
    quality, fmt = quality_format.rsplit(".", 1)
    if quality not in QUALITIES:
        raise BadRequest(f"quality {quality!r}: expected one of {', '.join(QUALITIES)}")
    if fmt not in FORMATS:
        raise BadRequest(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if rotation not in ("0", "90", "180", "270"):
        raise BadRequest(f"rotation {rotation!r}: this server rotates by 0, 90, 180 or 270 degrees only")
    if not (region in ("full", "square") or re.fullmatch(r"\d+,\d+,\d+,\d+", region)
            or re.fullmatch(rf"pct:{_NUM},{_NUM},{_NUM},{_NUM}", region)):
        raise BadRequest(f"region {region!r}: expected full, square, x,y,w,h or pct:x,y,w,h")
    if size.startswith("^"):
        raise BadRequest(f"size {size!r}: upscaling (^) is not supported")
    if not (size == "max" or re.fullmatch(r"\d+,|,\d+|\d+,\d+|!\d+,\d+", size)
            or re.fullmatch(rf"pct:{_NUM}", size)):
        raise BadRequest(f"size {size!r}: expected max, w,, ,h, w,h, !w,h or pct:n")
    return ImageRequest(region, size, int(rotation), quality, fmt)


def region_box(region: str, w: int, h: int) -> tuple[int, int, int, int]:
    if region == "full":
        return (0, 0, w, h)
    if region == "square":
        s = min(w, h)
        return ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    if region.startswith("pct:"):
        px, py, pw, ph = (float(v) for v in region[4:].split(","))
        x, y, rw, rh = round(px * w / 100), round(py * h / 100), round(pw * w / 100), round(ph * h / 100)
    else:
        x, y, rw, rh = (int(v) for v in region.split(","))
    if rw <= 0 or rh <= 0 or x >= w or y >= h:
        raise BadRequest(f"region {region!r} lies outside the {w}x{h} image or is empty")
    return (x, y, min(w, x + rw), min(h, y + rh))


def target_size(size: str, w: int, h: int) -> tuple[int, int]:
    """Output size for a region of w x h; never larger than the region (no upscaling)."""
    if size == "max":
        tw, th = w, h
        scale = min(1.0, MAX_SIDE / max(w, h))
        return max(1, round(tw * scale)), max(1, round(th * scale))
    if size.startswith("pct:"):
        p = float(size[4:])
        if not 0 < p <= 100:
            raise BadRequest(f"size {size!r}: a percentage from 0 (excluded) to 100")
        tw, th = round(w * p / 100), round(h * p / 100)
    elif size.startswith("!"):
        bw, bh = (int(v) for v in size[1:].split(","))
        scale = min(bw / w, bh / h, 1.0)
        tw, th = round(w * scale), round(h * scale)
    else:
        a, b = size.split(",")
        if a and b:
            tw, th = int(a), int(b)
        elif a:
            tw = int(a)
            th = round(h * tw / w)
        else:
            th = int(b)
            tw = round(w * th / h)
    if tw > w or th > h:
        raise BadRequest(f"size {size!r}: larger than the {w}x{h} region (upscaling is not supported)")
    if tw < 1 or th < 1:
        raise BadRequest(f"size {size!r}: the result would be empty")
    if max(tw, th) > MAX_SIDE:
        raise BadRequest(f"size {size!r}: at most {MAX_SIDE} pixels a side")
    return tw, th


class ImageSource:
    """Decodes a collection image from its location (local path, URL, or IIIF service) and renders requests."""

    def __init__(self, cache_dir: Path):
        self.cache_dir = Path(cache_dir)

    def _remote_cache(self) -> Path:
        return self.cache_dir / "originals"

    def _stamp(self, location: str) -> str:
        if is_remote(location):
            return "remote"
        try:
            return str(Path(location[7:] if location.startswith("file://") else location).stat().st_mtime_ns)
        except OSError:
            raise NotFound(f"{location}: image file not found") from None

    def _bytes_or_path(self, location: str) -> bytes | Path:
        if is_remote(location):
            try:
                return fetch_bytes(location, self._remote_cache(), timeout_s=20.0)
            except ImageError as e:
                raise NotFound(str(e)) from None
        return Path(location[7:] if location.startswith("file://") else location)

    @staticmethod
    def location_of(location: str | None, service: str | None) -> str:
        if location:
            return location
        if service:
            return iiif_image_url(service)
        raise NotFound("the image has neither a location nor a IIIF service")

    def size(self, location: str) -> tuple[int, int]:
        """(width, height) from the header, without decoding the pixels."""
        src = self._bytes_or_path(location)
        try:
            with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
                return im.size
        except FileNotFoundError:
            raise NotFound(f"{location}: image file not found") from None
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise NotFound(f"{location}: not a readable image ({type(e).__name__})") from None

    def render(self, location: str, req: ImageRequest) -> tuple[bytes, str]:
        """The encoded bytes and media type for a request, from the disk cache when possible."""
        key = hashlib.sha256(f"{location}\0{self._stamp(location)}\0{req.key()}".encode()).hexdigest()
        cached = self.cache_dir / key[:2] / f"{key}.{req.fmt}"
        media = FORMATS[req.fmt][1]
        if cached.is_file():
            return cached.read_bytes(), media
        w, h = self.size(location)
        box = region_box(req.region, w, h)
        bw, bh = box[2] - box[0], box[3] - box[1]
        tw, th = target_size(req.size, bw, bh)
        src = self._bytes_or_path(location)
        try:
            img = open_image(src, min_side=max(tw, th) if req.region == "full" else None, location=location)
        except ImageError as e:
            raise NotFound(str(e)) from None
        if img.size != (w, h):  # JPEG draft decoding scaled it down: scale the box too
            sx, sy = img.size[0] / w, img.size[1] / h
            box = (round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy))
        if box != (0, 0, img.size[0], img.size[1]):
            img = img.crop(box)
        if img.size != (tw, th):
            img = img.resize((tw, th), Image.Resampling.LANCZOS)
        if req.rotation:
            img = img.rotate(-req.rotation, expand=True)
        if req.quality == "gray":
            img = img.convert("L")
        buf = io.BytesIO()
        pil_fmt = FORMATS[req.fmt][0]
        img.save(buf, pil_fmt, **({"quality": 88} if pil_fmt in ("JPEG", "WEBP") else {}))
        data = buf.getvalue()
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(cached)
        return data, media

    def info(self, service_id: str, location: str) -> dict[str, object]:
        """The info.json of an image (IIIF Image API 3.0, level 0 with extra features)."""
        w, h = self.size(location)
        sizes = []
        for side in THUMB_SIDES:
            if side < max(w, h):
                s = side / max(w, h)
                sizes.append({"width": max(1, round(w * s)), "height": max(1, round(h * s))})
        if max(w, h) <= MAX_SIDE:
            sizes.append({"width": w, "height": h})
        info: dict[str, object] = {
            "@context": "http://iiif.io/api/image/3/context.json",
            "id": service_id, "type": "ImageService3", "protocol": "http://iiif.io/api/image", "profile": "level0",
            "width": w, "height": h, "sizes": sizes,
            "extraFormats": ["png", "webp"], "extraQualities": ["color", "gray"], "extraFeatures": EXTRA_FEATURES,
        }
        if max(w, h) > MAX_SIDE:
            s = MAX_SIDE / max(w, h)
            info["maxWidth"], info["maxHeight"] = round(w * s), round(h * s)
        return info
