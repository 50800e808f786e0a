"""Label derivation: each SPARQL rule on a small hand-made graph, the table format, and the pomological example."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from iconoscope.errors import ConfigError
from iconoscope.graph.terms import nt_iri, nt_literal, triple
from iconoscope.graph.vocab import RDF_TYPE
from iconoscope.ingest.labels import derive_labels, label_counts, write_labels
from iconoscope.thesaurus import load_vocabulary
from iconoscope.workspace import Workspace

B = "https://example.org/l/"
X = "https://example.org/x/"
SK = "http://www.w3.org/2004/02/skos/core#"
ICO = "https://w3id.org/iconoscope/ns#"
DCT = "http://purl.org/dc/terms/"

# fruit > apple > (green apple); fruit > pear; tree ; apple related tree ; bird (another branch)
VOCAB = f"""@prefix skos: <{SK}> . @prefix x: <{X}> .
x:fruit a skos:Concept ; skos:prefLabel "fruit"@en, "fruit"@fr ; skos:notation "F" .
x:apple a skos:Concept ; skos:prefLabel "apple"@en, "pomme"@fr ; skos:broader x:fruit ; skos:related x:tree .
x:green a skos:Concept ; skos:prefLabel "green apple"@en ; skos:broader x:apple .
x:pear a skos:Concept ; skos:prefLabel "pear"@en ; skos:broader x:fruit .
x:tree a skos:Concept ; skos:prefLabel "tree"@en .
x:bird a skos:Concept ; skos:prefLabel "bird"@en .
"""
# record -> (source, subjects)
RECORDS = {
    "r1": ("a", ["green"]), "r2": ("a", ["pear"]), "r3": ("a", ["tree"]), "r4": ("a", ["apple", "bird"]),
    "r5": ("b", ["bird"]), "r6": ("b", []), "r7": ("b", ["fruit"]),
}


def make(root: Path, classifiers: str) -> Workspace:
    root.mkdir(parents=True)
    (root / "v.ttl").write_text(VOCAB, encoding="utf-8")
    (root / "iconoscope.toml").write_text(f"""
[collection]
name = "l"
base_iri = "{B}"
languages = ["en"]
[vocabularies.v]
path = "v.ttl"
{classifiers}
""", encoding="utf-8")
    ws = Workspace(root)
    load_vocabulary(ws, "v")
    by_source: dict[str, list[str]] = {"a": [], "b": []}
    for rid, (src, subjects) in RECORDS.items():
        r, i = nt_iri(ws.iris.record(rid)), nt_iri(ws.iris.image(rid))
        by_source[src] += [triple(r, nt_iri(RDF_TYPE), nt_iri(ICO + "Record")),
                           triple(r, nt_iri(DCT + "identifier"), nt_literal(rid)),
                           triple(r, nt_iri(ICO + "source"), nt_literal(src)),
                           triple(r, nt_iri(ICO + "image"), i),
                           triple(i, nt_iri(ICO + "location"), nt_literal(f"/img/{rid}.jpg"))]
        by_source[src] += [triple(r, nt_iri(DCT + "subject"), nt_iri(X + s)) for s in subjects]
    for src, lines in by_source.items():
        ws.store.replace_graph(ws.iris.source_graph(src), lines)
    return ws


def positives(ws: Workspace, name: str) -> dict[str, list[str]]:
    t = derive_labels(ws, name)
    return {r: [c.removeprefix(X) for c in cs] for r, cs in
            zip(t.column("record").to_pylist(), t.column("categories").to_pylist(), strict=True)}


def test_broader_star_rule_and_table_format(tmp_path: Path) -> None:
    ws = make(tmp_path / "ws", f"""
[classifiers.fruit]
vocabulary = "v"
categories = ["{X}apple", "F", "pear"]
""")
    pos = positives(ws, "fruit")
    # r6 has no subject: not in the table (unknown, not negative); r5's bird and r3's tree are negatives
    assert pos == {"r1": ["apple", "fruit"], "r2": ["fruit", "pear"], "r3": [], "r4": ["apple", "fruit"],
                   "r5": [], "r7": ["fruit"]}
    path = write_labels(ws, "fruit")
    table = pq.read_table(path)
    assert table.column_names == ["record", "record_iri", "image", "image_iri", "location", "categories",
                                  "subjects"]
    # each row's own subjects in the vocabulary: the fine keys of fine_labels heads
    subjects = dict(zip(table.column("record").to_pylist(), table.column("subjects").to_pylist(), strict=True))
    assert subjects == {"r1": [X + "green"], "r2": [X + "pear"], "r3": [X + "tree"], "r4": [X + "apple", X + "bird"],
                        "r5": [X + "bird"], "r7": [X + "fruit"]}
    meta = json.loads(table.schema.metadata[b"iconoscope"])
    assert meta["categories"] == [X + "apple", X + "fruit", X + "pear"]  # notation 'F' and label 'pear' resolved
    assert meta["labels"] == {X + "apple": "apple", X + "fruit": "fruit", X + "pear": "pear"}
    assert len(meta["query_sha256"]) == len(meta["graph_sha256"]) == 64
    assert table.column("location").to_pylist()[0] == "/img/r1.jpg"
    assert [(lbl, n) for _, lbl, n, _ in label_counts(table)] == [("apple", 2), ("fruit", 4), ("pear", 1)]


def test_exact_related_exclude_and_sources_rules(tmp_path: Path) -> None:
    ws = make(tmp_path / "ws", f"""
