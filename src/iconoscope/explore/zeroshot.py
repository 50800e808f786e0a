"""Zero-shot search and categories with a CLIP or SigLIP model (``hf:`` backbones).

The image side is the collection's embeddings made by the learning stage with ``hf:MODEL`` (layer ``embeds``: the
image tower's projection into the joint space); this module adds the text tower of the same checkpoint:

* ``text_search(ws, "a pear cut in half")``: the images whose embeddings are nearest to the text's;
* ``zero_shot_scores(ws, vocabulary=..., concepts=...)``: a score per image and concept, where each concept's text
  embedding is the mean over prompts built from its SKOS prefLabels in the collection's languages ("a picture of
  {label}", "une image de {label}", ...; prompt ensembling as in the CLIP paper). CLIP scores are a softmax over the
  concepts (the model's own logit scale); SigLIP scores are independent sigmoids (its scale and bias).

Real checkpoints for users (nothing is downloaded here; put them in the Hugging Face cache or a folder first):
``hf:openai/clip-vit-base-patch32``, ``hf:openai/clip-vit-large-patch14``, ``hf:google/siglip-base-patch16-224``,
``hf:google/siglip2-base-patch16-224``; multilingual prompts work best with a multilingual text tower
(e.g. ``hf:google/siglip-base-patch16-256-multilingual``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError, InputError
from iconoscope.explore.index import normalize
from iconoscope.explore.similar import SimilarHit

TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": ("a picture of {}.", "a painting of {}.", "a drawing of {}.", "{}"),
    "fr": ("une image de {}.", "une peinture de {}.", "un dessin de {}.", "{}"),
    "de": ("ein Bild von {}.", "ein Gemälde von {}.", "{}"),
    "nl": ("een afbeelding van {}.", "een schilderij van {}.", "{}"),
    "it": ("un'immagine di {}.", "un dipinto di {}.", "{}"),
    "es": ("una imagen de {}.", "una pintura de {}.", "{}"),
}
ZERO_SHOT_TYPES = ("clip", "siglip", "siglip2")


@dataclass
class TextTower:
    """The text half of a CLIP/SigLIP checkpoint: texts -> unit vectors in the joint space."""

    spec: str
    model_type: str
    model: Any = field(repr=False)
    tokenizer: Any = field(repr=False)
    logit_scale: float = 100.0
    logit_bias: float = 0.0

    def encode(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        import torch

        out = []
        pad: dict[str, Any] = {"padding": "max_length", "max_length": 64} if self.model_type.startswith("siglip") \
            else {"padding": True}
        with torch.inference_mode():
            for s in range(0, len(texts), batch):
                enc = self.tokenizer(list(texts[s:s + batch]), truncation=True, return_tensors="pt", **pad)
                feats = self.model.get_text_features(**enc)
                if not isinstance(feats, torch.Tensor):  # transformers 5 returns an output object
                    feats = feats.pooler_output
                out.append(feats.float().numpy())
        if not out:
            return np.zeros((0, 0), np.float32)
        return normalize(np.concatenate(out))

    def scores(self, image_vectors: np.ndarray, text_vectors: np.ndarray) -> np.ndarray:
        """[N, C] zero-shot scores: softmax over concepts (CLIP) or independent sigmoids (SigLIP)."""
        logits = self.logit_scale * (normalize(image_vectors) @ text_vectors.T) + self.logit_bias
        if self.model_type.startswith("siglip"):
            return 1.0 / (1.0 + np.exp(-logits))
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


_TOWERS: dict[tuple[str, str], TextTower] = {}
_LOCK = threading.Lock()


def _target(ws: Any, spec: str) -> str:
    from iconoscope.learn.backbones import workspace_target
    from iconoscope.learn.backbones.spec import parse_spec

    parsed = parse_spec(spec)
    if parsed.kind != "hf":
        raise ConfigError(f"zero-shot needs an hf: CLIP or SigLIP backbone, not {spec!r}")
    return workspace_target(parsed, ws)


def text_tower(ws: Any, spec: str) -> TextTower:
    """The (cached) text tower of ``spec``'s checkpoint; a clear error when it is not CLIP/SigLIP or not local."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    target = _target(ws, spec)
    with _LOCK:
        if (spec, target) in _TOWERS:
            return _TOWERS[(spec, target)]
    import transformers as T

    try:
        config = T.AutoConfig.from_pretrained(target)
    except Exception as e:
        raise ConfigError(f"zero-shot {spec!r}: cannot load a transformers config from {target!r} (a local folder "
                          f"or a model already in the Hugging Face cache; nothing is downloaded): "
                          f"{str(e).splitlines()[0]}") from None
    if config.model_type not in ZERO_SHOT_TYPES:
        raise ConfigError(f"zero-shot {spec!r}: a {config.model_type!r} model has no text tower; use a CLIP or "
                          "SigLIP checkpoint (e.g. hf:openai/clip-vit-base-patch32)")
    try:
        model = T.AutoModel.from_pretrained(target).eval()
        tokenizer = T.AutoTokenizer.from_pretrained(target)
    except Exception as e:
        raise ConfigError(f"zero-shot {spec!r}: cannot load the model or tokenizer from {target!r}: "
                          f"{str(e).splitlines()[0]}") from None
    scale = float(model.logit_scale.exp().item()) if hasattr(model, "logit_scale") else 100.0
    bias = float(model.logit_bias.item()) if getattr(model, "logit_bias", None) is not None else 0.0
    tower = TextTower(spec, config.model_type, model, tokenizer, scale, bias)
    with _LOCK:
        _TOWERS[(spec, target)] = tower
    return tower


