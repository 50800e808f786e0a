"""Ingest: tabular/JSONL/RDF/IIIF sources, subject matching, mapping tables, safety (strict, crash, re-ingest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from iconoscope.errors import ConfigError, InputError
from iconoscope.ingest import ingest_all, ingest_source
from iconoscope.ingest.dates import parse_year
from iconoscope.workspace import Workspace

B = "https://example.org/t/"
ICO = "https://w3id.org/iconoscope/ns#"
DCT = "http://purl.org/dc/terms/"
EX = "https://example.org/thes/"

THESAURUS = f"""@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix ex: <{EX}> .
ex:animal a skos:Concept ; skos:prefLabel "animal"@en, "animal"@fr .
ex:dog a skos:Concept ; skos:prefLabel "dog"@en, "chien"@fr ; skos:altLabel "lévrier"@fr ; skos:broader ex:animal .
ex:hare a skos:Concept ; skos:prefLabel "hare"@en, "lièvre"@fr ; skos:broader ex:animal .
ex:hunt a skos:Concept ; skos:prefLabel "hunting"@en, "chasse"@fr ; skos:related ex:dog .
ex:star1 a skos:Concept ; skos:prefLabel "star"@en ; skos:notation "S1" .
ex:star2 a skos:Concept ; skos:altLabel "star"@en, "étoile"@fr ; skos:notation "S2" .
"""


def make_ws(root: Path, sources: str, extra: str = "") -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    (root / "thes.ttl").write_text(THESAURUS, encoding="utf-8")
    (root / "iconoscope.toml").write_text(f"""
[collection]
name = "t"
base_iri = "{B}"
languages = ["fr", "en"]

[vocabularies.thes]
path = "thes.ttl"
format = "skos"

