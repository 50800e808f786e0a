"""Images: locating them (file, HTTP, IIIF), fetching with a cache, decoding fast, hashing.

Every stage that touches pixels goes through :func:`load_image`, so missing, corrupt and remote images are
handled (and reported) the same way everywhere.
"""

from iconoscope.images.decode import ImageError, load_image, open_image
from iconoscope.images.fetch import fetch_bytes, iiif_image_url

__all__ = ["ImageError", "fetch_bytes", "iiif_image_url", "load_image", "open_image"]