def zero_shot_spec(ws: Any, spec: str | None = None) -> str:
    """The embedded hf: backbone to use: ``spec``, the default backbone, or the only hf: one with embeddings."""
    from iconoscope.explore.vectors import pick_embedded, vector_specs

    if spec:
        return spec
    have = [s for s in vector_specs(ws) if s.startswith("hf:")]
    picked = pick_embedded(ws, have)
    if picked:
        return picked
    if not have:
        raise ConfigError(f"{ws.root}: zero-shot needs image embeddings from a CLIP/SigLIP model; run e.g. "
                          "'iconoscope embed --backbone hf:openai/clip-vit-base-patch32' (a local copy) first")
    raise ConfigError(f"{ws.root}: several hf: backbones are embedded ({', '.join(have)}); say which with --backbone")


def _check_dims(spec: str, image_dim: int, text_dim: int) -> None:
    if image_dim != text_dim:
        raise ConfigError(f"zero-shot {spec!r}: image embeddings have dim {image_dim}, the text tower {text_dim}; "
                          "the images must be embedded with layer=embeds (the joint image-text space)")


def text_search(ws: Any, text: str, k: int = 10, spec: str | None = None) -> list[SimilarHit]:
    """The ``k`` records whose images best match ``text`` (cosine in the CLIP/SigLIP joint space)."""
    from iconoscope.explore.similar import similar_to_vector
    from iconoscope.explore.vectors import open_collection

    if not text.strip():
        raise ConfigError("zero-shot: the search text is empty")
    spec = zero_shot_spec(ws, spec)
    tower = text_tower(ws, spec)
    q = tower.encode([text])[0]
    _check_dims(spec, open_collection(ws, spec).index.dim, len(q))
    return similar_to_vector(ws, q, k, spec)


def concept_prompts(labels: dict[str, list[str]], languages: Sequence[str],
                    templates: dict[str, Sequence[str]] | None = None) -> list[str]:
    """Prompts for one concept from its prefLabels by language (``""`` = no language tag), in ``languages`` order.

    Labels in languages outside ``languages`` are used only when the concept has none in them.
    """
    templates = templates or TEMPLATES
    langs = [lang for lang in languages if labels.get(lang)]
    if not langs:
        langs = sorted(labels)
    prompts: list[str] = []
    for lang in langs:
        for label in labels.get(lang, []):
            for t in templates.get(lang, templates.get("en", ("{}",))) if lang else ("{}",):
                p = t.format(label)
                if p not in prompts:
                    prompts.append(p)
    return prompts