[classifiers.exact]
vocabulary = "v"
categories = ["{X}apple", "{X}fruit"]
expand = "none"
[classifiers.related]
vocabulary = "v"
categories = ["{X}tree"]
related = true
[classifiers.excl]
vocabulary = "v"
categories = ["{X}fruit"]
exclude = ["{X}bird"]
""")
    assert positives(ws, "exact") == {"r1": [], "r2": [], "r3": [], "r4": ["apple"], "r5": [], "r7": ["fruit"]}
    # related expansion: apple is skos:related to tree, so r4 (apple) becomes a tree positive; r1's 'green apple'
    # is not itself related to anything (relatedness is not inherited down the hierarchy)
    rel = positives(ws, "related")
    assert rel["r3"] == ["tree"] and rel["r4"] == ["tree"] and rel["r1"] == [] and rel["r2"] == []
    excl = positives(ws, "excl")
    assert "r4" not in excl and "r5" not in excl and excl["r1"] == ["fruit"]
    meta = json.loads(derive_labels(ws, "excl").schema.metadata[b"iconoscope"])
    assert meta["excluded_records"] == 2


def test_source_restriction_and_review_decisions_become_labels(tmp_path: Path) -> None:
    ws = make(tmp_path / "ws", f"""
[sources.a]
kind = "csv"
path = "unused.csv"
[sources.b]
kind = "csv"
path = "unused.csv"
[classifiers.b_only]
vocabulary = "v"
categories = ["{X}fruit"]
sources = ["b"]
""")
    assert positives(ws, "b_only") == {"r5": [], "r7": ["fruit"]}
    # a curator accepts 'pear' for r5 in the review graph: the next derivation counts it
    ws.store.add_to_graph(ws.iris.review_graph(), [f"<{ws.iris.record('r5')}> <{DCT}subject> <{X}pear> .\n"])
    assert positives(ws, "b_only") == {"r5": ["fruit"], "r7": ["fruit"]}


def test_unknown_categories_and_missing_vocabulary_are_config_errors(tmp_path: Path) -> None:
    ws = make(tmp_path / "ws", """
[classifiers.bad]
vocabulary = "v"
categories = ["unicorn"]
[classifiers.mm]
head = "multimodal"
targets = ["creator"]
""")
    with pytest.raises(ConfigError, match=r"\[classifiers\.bad\]: category 'unicorn'"):
        derive_labels(ws, "bad")
    with pytest.raises(ConfigError, match="no categories"):
        derive_labels(ws, "mm")
    with pytest.raises(ConfigError, match="no classifier 'nope'"):
        derive_labels(ws, "nope")


@pytest.mark.slow
def test_pomological_example_end_to_end(tmp_path: Path, shared_data: Path) -> None:
    """6,082 records each with its image and a concept; re-ingest stable; genus counts match records.csv."""
    import pandas as pd
    from click.testing import CliRunner

    from iconoscope.cli import cli
    from iconoscope.ingest import ingest_source

    example = Path(__file__).resolve().parents[1] / "examples" / "pomological"
    root = tmp_path / "pomo"
    root.mkdir()
    for name in ("iconoscope.toml", "taxa.ttl", "subjects.csv"):
        shutil.copy(example / name, root / name)
    os.environ["ICONOSCOPE_DATA"] = str(shared_data)
    try:
        ws = Workspace(root)
        rep = ingest_source(ws, "watercolours")
        assert rep.records == rep.images == rep.records_with_subject == 6082 and rep.n_issues == 0
        first = ws.store.count(ws.iris.source_graph("watercolours"))
        n = ws.store.select(f"SELECT (COUNT(DISTINCT ?r) AS ?n) WHERE {{ ?r a <{ICO}Record> ; <{ICO}image> ?i ; "
                            f"<{DCT}subject> ?c . ?i <{ICO}location> ?loc }}").rows[0][0].py()
        assert n == 6082
        assert ingest_source(ws, "watercolours").triples == first
        ws.close()
        r = CliRunner().invoke(cli, ["-w", str(root), "labels", "genera", "--format", "csv"])
        assert r.exit_code == 0, r.output
        got = {line.split(",")[0]: int(line.split(",")[1]) for line in r.output.splitlines()[1:]}
        genus = pd.read_csv(shared_data / "pomological" / "records.csv", dtype=str)["genus"].value_counts()
        assert got == {g: int(genus[g]) for g in got} and len(got) == 10
        r = CliRunner().invoke(cli, ["-w", str(root), "labels", "families", "--format", "csv"])
        fam = {line.split(",")[0]: int(line.split(",")[1]) for line in r.output.splitlines()[1:]}
        assert fam["Vitaceae"] == got["Vitis"] and fam["Rosaceae"] >= got["Malus"] + got["Prunus"] + got["Pyrus"]
    finally:
        os.environ.pop("ICONOSCOPE_DATA", None)