{sources}
{extra}
""", encoding="utf-8")
    return Workspace(root)


def image(path: Path, color: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), color).save(path)
    return path


def rows(ws: Workspace, query: str) -> list[tuple[str | None, ...]]:
    return [tuple(t.value if t is not None else None for t in r) for r in ws.store.select(query).rows]


def objects(ws: Workspace, s: str, p: str) -> set[str]:
    return {r[0] for r in rows(ws, f"SELECT ?o WHERE {{ <{s}> <{p}> ?o }}")}


CSV_SOURCE = """
[sources.cat]
kind = "csv"
path = "records.csv"
images = "img"
subject_parser = "garnier"
subject_lang = "fr"
[sources.cat.fields]
id = "inv"
title = "titre"
creator = "auteur"
date = "date"
subject = "sujet"
image = "fichier"
[sources.cat.extra]
museum = "musee"
"""


def write_csv(root: Path, body: str) -> None:
    (root / "records.csv").write_text("inv,titre,auteur,date,sujet,fichier,musee\n" + body, encoding="utf-8")


# ---- CSV: the graph model --------------------------------------------------------------------------------------

def test_csv_records_follow_the_graph_model(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_ws(root, CSV_SOURCE)
    image(root / "img" / "a.jpg")
    write_csv(root, 'A1,Chasse,"Oudry, J.-B.",4e quart 19e siècle,"scène (chasse : lévrier, Lièvre, licorne)",a.jpg,'
                    "Louvre\n")
    rep = ingest_source(ws, "cat")
    assert (rep.records, rep.images, rep.mentions) == (1, 1, 5)
    assert rep.matched == 3 and rep.matched_by == {"pref": 2, "alt": 1}  # chasse, lièvre (pref), lévrier (alt)
    assert rep.unmatched == 2 and rep.unmatched_texts == {"scène": 1, "licorne": 1}
    r, img = B + "record/A1", B + "image/A1"
    assert objects(ws, r, DCT + "subject") == {EX + "hunt", EX + "dog", EX + "hare"}
    assert objects(ws, r, ICO + "subjectText") == {"scène (chasse : lévrier, Lièvre, licorne)"}
    assert objects(ws, r, ICO + "mention") == {"scène", "chasse", "lévrier", "Lièvre", "licorne"}
    assert objects(ws, r, ICO + "unmatched") == {"scène", "licorne"}
    assert objects(ws, r, ICO + "year") == {"1875"} and objects(ws, r, DCT + "created") == {"4e quart 19e siècle"}
    assert objects(ws, r, DCT + "creator") == {"Oudry, J.-B."}
    assert objects(ws, r, B + "field/museum") == {"Louvre"}
    assert objects(ws, r, ICO + "image") == {img}
    assert objects(ws, img, ICO + "location") == {str((root / "img" / "a.jpg").resolve())}
    assert objects(ws, img, ICO + "record") == {r}
    title = ws.store.select(f"SELECT ?t WHERE {{ <{r}> <{DCT}title> ?t }}").rows[0][0]
    assert title.lang == "fr"  # subject_lang tags titles
    report = json.loads((root / "reports" / "ingest-cat.json").read_text())
    assert report["records"] == 1 and report["top_unmatched"]
    ws.close()


def test_problems_are_reported_with_line_and_do_not_abort(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_ws(root, CSV_SOURCE)
    image(root / "img" / "a.jpg")
    write_csv(root, "A1,t,c,1900,chien,a.jpg,m\n"
                    "A2,t,c,1900,chien,missing.jpg,m\n"          # line 3: image not there
                    "A3,t,c,1900\n"                               # line 4: wrong number of fields
                    "A1,t,c,1900,chien,a.jpg,m\n"                 # line 5: duplicate id
                    'A4,"multi\nline",c,1900,"figure (chien",a.jpg,m\n'  # line 6: unclosed '(' (repaired)
                    ",t,c,1900,chien,a.jpg,m\n")                  # line 8: empty id
    rep = ingest_source(ws, "cat")
    assert rep.records == 3 and rep.images == 2  # A1, A2 (without its image), A4
    text = "\n".join(str(i) for i in rep.issues)
    assert "line 3, record 'A2': image not found" in text
    assert "line 4, record 'A3': malformed row: 4 fields where the header has 7" in text
    assert "line 5, record 'A1': duplicate record id (first seen at line 2" in text
    assert "line 6, record 'A4': subject text: column 8: '(' is never closed" in text
    assert "line 8: empty record id" in text
    assert rep.issue_counts["image not found"] == 1
    assert objects(ws, B + "record/A4", DCT + "subject") == {EX + "dog"}  # what could be read is kept
    ws.close()


def test_strict_stops_at_the_first_problem_and_keeps_the_previous_graph(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_ws(root, CSV_SOURCE)
    image(root / "img" / "a.jpg")
    write_csv(root, "A1,t,c,1900,chien,a.jpg,m\n")
    ingest_source(ws, "cat")
    graph = ws.iris.source_graph("cat")
    before = ws.store.count(graph)
    write_csv(root, "A1,t,c,1900,chien,a.jpg,m\nA2,t,c,1900,chat,gone.jpg,m\n")
    with pytest.raises(InputError, match=r"records\.csv, line 3, record 'A2': image not found"):
        ingest_source(ws, "cat", strict=True)
    assert ws.store.count(graph) == before
    assert ws.store.graphs().count(graph) == 1
    ws.close()


def test_reingest_is_idempotent_and_a_crash_keeps_the_previous_graph(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ws"
    ws = make_ws(root, CSV_SOURCE)
    image(root / "img" / "a.jpg")
    write_csv(root, "".join(f"A{i},t{i},c,19{i:02d},chien ; lièvre,a.jpg,m\n" for i in range(30)))
    first = ingest_source(ws, "cat").triples
    assert ingest_source(ws, "cat").triples == first == ws.store.count()  - ws.store.count(ws.iris.vocab_graph("thes"))
    write_csv(root, "".join(f"A{i},new,c,1900,chien,a.jpg,m\n" for i in range(40)))
    from iconoscope.ingest import records

    real = records.RecordWriter.write
    calls = {"n": 0}

    def dying(self, rec):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 25:
            raise RuntimeError("power cut")
        yield from real(self, rec)

    monkeypatch.setattr(records.RecordWriter, "write", dying)
    with pytest.raises(RuntimeError, match="power cut"):
        ingest_source(ws, "cat")
    monkeypatch.undo()
    graph = ws.iris.source_graph("cat")
    assert ws.store.count(graph) == first
    assert objects(ws, B + "record/A3", DCT + "title") == {"t3"}
    assert not list(root.glob(".iconoscope-spool-*"))
    ws.close()


def test_a_source_with_no_readable_record_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_ws(root, CSV_SOURCE)
    image(root / "img" / "a.jpg")
    write_csv(root, "A1,t,c,1900,chien,a.jpg,m\n")
    ingest_source(ws, "cat")
    write_csv(root, "A1,t\nA2\n")
    with pytest.raises(InputError, match="no record could be read"):
        ingest_source(ws, "cat")
    assert ws.store.count(ws.iris.source_graph("cat")) > 0
    ws.close()


def test_configuration_errors_name_the_key(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_ws(root, CSV_SOURCE.replace('subject_lang = "fr"', 'subject_lang = "fr"\ncheck_imagez = "none"'))
    write_csv(root, "A1,t,c,1900,chien,a.jpg,m\n")
    with pytest.raises(ConfigError, match=r"unknown key.*check_imagez"):
        ingest_source(ws, "cat")
    ws.close()
    ws = make_ws(tmp_path / "ws2", CSV_SOURCE.replace('title = "titre"', 'title = "heading"'))
    write_csv(tmp_path / "ws2", "A1,t,c,1900,chien,a.jpg,m\n")
    with pytest.raises(ConfigError, match="'heading' \\(for title\\) not in the header"):
        ingest_source(ws, "cat")
    with pytest.raises(ConfigError, match="no source 'nope'"):
        ingest_all(ws, ["nope"])
    ws.close()


def test_check_images_decode_finds_corrupt_files(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_ws(root, CSV_SOURCE)
    image(root / "img" / "a.jpg")
    (root / "img" / "bad.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    write_csv(root, "A1,t,c,1900,chien,a.jpg,m\nA2,t,c,1900,chien,bad.jpg,m\n")
    assert ingest_source(ws, "cat").images == 2  # exists: cheap stat only
    rep = ingest_source(ws, "cat", check_images="decode")
    assert rep.images == 1 and "line 3, record 'A2': unreadable image" in str(rep.issues[0])
    ws.close()


# ---- mapping tables and ambiguity ------------------------------------------------------------------------------

def test_mapping_table_wins_and_unknown_concepts_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    src = CSV_SOURCE.replace('subject_parser = "garnier"', 'subject_parser = "list"\nmapping = "map.csv"')
    ws = make_ws(root, src)
    image(root / "img" / "a.jpg")
    (root / "map.csv").write_text(f"text,concept\nchien,{EX}hare\nétoile,S1\nlicorne,{EX}unicorn\n"
                                  "chimère,ZZZ\nbroken\n", encoding="utf-8")
    write_csv(root, "A1,t,c,1900,Chien ; étoile ; star ; licorne,a.jpg,m\n")
    rep = ingest_source(ws, "cat")
    assert objects(ws, B + "record/A1", DCT + "subject") == {EX + "hare", EX + "star1"}
    assert rep.matched_by == {"mapping": 2, "pref": 1} and rep.ambiguous == 0  # "star": prefLabel of star1 only
    text = "\n".join(str(i) for i in rep.issues)
    assert "map.csv, line 4: unknown concept 'https://example.org/thes/unicorn'" in text
    assert "map.csv, line 5: unknown concept 'ZZZ'" in text
    assert "map.csv, line 6: mapping row ['broken'] has 1 column(s)" in text
    ws.close()


def test_ambiguous_labels_are_kept_as_text_unless_asked(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    src = CSV_SOURCE.replace('subject_parser = "garnier"', 'subject_parser = "list"')
    src = src.replace('subject_lang = "fr"', 'subject_lang = "en"')
    ws = make_ws(root, src)
    (root / "thes2.ttl").write_text(f'<{EX}star3> a <http://www.w3.org/2004/02/skos/core#Concept> ; '
                                    f'<http://www.w3.org/2004/02/skos/core#prefLabel> "star"@en .\n')
    image(root / "img" / "a.jpg")
    write_csv(root, "A1,t,c,1900,star,a.jpg,m\n")
    from iconoscope.thesaurus import load_vocabulary

    load_vocabulary(ws, "thes", root / "thes.ttl")
    ws.store.add_to_graph(ws.iris.vocab_graph("thes"), (root / "thes2.ttl"), format="turtle")
    rep = ingest_source(ws, "cat")
    assert rep.ambiguous == 1 and rep.candidates["star"] == [EX + "star1", EX + "star3"]
    assert objects(ws, B + "record/A1", ICO + "unmatched") == {"star"}
    assert not objects(ws, B + "record/A1", DCT + "subject")
    ws.close()


# ---- JSON lines, TSV -------------------------------------------------------------------------------------------

def test_jsonl_nested_fields_lists_and_bad_lines(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_ws(root, """
[sources.j]
kind = "jsonl"
path = "r.jsonl"
images = "img"
subject_lang = "en"
[sources.j.fields]
id = "id"
title = "meta.title"
subject = "subjects"
image = "files"
""")
    image(root / "img" / "1.png")
    image(root / "img" / "2.png")
    (root / "r.jsonl").write_text(
        json.dumps({"id": 7, "meta": {"title": "Hunt"}, "subjects": ["dog", "hare"], "files": ["1.png", "2.png"]})
        + "\n{not json\n[1, 2]\n" + json.dumps({"id": "8", "subjects": "dog"}) + "\n", encoding="utf-8")
    rep = ingest_source(ws, "j")
    assert rep.records == 2 and rep.images == 2
    assert objects(ws, B + "record/7", ICO + "image") == {B + "image/7", B + "image/7-2"}
    assert objects(ws, B + "record/7", DCT + "subject") == {EX + "dog", EX + "hare"}
    text = "\n".join(str(i) for i in rep.issues)
    assert "line 2: not valid JSON" in text and "line 3: expected a JSON object" in text
    ws.close()


def test_tsv_and_image_urls(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_ws(root, """
[sources.t]
kind = "tsv"
path = "r.tsv"
image_separator = "|"
[sources.t.fields]
id = "id"
image = "img"
subject = "subj"
""")
    (root / "r.tsv").write_text("id\timg\tsubj\nX\thttps://img.example.org/x.jpg|https://img.example.org/y.jpg\t"
                                "dog\n", encoding="utf-8")
    rep = ingest_source(ws, "t")
    assert rep.images == 2 and not rep.issues  # URLs are not fetched at ingest
    assert objects(ws, B + "image/X-2", ICO + "location") == {"https://img.example.org/y.jpg"}
    ws.close()


# ---- IIIF --------------------------------------------------------------------------------------------------

V2 = {
    "@context": "http://iiif.io/api/presentation/2/context.json", "@type": "sc:Manifest",
    "@id": "https://iiif.example.org/obj/m2/manifest.json", "label": "A hunting scene",
    "metadata": [{"label": "Artist", "value": "<b>Oudry</b>"}, {"label": "Subject", "value": "chasse; chien"},
                 {"label": "Date", "value": "1735"}],
    "sequences": [{"canvases": [{"@id": "c1", "images": [{"resource": {
        "@id": "https://iiif.example.org/img/m2/full/full/0/default.jpg",
        "service": {"@id": "https://iiif.example.org/img/m2", "profile": "level1"}}}]}]}],
}
V3 = {
    "@context": "http://iiif.io/api/presentation/3/context.json", "type": "Manifest",
    "id": "https://iiif.example.org/obj/m3/manifest", "label": {"fr": ["Lièvre"], "en": ["Hare"]},
    "metadata": [{"label": {"en": ["Maker"]}, "value": {"none": ["Desportes"]}},
                 {"label": {"en": ["Subject"]}, "value": {"fr": ["lièvre"]}}],
    "items": [{"type": "Canvas", "id": "c", "items": [{"type": "AnnotationPage", "items": [{
        "type": "Annotation", "motivation": "painting",
        "body": {"id": "https://iiif.example.org/img/m3/full/max/0/default.jpg", "type": "Image",
                 "service": [{"id": "https://iiif.example.org/img/m3", "type": "ImageService3"}]}}]}]},
              {"type": "Canvas", "id": "c2", "items": [{"type": "AnnotationPage", "items": [{
                  "type": "Annotation", "body": {"id": "https://iiif.example.org/img/m3b.jpg", "type": "Image"}}]}]}],
}


def test_iiif_v2_and_v3_manifests_and_collections(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_ws(root, """
[sources.iiif]
kind = "iiif"
path = "manifests"
subject_lang = "fr"
[sources.iiif.fields]
creator = "Maker"
""")
    d = root / "manifests"
    d.mkdir()
    (d / "m2.json").write_text(json.dumps(V2), encoding="utf-8")
    coll = {"@context": "http://iiif.io/api/presentation/3/context.json", "type": "Collection", "id": "coll",
            "items": [V3]}
    (d / "coll.json").write_text(json.dumps(coll), encoding="utf-8")
    (d / "broken.json").write_text("{", encoding="utf-8")
    rep = ingest_source(ws, "iiif")
    assert rep.records == 2 and rep.images == 3
    assert objects(ws, B + "image/m2", ICO + "iiifService") == {"https://iiif.example.org/img/m2"}
    assert objects(ws, B + "record/m2", DCT + "created") == {"1735"}
    assert objects(ws, B + "record/m2", DCT + "subject") == {EX + "hunt", EX + "dog"}
    assert objects(ws, B + "record/m3", DCT + "creator") == {"Desportes"}
    assert objects(ws, B + "record/m3", DCT + "subject") == {EX + "hare"}
    titles = {(t.value, t.lang) for (t,) in ws.store.select(
        f"SELECT ?t WHERE {{ <{B}record/m3> <{DCT}title> ?t }}").rows}
    assert titles == {("Lièvre", "fr"), ("Hare", "en")}
    assert objects(ws, B + "image/m3-2", ICO + "location") == {"https://iiif.example.org/img/m3b.jpg"}
    assert any("broken.json" in str(i) and "not valid JSON" in str(i) for i in rep.issues)
    ws.close()


# ---- RDF ---------------------------------------------------------------------------------------------------

def test_rdf_source_records_are_reminted_and_matched(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = make_ws(root, """
[sources.lod]
kind = "rdf"
path = "data.ttl"
record_class = "https://schema.org/VisualArtwork"
check_images = "none"
""")
    (root / "data.ttl").write_text(f"""@prefix dct: <http://purl.org/dc/terms/> .