@dataclass
class ZeroShotResult:
    spec: str
    images: list[str]
    records: list[str]
    concepts: list[str]
    labels: list[str]
    scores: np.ndarray = field(repr=False)  # [N images, C concepts]
    prompts: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def top(self, n: int = 3) -> list[tuple[str, str, list[tuple[str, str, float]]]]:
        """Per image: (record, image, [(concept, label, score)] best first)."""
        out = []
        order = np.argsort(-self.scores, axis=1, kind="stable")[:, :n]
        for r, (img, rec) in enumerate(zip(self.images, self.records, strict=True)):
            out.append((rec, img, [(self.concepts[c], self.labels[c], float(self.scores[r, c])) for c in order[r]]))
        return out


def concept_labels(ws: Any, concepts: Sequence[str] | None = None, vocabulary: str | None = None
                   ) -> dict[str, dict[str, list[str]]]:
    """concept IRI -> {language: [prefLabels]} for listed concepts or every concept of a vocabulary."""
    from iconoscope.graph.queries import IRI, Raw, load, values_iris

    if not concepts and not vocabulary:
        raise ConfigError("zero-shot: name the categories (--concept IRI ..., --vocabulary NAME or --classifier NAME)")
    q = load("explore_concept_labels", concepts=values_iris(concepts) if concepts else Raw("UNDEF"),
             graph=IRI(ws.iris.vocab_graph(vocabulary)) if vocabulary else Raw("UNDEF"))
    out: dict[str, dict[str, list[str]]] = {}
    for row in ws.store.select(q).dicts():
        labels = out.setdefault(str(row["concept"]), {})
        lst = labels.setdefault(str(row.get("lang") or ""), [])
        if row["label"] not in lst:
            lst.append(str(row["label"]))
    for c in concepts or []:
        if c not in out:
            raise InputError("zero-shot", "no skos:prefLabel for this concept in the graph (is its vocabulary "
                             "loaded?)", record=c)
    if not out:
        raise InputError("zero-shot", f"vocabulary {vocabulary!r} has no concepts with a prefLabel in the graph "
                         "(run 'iconoscope vocab load' first)")
    return out


def zero_shot_scores(ws: Any, concepts: Sequence[str] | None = None, vocabulary: str | None = None,
                     spec: str | None = None, languages: Sequence[str] | None = None,
                     templates: dict[str, Sequence[str]] | None = None) -> ZeroShotResult:
    """Scores of every embedded image for each concept (see the module docstring for how they are made)."""
    from iconoscope.explore.vectors import load_matrix

    spec = zero_shot_spec(ws, spec)
    labels = concept_labels(ws, concepts, vocabulary)
    order = list(concepts) if concepts else sorted(labels)
    languages = list(languages or ws.config.languages)
    tower = text_tower(ws, spec)
    prompts = {c: concept_prompts(labels[c], languages, templates) for c in order}
    flat = [p for c in order for p in prompts[c]]
    T = tower.encode(flat)
    centroids = np.zeros((len(order), T.shape[1]), np.float32)
    s = 0
    for i, c in enumerate(order):
        n = len(prompts[c])
        centroids[i] = T[s:s + n].mean(axis=0)
        s += n
    centroids = normalize(centroids)
    spec, images, records, X = load_matrix(ws, spec)
    _check_dims(spec, X.shape[1], centroids.shape[1])
    scores = tower.scores(X, centroids)
    shown = []
    for c in order:
        by_lang = labels[c]
        lang = next((lg for lg in languages if by_lang.get(lg)), next(iter(by_lang)))
        shown.append(by_lang[lang][0])
    return ZeroShotResult(spec, images, records, order, shown, scores.astype(np.float32), prompts)
