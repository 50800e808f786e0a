"""Exploration on a real (small) workspace: similar items, duplicates, clusters, map, feedback, the CLI verbs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from explore_fixtures import SPEC, build, drawn_image, write_graph
from PIL import Image

from iconoscope.errors import InputError


@pytest.fixture(scope="module")
def explore_ws(tmp_path_factory):
    from iconoscope.cli.workspace_cmds import init_workspace
    from iconoscope.workspace import Workspace

    root = tmp_path_factory.mktemp("explore") / "ws"
    init_workspace(root, name="explore")
    ws = Workspace(root)
    info = build(ws, root / "images")
    yield ws, info
    ws.close()


def _vectors(ws):
    from iconoscope.learn.embed import EmbeddingStore

    ids, X = EmbeddingStore(ws, SPEC).load()
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    return ids, Xn


def test_similar_ranks_records_by_cosine_and_excludes_the_query(explore_ws) -> None:
    from iconoscope.explore import similar

    ws, _ = explore_ws
    hits = similar(ws, "b3", k=5)
    assert len(hits) == 5 and all(h.record != "b3" for h in hits)
    ids, Xn = _vectors(ws)
    S = Xn @ Xn[ids.index("b3")]
    want = [ids[i] for i in np.argsort(-S) if ids[i] not in ("b3", "m-1", "m-2")][:5]
    got = [h.image for h in hits if h.record != "multi"]
    assert got == [w for w in want if w in got]
    assert {h.record for h in hits[:2]} == {"b3-r", "b3-w"}  # its copies first
    assert np.allclose([h.score for h in hits if h.record != "multi"],
                       [S[ids.index(i)] for i in got], atol=1e-5)
    assert hits[0]._asdict()["record"] == hits[0][0]


def test_similar_by_record_merges_its_images(explore_ws) -> None:
    from iconoscope.explore import similar

    ws, _ = explore_ws
    hits = similar(ws, "multi", k=6)
    records = [h.record for h in hits]
    assert "multi" not in records and len(records) == len(set(records))
    assert set(records[:3]) == {"b0", "b0-r", "b0-w"}  # m-1 is a copy of b0
    with pytest.raises(InputError, match="nope"):
        similar(ws, "nope")


def test_similar_to_file_finds_the_same_picture(explore_ws, tmp_path) -> None:
    from iconoscope.explore import similar_to_file

    ws, _ = explore_ws
    path = tmp_path / "query.png"
    Image.open(ws.root / "images" / "b7.jpg").save(path)
    hits = similar_to_file(ws, path, k=3)
    assert hits[0].record in ("b7", "b7-r", "b7-w") and hits[0].score > 0.999


def test_index_follows_the_embeddings_incrementally(explore_ws) -> None:
    from iconoscope.explore.vectors import INDEX_DIR, open_collection
    from iconoscope.learn.embed import EmbeddingStore

    ws, _ = explore_ws
    coll = open_collection(ws)
    assert open_collection(ws) is coll  # unchanged embeddings: the cached index
    n = len(coll.index)
    store = EmbeddingStore(ws, SPEC)
    _, X = store.load()
    store.append(["extra-1"], ["extra"], X[:1] * 0.5 + X[1:2])
    try:
        again = open_collection(ws)
        assert again is not coll and len(again.index) == n + 1 and "extra-1" in again.index
        assert again.record("extra-1") == "extra"
        meta = json.loads((ws.vectors_dir(SPEC) / INDEX_DIR / "meta.json").read_text())
        assert meta["count"] == n + 1
    finally:  # leave the shared workspace as it was
        last = sorted(store.dir.glob("part-*.npy"))[-1]
        last.unlink()
        last.with_suffix(".parquet").unlink()
    assert len(open_collection(ws).index) == n


def test_duplicates_by_hash_find_every_planted_family(explore_ws, tmp_path) -> None:
    from iconoscope.explore.duplicates import find_duplicates, write_review

    ws, info = explore_ws
    rep = find_duplicates(ws, use_embeddings=False)
    groups = {frozenset(g.images) for g in rep.groups}
    for fam in info["families"][1:]:
        assert frozenset(fam) in groups
    assert frozenset([*info["families"][0], "m-1"]) in groups  # the multi-image record's copy joins b0
    assert not rep.failures and rep.spec is None
    assert all(p.kind in ("exact", "near-exact") and p.thumb is not None for g in rep.groups for p in g.pairs)
    csv_path = write_review(rep.groups, tmp_path / "dups.csv")
    with open(csv_path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["group"] for r in rows} == {str(g.id) for g in rep.groups}
    assert all(int(r["phash"]) <= 10 for r in rows)
    html = write_review(rep.groups, tmp_path / "dups.html").read_text()
    assert html.count("<section") == len(rep.groups) and "data:image/jpeg;base64," in html


def test_duplicates_with_embeddings_and_a_broken_image(explore_ws, tmp_path) -> None:
    from iconoscope.explore import duplicate_groups
    from iconoscope.explore.duplicates import Rules, find_duplicates

    ws, info = explore_ws
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    write_graph(ws, [("broken", "broken", str(bad))], source="extra")
    try:
        # thresholds depend on the backbone and the collection: the defaults are measured on pomological with
        # MobileNetV2; this 32-image collection of unrelated drawings and a random-init CNN needs stricter ones
        rules = Rules(margin_min=0.4, cosine_min=0.85)
        rep = find_duplicates(ws, rules=rules)
        assert rep.failures.keys() == {"broken"} and "not a recognised image" in rep.failures["broken"]
        fams = [set(f) for f in info["families"]]
        for g in rep.groups:  # no group mixes two planted families
            assert sum(bool(set(g.images) & f) for f in fams) == 1
        only_emb = find_duplicates(ws, rules=rules, use_hashes=False)
        assert {frozenset(g.images) for g in only_emb.groups} == \
            {frozenset(f) for f in info["families"][1:]} | {frozenset([*info["families"][0], "m-1"])}
        assert all(p.kind == "near-duplicate" and p.margin >= 0.4 for g in only_emb.groups for p in g.pairs)
        cached = ws.vectors_dir(SPEC) / "explore" / "duplicate_pairs.npz"
        assert cached.exists()
        as_dicts = duplicate_groups(ws, use_embeddings=False)
        assert as_dicts and {"records", "images", "pairs", "kinds"} <= set(as_dicts[0])
    finally:
        ws.store.drop_graph(ws.iris.source_graph("extra"))


def test_clusters_and_map(explore_ws, tmp_path) -> None:
    from iconoscope.explore import build_map, load_map, render_map_png
    from iconoscope.explore.clusters import cluster_collection, load_clusters

    ws, info = explore_ws
    rep = cluster_collection(ws, ks=(2, 10), min_sizes=(3,))
    assert [s.name for s in rep.settings] == ["kmeans:2", "kmeans:10", "hdbscan:3"]
    assert all(s.silhouette is None or -1 <= s.silhouette <= 1 for s in rep.settings)
    assert rep.chosen is max(rep.settings, key=lambda s: s.rank_score)
    labels = load_clusters(ws)
    assert set(labels) == set(info["images"])
    data = build_map(ws, method="pca")
    assert load_map(ws) == json.loads(json.dumps(data))
    pts = data["points"]
    assert len(pts) == len(info["images"])
    assert all(0 <= p["x"] <= 1 and 0 <= p["y"] <= 1 and p["cluster"] == labels[p["image"]] for p in pts)
    png = render_map_png(ws, tmp_path / "map.png", thumb=24)
    img = Image.open(png)
    assert img.width >= 24 * 6 and img.getextrema() != ((22, 22), (22, 22), (26, 26))


def test_feedback_rank_and_save_category(explore_ws) -> None:
    from iconoscope.explore import feedback_rank, save_category
    from iconoscope.graph.queries import IRI, load

    ws, info = explore_ws
    fam = info["families"][4]
    hits = feedback_rank(ws, [fam[0]], ["b1", "b2"], limit=5)
    assert {h.image for h in hits[:3]} == set(fam)
    out = save_category(ws, "Family four", [fam[0]], ["b1"], agent="alice", max_items=5)
    out2 = save_category(ws, "Family four", [fam[0]], ["b1"], agent="alice", max_items=5)
    assert out2["triples"] == out["triples"]  # re-saving replaces, never duplicates
    rows = ws.store.select(load("explore_feedback_categories", scheme=IRI(ws.iris.scheme("feedback")))).dicts()
    assert len(rows) == 1 and rows[0]["label"] == "Family four" and 1 <= rows[0]["images"] <= 5
    ask = f"ASK {{ <{out['run']}> <https://w3id.org/iconoscope/ns#positiveExample> <{ws.iris.image(fam[0])}> }}"
    assert ws.store.ask(ask)


def test_cli_verbs(explore_ws, tmp_path) -> None:
    from click.testing import CliRunner

    from iconoscope.cli import cli

    ws, info = explore_ws
    run = CliRunner().invoke
    w = ["-w", str(ws.root)]
    ws.close()  # the CLI opens the store itself
    r = run(cli, [*w, "similar", "b2", "--k", "3", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert {d["record"] for d in json.loads(r.stdout)[:2]} == {"b2-r", "b2-w"}
    r = run(cli, [*w, "similar", "missing-id"])
    assert r.exit_code != 0
    r = run(cli, [*w, "index", "--kind", "exact"])
    assert r.exit_code == 0 and "exact index" in r.output
    out = tmp_path / "dups.csv"
    r = run(cli, [*w, "duplicates", "--no-embeddings", "-o", str(out)])
    assert r.exit_code == 0, r.output
    with open(out, encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) >= 2 * len(info["families"])
    r = run(cli, [*w, "feedback", "--session", "t", "--reset", "-p", "b5", "--limit", "4", "--format", "json"])
    assert r.exit_code == 0, r.output
    r = run(cli, [*w, "feedback", "--session", "t", "-n", "b6,b7", "--limit", "4", "--format", "json"])
    assert r.exit_code == 0 and "round 2" in r.output
    r = run(cli, [*w, "clusters", "--k", "2,3", "--min-size", "", "--format", "csv"])
    assert r.exit_code == 0 and "kmeans:3" in r.output
    r = run(cli, [*w, "map", "--method", "pca", "--png", str(tmp_path / "m.png"), "--thumb", "16"])
    assert r.exit_code == 0 and (tmp_path / "m.png").exists()


def test_drawn_images_differ() -> None:
    """The fixture's bases must be clearly different pictures, or the duplicate tests prove nothing."""
    from iconoscope.explore.hashing import hamming, image_hashes

    hs = [image_hashes(drawn_image(100 + k))[0] for k in range(10)]
    d = [int(hamming(a, b)) for i, a in enumerate(hs) for b in hs[i + 1:]]
    assert min(d) > 12


def test_map_falls_back_to_the_latest_built(explore_ws) -> None:
    """A map laid out on another backbone (the demo's fine-tuned CNN) is what the web app shows when the default
    backbone has none; naming a backbone without a map is still an error."""
    import shutil

    from iconoscope.errors import IconoscopeError
    from iconoscope.explore import build_map, load_map
    from iconoscope.explore.map import map_path
    from iconoscope.explore.vectors import resolve_spec

    ws, _info = explore_ws
    data = build_map(ws, method="pca")
    default = map_path(ws, resolve_spec(ws))
    other = ws.root / "vectors" / "builtin-smallcnn-weights-elsewhere" / "explore" / "map.json"
    other.parent.mkdir(parents=True)
    default.rename(other)
    try:
        assert load_map(ws) == json.loads(json.dumps(data))
        with pytest.raises(IconoscopeError, match="no map yet"):
            load_map(ws, resolve_spec(ws))
    finally:
        other.rename(default)
        shutil.rmtree(other.parent.parent)
