"""Zero-shot plumbing with a tiny random CLIP saved locally: our scores must be the model's own logits."""

from __future__ import annotations

import numpy as np
import pytest
from explore_fixtures import drawn_image, write_graph

WORDS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "a", "picture", "painting", "drawing", "of", "red", "green", "apple",
         "pear", "une", "image", "peinture", "dessin", "de", "pomme", "poire", "."]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> str:
    """A 2-layer CLIP (text + vision) with a word-level tokenizer, saved with save_pretrained."""
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tinyclip") / "clip"
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="[BOS] $A [EOS]", special_tokens=[("[BOS]", 2),
                                                                                                ("[EOS]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]",
                                   eos_token="[EOS]", model_max_length=16)
    cfg = CLIPConfig(
        text_config={"vocab_size": len(WORDS), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 16, "eos_token_id": 3, "bos_token_id": 2,
                     "pad_token_id": 0},
        vision_config={"hidden_size": 32, "image_size": 32, "patch_size": 8, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "intermediate_size": 37},
        projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(cfg).eval().save_pretrained(folder)
    fast.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def clip_ws(tmp_path_factory, tiny_clip):
    from iconoscope.cli.workspace_cmds import init_workspace
    from iconoscope.graph.terms import nt_iri, nt_literal, triple
    from iconoscope.graph.vocab import RDF_TYPE, SKOS
    from iconoscope.learn.embed import embed_images
    from iconoscope.workspace import Workspace

    root = tmp_path_factory.mktemp("zs") / "ws"
    init_workspace(root, name="zs")
    ws = Workspace(root)
    rows = []
    for k in range(12):
        p = root / f"img{k}.png"
        drawn_image(500 + k, (48, 64)).save(p)
        rows.append((f"r{k}", f"r{k}", str(p)))
    write_graph(ws, rows)
    spec = f"hf:{tiny_clip}"
    rep = embed_images(ws, spec, workers=0, show_progress=False)
    assert rep.embedded == 12
    c = nt_iri(RDF_TYPE)
    concepts = {"apple": ("apple", "pomme"), "pear": ("pear", "poire")}
    lines = []
    for key, (en, fr) in concepts.items():
        iri = nt_iri(ws.iris.concept("fruit", key))
        lines += [triple(iri, c, nt_iri(SKOS + "Concept")),
                  triple(iri, nt_iri(SKOS + "prefLabel"), nt_literal(en, lang="en")),
                  triple(iri, nt_iri(SKOS + "prefLabel"), nt_literal(fr, lang="fr"))]
    ws.store.replace_graph(ws.iris.vocab_graph("fruit"), lines)
    yield ws, spec, tiny_clip
    ws.close()


def test_text_search_is_the_models_own_ranking(clip_ws) -> None:
    import torch
    from transformers import AutoTokenizer, CLIPModel

    from iconoscope.explore import text_search
    from iconoscope.learn.embed import EmbeddingStore

    ws, spec, folder = clip_ws
    hits = text_search(ws, "a red apple", k=12)
    assert len(hits) == 12 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # reference: CLIPModel's logits_per_text on the stored image embeddings' own pixels
    model = CLIPModel.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    ids, X = EmbeddingStore(ws, spec).load()
    with torch.inference_mode():
        t = model.get_text_features(**tok(["a red apple"], return_tensors="pt"))
        t = t if isinstance(t, torch.Tensor) else t.pooler_output
    t = t.numpy()[0]
    cos = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (t / np.linalg.norm(t))
    want = [ids[i] for i in np.argsort(-cos)]
    assert [h.image for h in hits] == want
    assert np.allclose([h.score for h in hits], np.sort(cos)[::-1], atol=1e-4)


def test_zero_shot_scores_with_multilingual_prompts(clip_ws) -> None:
    from iconoscope.explore import zero_shot_scores
    from iconoscope.explore.zeroshot import concept_prompts

    ws, _, _ = clip_ws
    res = zero_shot_scores(ws, vocabulary="fruit")
    assert res.scores.shape == (12, 2)
    assert np.allclose(res.scores.sum(axis=1), 1.0, atol=1e-5)  # CLIP: softmax over the concepts
    assert set(res.labels) == {"apple", "pear"}
    apple = next(c for c in res.concepts if c.endswith("/apple"))
    assert "a picture of apple." in res.prompts[apple] and "une image de pomme." in res.prompts[apple]
    only_fr = zero_shot_scores(ws, concepts=[apple, apple.replace("apple", "pear")], languages=["fr"])
    assert only_fr.labels == ["pomme", "poire"] and not np.allclose(only_fr.scores, res.scores)
    assert concept_prompts({"de": ["Apfel"]}, ["en"]) == ["ein Bild von Apfel.", "ein Gemälde von Apfel.", "Apfel"]


def test_zero_shot_errors_are_clear(clip_ws, workspace) -> None:
    from iconoscope.errors import ConfigError, InputError
    from iconoscope.explore import text_search, zero_shot_scores

    ws, _, _ = clip_ws
    with pytest.raises(InputError, match="no skos:prefLabel"):
        zero_shot_scores(ws, concepts=["https://example.org/nothing"])
    with pytest.raises(ConfigError, match="CLIP/SigLIP"):
        text_search(workspace, "apple")  # nothing embedded there
    with pytest.raises(ConfigError, match="hf:"):
        text_search(ws, "apple", spec="builtin:smallcnn")