@prefix schema: <https://schema.org/> .
<https://museum.example.org/obj/42> a schema:VisualArtwork ; dct:identifier "P42" ; dct:title "Chasse"@fr ;
    dct:subject "chien", <{EX}hunt> ; schema:image <https://museum.example.org/img/42.jpg> ;
    schema:width "30 cm" .
<https://museum.example.org/person/1> schema:name "Someone" .
""", encoding="utf-8")
    rep = ingest_source(ws, "lod")
    assert rep.records == 1 and rep.images == 1
    r = B + "record/P42"
    assert objects(ws, r, "http://www.w3.org/2002/07/owl#sameAs") == {"https://museum.example.org/obj/42"}
    assert objects(ws, r, DCT + "subject") == {EX + "dog", EX + "hunt"}
    assert objects(ws, r, "https://schema.org/width") == {"30 cm"}
    assert objects(ws, "https://museum.example.org/person/1", "https://schema.org/name") == {"Someone"}
    assert objects(ws, B + "image/P42", ICO + "location") == {"https://museum.example.org/img/42.jpg"}
    (root / "data.ttl").write_text("<a> <b> .", encoding="utf-8")
    with pytest.raises(InputError, match=r"data\.ttl: malformed turtle"):
        ingest_source(ws, "lod")
    assert ws.store.count(ws.iris.source_graph("lod")) > 0
    ws.close()


# ---- dates ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "year"), [
    ("1909", 1909), ("1909.0", 1909), ("ca. 1860-1943", 1860), ("4e quart 19e siècle", 1875),
    ("XIXe siècle", 1800), ("2nd half of the 18th century", 1750), ("Second Empire", None), ("", None)])
def test_parse_year(text: str, year: int | None) -> None:
    assert parse_year(text) == year


def test_ingest_cli_prints_the_report(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from iconoscope.cli import cli

    root = tmp_path / "ws"
    make_ws(root, CSV_SOURCE).close()
    image(root / "img" / "a.jpg")
    write_csv(root, "A1,t,c,1900,chien,a.jpg,m\nA2,t,c,1900,chien,b.jpg,m\n")
    r = CliRunner().invoke(cli, ["-w", str(root), "ingest"])
    assert r.exit_code == 0, r.output
    assert "source 'cat' (csv): 2 records, 1 images" in r.output
    assert "line 3, record 'A2': image not found" in r.output
    r = CliRunner().invoke(cli, ["-w", str(root), "ingest", "--strict"])
    assert isinstance(r.exception, InputError)
