"""Thesauri: Iconclass text format, SKOS files, CSV trees, `vocab` CLI, and the multilingual label matcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from iconoscope.errors import ConfigError, IconoscopeError, InputError
from iconoscope.thesaurus import build_label_index, concept_info, load_vocabulary, normalize, resolve_concept
from iconoscope.thesaurus.matching import LabelIndex

SKOS = "http://www.w3.org/2004/02/skos/core#"
IC = "http://iconclass.org/"


def write_iconclass(root: Path, notations: str | None = None) -> Path:
    """A tiny Iconclass text distribution with the real layout."""
    (root / "txt" / "en").mkdir(parents=True)
    (root / "txt" / "fr").mkdir(parents=True)
    (root / "kw" / "en").mkdir(parents=True)
    (root / "notations.txt").write_text(notations or (
        "N 2\nC 25\n$\nN 25\nC 25G\n$\nN 25G\nC 25G21\n; 25G3\nR 41A\n$\nN 25G21\nC 25G21(APPLE)\n$\n"
        "N 25G21(APPLE)\nK 25Gk\n$\nN 25G3\n$\nN 41A\n$\n"), encoding="utf-8")
    (root / "txt" / "en" / "txt_en_2_3.txt").write_text(
        "2|Nature\n25|earth\n25G|plants\n25G21|fruits\n25G21(APPLE)|fruits: apple\n25G3|trees\n41A|housing\n"
        "99Z|not in the base system\n", encoding="utf-8")
    (root / "txt" / "en" / "txt_en_keys.txt").write_text("25Gk1|ignored key label\n", encoding="utf-8")
    (root / "txt" / "fr" / "txt_fr_2_3.txt").write_text(
        "25G21(APPLE)|fruits : pomme\n25G3|arbres\n", encoding="utf-8")
    (root / "kw" / "en" / "kw_en_2_3.txt").write_text(
        "25G21(APPLE)|apple\n25G21(APPLE)|Apple\n25G3|tree\n25G21|fruits\n", encoding="utf-8")
    return root


def triples_of(ws, graph: str) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    res = ws.store.select(f"SELECT ?s ?p ?o WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
    return {(r[0].value, r[1].value, r[2].value) for r in res.rows}


# ---- Iconclass ---------------------------------------------------------------------------------------------------

def test_iconclass_text_format_becomes_skos(workspace, tmp_path: Path) -> None:
    folder = write_iconclass(tmp_path / "ic")
    rep = load_vocabulary(workspace, "ic", folder)
    assert rep.format == "iconclass"
    assert rep.concepts == 7 and rep.top_concepts == 2  # 2 and 41A (its parents are not in this sample)
    assert rep.pref_labels == {"en": 7, "fr": 2}
    assert rep.alt_labels == 2  # 'apple' once (case duplicates folded), 'tree'; 'fruits' equals the prefLabel
    t = triples_of(workspace, workspace.iris.vocab_graph("ic"))
    apple = IC + "25G21(APPLE)"
    assert (apple, SKOS + "broader", IC + "25G21") in t
    assert (IC + "25G21", SKOS + "narrower", apple) in t
    assert (IC + "25G", SKOS + "related", IC + "41A") in t and (IC + "41A", SKOS + "related", IC + "25G") in t
    assert (apple, SKOS + "notation", "25G21(APPLE)") in t
    info = concept_info(workspace, "ic", "25G21(APPLE)")
    assert info.pref == {"en": "fruits: apple", "fr": "fruits : pomme"}
    assert info.chains == [[apple, IC + "25G21", IC + "25G", IC + "25", IC + "2"]]
    assert concept_info(workspace, "ic", "25G").narrower_all == 3


def test_iconclass_malformed_is_reported_or_raised_and_keeps_the_previous_graph(workspace, tmp_path: Path) -> None:
    good = write_iconclass(tmp_path / "good")
    load_vocabulary(workspace, "ic", good)
    before = workspace.store.count(workspace.iris.vocab_graph("ic"))
    bad = write_iconclass(tmp_path / "bad", "N 2\nC 25\n$\n; 25X\nN 25\nX oops\n$\nN 25\n$\n")
    with pytest.raises(InputError, match=r"notations\.txt, line 4: continuation line"):
        load_vocabulary(workspace, "ic", bad, strict=True)
    assert workspace.store.count(workspace.iris.vocab_graph("ic")) == before
    rep = load_vocabulary(workspace, "ic", bad)  # lenient: loads what is readable and lists each problem
    problems = [str(i) for i in rep.issues]
    assert any("line 4: continuation line" in p for p in problems)
    assert any("line 6: unknown field 'X'" in p for p in problems)
    assert any("'25' is defined twice" in p for p in problems)
    assert rep.concepts == 2


def test_iconclass_folder_without_notations_is_a_config_error(workspace, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not an Iconclass text distribution"):
        load_vocabulary(workspace, "ic", tmp_path / "empty", "iconclass")


@pytest.mark.slow
def test_whole_iconclass_loads(workspace, shared_data: Path) -> None:
    rep = load_vocabulary(workspace, "iconclass", shared_data / "iconclass", "iconclass")
    assert rep.concepts >= 40_000
    assert rep.pref_labels["en"] >= 40_000 and rep.pref_labels["fr"] >= 40_000
    assert rep.alt_labels > 100_000
    info = concept_info(workspace, "iconclass", "25G21(APPLE)")
    chain = [c.removeprefix(IC) for c in info.chains[0]]
    assert chain == ["25G21(APPLE)", "25G21(...)", "25G21", "25G2", "25G", "25", "2"]
    index = build_label_index(workspace, ["iconclass"])
    assert index.lookup("fruits : pomme", "fr").concepts == (IC + "25G21(APPLE)",)
    assert index.lookup("pomme", "fr").how == "ambiguous"  # a keyword of 15 notations: never guessed


# ---- SKOS files --------------------------------------------------------------------------------------------------

TTL = """@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix ex: <https://example.org/t/> .
ex:animal a skos:Concept ; skos:prefLabel "animal"@en, "animal"@fr .
ex:dog a skos:Concept ; skos:prefLabel "dog"@en, "chien"@fr ; skos:altLabel "hound"@en ; skos:broader ex:animal .
ex:cat skos:prefLabel "cat"@en ; skos:broader ex:animal ; skos:related ex:dog .
"""


@pytest.mark.parametrize("suffix", [".ttl", ".rdf", ".jsonld", ".nt"])
def test_skos_files_in_every_rdf_syntax(workspace, tmp_path: Path, suffix: str) -> None:
    import pyoxigraph as ox

    fmt = {".ttl": ox.RdfFormat.TURTLE, ".rdf": ox.RdfFormat.RDF_XML, ".jsonld": ox.RdfFormat.JSON_LD,
           ".nt": ox.RdfFormat.N_TRIPLES}[suffix]
    path = tmp_path / f"t{suffix}"
    path.write_bytes(ox.serialize(ox.parse(TTL, format=ox.RdfFormat.TURTLE), format=fmt))
    rep = load_vocabulary(workspace, "t", path)
    assert rep.format == "skos" and rep.concepts == 3  # ex:cat has no rdf:type but is linked: typed for it
    t = triples_of(workspace, workspace.iris.vocab_graph("t"))
    ex = "https://example.org/t/"
    assert (ex + "animal", SKOS + "narrower", ex + "dog") in t  # materialised inverse
    assert (ex + "cat", SKOS + "inScheme", workspace.iris.scheme("t")) in t  # joined the default scheme
    assert resolve_concept(workspace, "t", "chien") == ex + "dog"
    assert resolve_concept(workspace, "t", ex + "cat") == ex + "cat"


def test_malformed_turtle_names_file_and_line_and_keeps_previous(workspace, tmp_path: Path) -> None:
    good = tmp_path / "good.ttl"
    good.write_text(TTL, encoding="utf-8")
    load_vocabulary(workspace, "t", good)
    bad = tmp_path / "bad.ttl"
    bad.write_text(TTL + "ex:x skos:prefLabel .\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.ttl: malformed turtle: .*line 6"):
        load_vocabulary(workspace, "t", bad)
    assert resolve_concept(workspace, "t", "hound").endswith("/dog")


# ---- CSV trees ---------------------------------------------------------------------------------------------------

def test_csv_tree_with_header_languages_and_polyhierarchy(workspace, tmp_path: Path) -> None:
    path = tmp_path / "tree.csv"
    path.write_text("id,label,parent,lang\nfruit,fruit,,en\nfruit,fruit,,fr\napple,apple,fruit,en\n"
                    "apple,pomme,,fr\napple,eating apple,,en\ntree,tree,,en\napple,,tree,\n", encoding="utf-8")
    rep = load_vocabulary(workspace, "tree", path)
    assert rep.format == "csv" and rep.concepts == 3 and rep.top_concepts == 2
    assert rep.pref_labels == {"en": 3, "fr": 2} and rep.alt_labels == 1
    apple = workspace.iris.concept("tree", "apple")
    info = concept_info(workspace, "tree", "apple")
    assert info.iri == apple and info.pref == {"en": "apple", "fr": "pomme"} and info.alt == {"en": ["eating apple"]}
    assert sorted(c[1] for c in info.chains) == [workspace.iris.concept("tree", "fruit"),
                                                 workspace.iris.concept("tree", "tree")]


def test_csv_tree_problems_are_reported_with_lines(workspace, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a;A;c\nb;B;a\nc;C;b\nd;D;zzz\n;E;a\n", encoding="utf-8")  # no header, ';', cycle a>c>b>a
    with pytest.raises(InputError, match=r"bad\.csv, line 5: empty id"):
        load_vocabulary(workspace, "x", path, strict=True)
    assert workspace.iris.vocab_graph("x") not in workspace.store.graphs()
    rep = load_vocabulary(workspace, "x", path)
    problems = " | ".join(str(i) for i in rep.issues)
    assert "cycle" in problems and "line 5: empty id" in problems and "line 4: parent 'zzz' of 'd'" in problems
    assert rep.concepts == 4 and rep.broader == 2  # one link of the cycle and the dangling one dropped


def test_unknown_vocabulary_path_and_format(workspace, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no path"):
        load_vocabulary(workspace, "nothing")
    with pytest.raises(ConfigError, match="not found"):
        load_vocabulary(workspace, "x", tmp_path / "missing.ttl")
    with pytest.raises(ConfigError, match="not loaded"):
        build_label_index(workspace, ["x"])


# ---- label matching ----------------------------------------------------------------------------------------------

def test_normalize_folds_case_accents_apostrophes_and_spacing() -> None:
    assert normalize("  Étoile  d’Or ") == "etoile d'or"
    assert normalize("fruits : POMME") == normalize("Fruits: pomme") == "fruits: pomme"
    assert normalize("Œuvre (?)") == "oeuvre"


def test_matching_tiers_ambiguity_and_mapping() -> None:
    idx = LabelIndex()
    idx.add("c:apple", "pomme", "fr", "pref")
    idx.add("c:eve", "pomme", "fr", "alt")
    idx.add("c:dog", "chien", "fr", "pref")
    idx.add("c:dog", "dog", "en", "pref")
    idx.add("c:hound", "Dog", "fr", "alt")
    idx.add("c:star1", "star", "en", "alt")
    idx.add("c:star2", "star", "en", "alt")
    idx.add("c:chat-fr", "chat", "fr", "pref")
    idx.add("c:chat-en", "chat", "en", "pref")
    assert idx.lookup("Pommé", "fr").concepts == ("c:apple",)  # prefLabel beats the altLabel
    assert idx.lookup("DOG", "fr").concepts == ("c:dog",)  # prefLabel in any language beats altLabel in French
    assert idx.lookup("chat", "fr").concepts == ("c:chat-fr",)  # the mention's language first
    assert idx.lookup("chat", None).how == "ambiguous"
    amb = idx.lookup("star", "en")
    assert amb.how == "ambiguous" and not amb.matched and amb.candidates == ("c:star1", "c:star2")
    assert idx.lookup("licorne", "fr").how == "none"
    idx.add_mapping("star", ["c:star2"])
    assert idx.lookup("Star", "en").concepts == ("c:star2",) and idx.lookup("star").how == "mapping"
    every = LabelIndex(ambiguous="all")
    every.add("c:a", "x", "en", "alt")
    every.add("c:b", "x", "en", "alt")
    assert every.lookup("x", "en").concepts == ("c:a", "c:b")


def test_vocab_cli_load_show_list(workspace, tmp_path: Path) -> None:
    from iconoscope.cli import cli

    path = tmp_path / "t.ttl"
    path.write_text(TTL, encoding="utf-8")
    runner = CliRunner()
    ws = ["-w", str(workspace.root)]
    workspace.close()  # the CLI opens the store itself
    r = runner.invoke(cli, [*ws, "vocab", "load", "t", str(path)])
    assert r.exit_code == 0, r.output
    assert "3 concepts" in r.output
    r = runner.invoke(cli, [*ws, "vocab", "show", "t", "chien"])
    assert r.exit_code == 0, r.output
    assert "prefLabel @fr: chien" in r.output and "altLabel  @en: hound" in r.output
    assert "broader: dog  <  animal" in r.output
    r = runner.invoke(cli, [*ws, "vocab", "list"])
    assert r.output.splitlines()[2].split() == ["t", "19"]
    r = runner.invoke(cli, [*ws, "vocab", "show", "t", "unicorn"])
    assert isinstance(r.exception, IconoscopeError) and "unicorn" in str(r.exception)


def test_report_serialises(workspace, tmp_path: Path) -> None:
    folder = write_iconclass(tmp_path / "ic")
    rep = load_vocabulary(workspace, "ic", folder)
    d = json.loads(json.dumps(rep.as_dict()))
    assert d["concepts"] == 7 and d["triples"] == rep.triples > 0


def test_label_index_is_cached_by_content_and_invalidated_by_a_reload(workspace, tmp_path: Path) -> None:
    path = tmp_path / "t.ttl"
    path.write_text(TTL, encoding="utf-8")
    load_vocabulary(workspace, "t", path)
    first = build_label_index(workspace, ["t"])
    cached = list((workspace.root / "cache" / "label-index").glob("*.pickle"))
    assert len(cached) == 1
    again = build_label_index(workspace, ["t"])
    assert again.lookup("hound", "en").concepts == first.lookup("hound", "en").concepts == ("https://example.org/t/dog",)
    path.write_text(TTL.replace('"hound"@en', '"hunting dog"@en'), encoding="utf-8")
    load_vocabulary(workspace, "t", path)
    fresh = build_label_index(workspace, ["t"])
    assert fresh.lookup("hound", "en").how == "none" and fresh.lookup("hunting dog", "en").matched
