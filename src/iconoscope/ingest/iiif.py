"""IIIF Presentation manifests (API 2 and 3) as records: label, metadata pairs, canvases and image services.

The source ``path`` is a manifest file, a collection file (its manifests embedded, or referenced by id: a local
file of the same name beside it, else fetched over HTTP through the workspace cache), or a folder of ``*.json``
files. One manifest is one record:

* ``id``: the metadata value named by ``fields.id`` if given, else the manifest id's last meaningful path segment
  (``https://x.org/iiif/abc/manifest.json`` -> ``abc``);
* ``title``: the label (every language of a v3 language map, tagged);
* other fields: ``fields.creator = "Artist"`` names a metadata label (case-insensitive); without a mapping the
  usual labels are tried (Creator/Artist/Author, Date, Medium/Technique, Subject);
* images: one per canvas (the painting annotation's body, v3; the image resource, v2), with its image service.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from iconoscope.config import SourceConfig
from iconoscope.errors import ConfigError
from iconoscope.ingest.records import ImageRef, Record
from iconoscope.ingest.report import IngestReport

DEFAULT_LABELS = {
    "creator": ("creator", "artist", "author", "auteur", "maker"),
    "date": ("date", "created", "date created", "datation"),
    "medium": ("medium", "technique", "materials", "material"),
    "subject": ("subject", "subjects", "sujet", "depicts"),
}
_TAG = re.compile(r"<[^>]+>")


def _texts(value: Any) -> list[tuple[str, str | None]]:
    """(text, language) pairs from a v2 value (string, {"@value", "@language"}, list) or a v3 language map."""
    if value is None:
        return []
    if isinstance(value, str):
        text = _TAG.sub("", value).strip()
        return [(text, None)] if text else []
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, dict):
        if "@value" in value:
            lang = value.get("@language")
            return [(t, lang) for t, _ in _texts(value["@value"])]
        out = []
        for lang, vals in value.items():
            out.extend((t, None if lang in ("none", "@none") else lang) for t, _ in _texts(vals))
        return out
    return [(str(value), None)]


def _id(obj: Any) -> str | None:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        v = obj.get("id") or obj.get("@id")
        return v if isinstance(v, str) else None
    return None


def _type(obj: dict[str, Any]) -> str:
    t = obj.get("type") or obj.get("@type") or ""
    return (t[0] if isinstance(t, list) and t else str(t)).split(":")[-1]


def record_id_from(manifest_id: str) -> str:
    """The last path segment that is not 'manifest'/'manifest.json'."""
    parts = [p for p in urlparse(manifest_id).path.split("/") if p]
    while parts and parts[-1].lower() in ("manifest", "manifest.json", "iiif"):
        parts.pop()
    if not parts:
        return manifest_id
    last = parts[-1]
    return last[:-5] if last.lower().endswith(".json") else last


def _service(obj: dict[str, Any]) -> str | None:
    svc = obj.get("service")
    if isinstance(svc, list):
        svc = svc[0] if svc else None
    return _id(svc)


def canvas_images(manifest: dict[str, Any]) -> list[ImageRef]:
    """One image per canvas, v3 (items/AnnotationPage/Annotation body) or v2 (sequences/canvases/images)."""
    out: list[ImageRef] = []
    if "items" in manifest:
        for canvas in manifest.get("items") or []:
            if not isinstance(canvas, dict) or _type(canvas) != "Canvas":
                continue
            for page in canvas.get("items") or []:
                for anno in (page.get("items") or []) if isinstance(page, dict) else []:
                    body = anno.get("body") if isinstance(anno, dict) else None
                    if isinstance(body, list):
                        body = body[0] if body else None
                    if isinstance(body, dict) and _type(body) == "Choice":
                        items = body.get("items") or []
                        body = items[0] if items else None
                    loc = _id(body)
                    if isinstance(body, dict) and loc:
                        out.append(ImageRef(loc, _service(body)))
                        break
                else:
                    continue
                break
    for seq in manifest.get("sequences") or []:
        for canvas in (seq.get("canvases") or []) if isinstance(seq, dict) else []:
            for img in (canvas.get("images") or []) if isinstance(canvas, dict) else []:
                res = img.get("resource") if isinstance(img, dict) else None
                loc = _id(res)
                if isinstance(res, dict) and loc:
                    out.append(ImageRef(loc, _service(res)))
                    break
    return out


class IIIFReader:
    def __init__(self, cfg: SourceConfig, report: IngestReport, cache_dir: Path | None = None):
        self.cfg = cfg
        self.report = report
        self.cache_dir = cache_dir
        self.extra: dict[str, str] = dict(cfg.options.get("extra", {}))

    # ---- loading JSON
    def _load(self, where: str, base: Path | None) -> tuple[dict[str, Any] | None, str]:
        """A JSON document from a path or URL (a referenced manifest: a local file of that name first)."""
        if where.startswith(("http://", "https://")):
            if base is not None:
                local = base / Path(urlparse(where).path).name
                if local.is_file():
                    return self._read(local), str(local)
            from iconoscope.images import fetch_bytes
            from iconoscope.images.decode import ImageError

            try:
                return json.loads(fetch_bytes(where, self.cache_dir)), where
            except (ImageError, ValueError) as e:
                self.report.issue(f"cannot fetch manifest {where}: {e}", kind="unreadable manifest", source=where)
                return None, where
        return self._read(Path(where)), where

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            self.report.issue(f"cannot read: {e.strerror}", kind="unreadable manifest", source=str(path))
            return None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            line = getattr(e, "lineno", None)
            self.report.issue(f"not valid JSON: {getattr(e, 'msg', e)}", line=line, kind="unreadable manifest",
                              source=str(path))
            return None
        if not isinstance(doc, dict):
            self.report.issue("not a IIIF manifest or collection (not a JSON object)", kind="unreadable manifest",
                              source=str(path))
            return None
        return doc

    def _manifests(self) -> Iterator[tuple[dict[str, Any], str]]:
        path = Path(self.cfg.path)
        if not path.exists():
            raise ConfigError(f"source '{self.cfg.name}': not found: {path}")
        files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        for f in files:
            doc = self._read(f)
            if doc is not None:
                yield from self._expand(doc, str(f), f.parent, depth=0)

    def _expand(self, doc: dict[str, Any], where: str, base: Path | None,
                depth: int) -> Iterator[tuple[dict[str, Any], str]]:
        kind = _type(doc)
        if kind == "Manifest":
            yield doc, where
            return
        if kind != "Collection" or depth > 5:
            self.report.issue(f"not a IIIF Manifest or Collection (type {kind or 'missing'!r}; skipped)",
                              kind="unreadable manifest", source=where)
            return
        members = list(doc.get("manifests") or []) + list(doc.get("collections") or []) + list(doc.get("items") or [])
        for m in members:
            if not isinstance(m, dict):
                continue
            if _type(m) == "Manifest" and ("items" in m or "sequences" in m):
                yield m, where  # embedded
                continue
            ref = _id(m)
            if not ref:
                continue
            sub, sub_where = self._load(ref, base)
            if sub is not None:
                yield from self._expand(sub, sub_where, base, depth + 1)

    # ---- records
    def _metadata(self, manifest: dict[str, Any]) -> dict[str, list[tuple[str, str | None]]]:
        out: dict[str, list[tuple[str, str | None]]] = {}
        for pair in manifest.get("metadata") or []:
            if not isinstance(pair, dict):
                continue
            labels = _texts(pair.get("label"))
            values = _texts(pair.get("value"))
            for label, _ in labels[:1]:
                out.setdefault(label.strip().lower(), []).extend(values)
        return out

    def __iter__(self) -> Iterator[Record]:
        fields = self.cfg.fields
        for man, where in self._manifests():
            meta = self._metadata(man)

            def field(name: str, meta: dict[str, list[tuple[str, str | None]]] = meta) -> list[str]:
                if name in fields:
                    return [t for t, _ in meta.get(fields[name].strip().lower(), [])]
                for label in DEFAULT_LABELS.get(name, ()):
                    if label in meta:
                        return [t for t, _ in meta[label]]
                return []

            mid = _id(man) or ""
            rid = (field("id") or [""])[0] if "id" in fields else record_id_from(mid) if mid else ""
            if not rid:
                self.report.issue("manifest without an id (skipped)", record=None, kind="empty id", source=where)
                continue
            rec = Record(id=rid, line=None, origin=where)
            rec.title = _texts(man.get("label"))
            if "title" in fields:
                rec.title = meta.get(fields["title"].strip().lower(), rec.title)
            rec.creator, rec.date, rec.medium, rec.subject = (field("creator"), field("date"), field("medium"),
                                                              field("subject"))
            rec.images = canvas_images(man)
            if not rec.images:
                self.report.issue("manifest has no canvas with an image", record=rid, kind="no image", source=where)
            for name, label in self.extra.items():
                vals = [t for t, _ in meta.get(label.strip().lower(), [])]
                if vals:
                    rec.extra[name] = vals
            yield rec
