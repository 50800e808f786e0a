"""Ingest, labels, predict write-back, search and audit give identical answers on Oxigraph and on Virtuoso.

The demo collection is built twice from the same generated data: once in a workspace on the embedded store, once
in a workspace whose ``[store]`` is a real Virtuoso server. The embedding and the trained classifier (files, not
graph) are made once and copied, so every difference left can only come from the graph store.
"""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.virtuoso, pytest.mark.slow]

NEEDED = ["iconoscope.ingest:ingest_all", "iconoscope.thesaurus:load_vocabulary",
          "iconoscope.ingest.labels:derive_labels", "iconoscope.learn.train:train_classifier",
          "iconoscope.enrich.write:predict_run", "iconoscope.enrich.search:search", "iconoscope.enrich.audit:audit"]


def _need() -> None:
    """Skip, naming what is missing, while a stage this test drives has not landed."""
    missing = []
    for target in NEEDED:
        module, attr = target.split(":")
        try:
            if not hasattr(importlib.import_module(module), attr):
                missing.append(target)
        except ImportError:
            missing.append(target)
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (not in the tree yet)")


# Query formulations of other stages that Virtuoso 7.2 gets wrong (docs/scaling.md, "SPARQL that Virtuoso runs"):
# while one is still in its file, this test is expected to fail. With the rewording shown, every answer below was
# checked equal on both stores (graphs, labels, predictions, search, noise, silence).
KNOWN_VIRTUOSO_BLOCKERS = {
    "labels_positives": ("{ SELECT DISTINCT ?s ?category WHERE", "a transitive path inside a subquery fails on "
                         "Virtuoso ('transitive start not given') even with VALUES binding one end; the flat form "
                         "'VALUES ?category {..} ?category ^skos:broader* ?s . ?record dcterms:subject ?s .' works"),
    "labels_excluded": ("{ SELECT DISTINCT ?s WHERE { VALUES ?x", "same subquery + transitive path failure as "
                        "labels_positives; keep the path in the outer group"),
    "enrich_concepts_below": ("FILTER EXISTS { ?concept skos:broader* ?top }", "FILTER EXISTS over a transitive "
                              "path with a multi-row VALUES misses rows on Virtuoso; the join '?concept "
                              "skos:broader* ?top .' with DISTINCT gives the right answer"),
}


def _known_blockers() -> list[str]:
    from iconoscope.graph.queries import query_text

    out = []
    for name, (pattern, why) in KNOWN_VIRTUOSO_BLOCKERS.items():
        try:
            if pattern in query_text(name):
                out.append(f"{name}.rq: {why}")
        except Exception:  # the query was renamed or removed: nothing known to block
            continue
    return out


def _workspace(root: Path, data: Path, store_toml: str | None) -> Path:
    from iconoscope.demo.workspace import write_config

    root.mkdir(parents=True)
    (root / "data").symlink_to(data, target_is_directory=True)  # one copy: image locations must be equal
    cfg = write_config(root, epochs=2, folds=2)  # the fine-tune is not under test: keep it short
    if store_toml:
        text = cfg.read_text(encoding="utf-8")
        cfg.write_text(re.sub(r"(\[serve\])", store_toml + "\n\\1", text, count=1), encoding="utf-8")
    return root


def _triples(store, graph: str) -> set[tuple[str, str, str]]:
    """A graph's triples with typed numbers as Python numbers (servers may write the same float differently)."""
    rows = store.select(f"SELECT ?s ?p ?o WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}").rows
    out = set()
    for s, p, o in rows:
        value = o.py()
        if isinstance(value, float):
            value = round(value, 5)
        out.add((s.value, p.value, repr((o.kind, value, o.lang, o.datatype if o.kind == "literal" else None))))
    return out


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need()
    from iconoscope.demo.generate import generate

    data = tmp_path_factory.mktemp("demo") / "data"
    generate(data, n=120)
    return data


def test_demo_collection_same_answers_on_both_stores(virtuoso, virtuoso_store, demo_data: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       request: pytest.FixtureRequest) -> None:
    blockers = _known_blockers()
    if blockers:
        request.node.add_marker(pytest.mark.xfail(reason="; ".join(blockers), strict=False))
    from iconoscope.enrich.audit import audit
    from iconoscope.enrich.search import search
    from iconoscope.enrich.write import predict_run
    from iconoscope.ingest import ingest_all
    from iconoscope.ingest.labels import derive_labels, write_labels
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.embed import embed_images
    from iconoscope.learn.train import train_classifier
    from iconoscope.thesaurus import load_vocabulary
    from iconoscope.workspace import Workspace

    monkeypatch.setenv("ICONOSCOPE_TEST_VIRTUOSO_PW", virtuoso.password)
    remote = (f'[store]\nkind = "sparql"\nquery_url = "{virtuoso.query_url}"\nupdate_url = "{virtuoso.update_url}"\n'
              'user = "dba"\npassword_env = "ICONOSCOPE_TEST_VIRTUOSO_PW"\n')
    a = Workspace(_workspace(tmp_path / "oxigraph", demo_data, None))
    b = Workspace(_workspace(tmp_path / "virtuoso", demo_data, remote))
    assert (a.store.kind, b.store.kind) == ("oxigraph", "sparql")
    try:
        for ws in (a, b):
            load_vocabulary(ws, "demo")
            ingest_all(ws)
        assert a.store.graphs() == b.store.graphs()
        for g in a.store.graphs():
            assert _triples(a.store, g) == _triples(b.store, g), g

        la, lb = derive_labels(a, "sujets"), derive_labels(b, "sujets")
        assert la.num_rows > 0
        assert sorted(map(str, la.to_pylist())) == sorted(map(str, lb.to_pylist()))

        write_labels(a, "sujets", la)
        spec = a.config.classifier("sujets").backbone
        embed_images(a, spec, show_progress=False)
        train_classifier(a, "sujets", show_progress=False)
        # the fine-tuned backbone's vectors, made once here (predict_run would embed them in each workspace, and
        # embedding closes the store, which curated_matrix then reopens from two threads: a race, reported)
        embed_images(a, load_classifier(a, "sujets").backbone, show_progress=False)
        for folder in ("vectors", "models", "labels"):
            shutil.rmtree(b.root / folder, ignore_errors=True)
            shutil.copytree(a.root / folder, b.root / folder)

        for ws in (a, b):  # open before predict: curated_matrix reads from two threads, and the lazy open is racy
            assert ws.store.count() > 0
        ra, rb = predict_run(a, "sujets", show_progress=False), predict_run(b, "sujets", show_progress=False)
        assert (ra.images, ra.annotations) == (rb.images, rb.annotations) and ra.annotations > 0
        run_a = [g for g in a.store.graphs() if "/graph/run/" in g]
        run_b = [g for g in b.store.graphs() if "/graph/run/" in g]
        assert len(run_a) == len(run_b) == 1
        def annotations(store, graph: str) -> dict[tuple[str, str], float]:  # run ids (so IRIs) differ by time
            q = (f"SELECT ?t ?b ?s WHERE {{ GRAPH <{graph}> {{ ?a <http://www.w3.org/ns/oa#hasTarget> ?t ; "
                 "<http://www.w3.org/ns/oa#hasBody> ?b ; <https://w3id.org/iconoscope/ns#score> ?s } }")
            return {(t.value, b.value): s.py() for t, b, s in store.select(q).rows}

        ann_a, ann_b = annotations(a.store, run_a[0]), annotations(b.store, run_b[0])
        assert sorted(ann_a) == sorted(ann_b)
        # xsd:float: Oxigraph returns the digits written; Virtuoso stores a 32-bit float and prints 6 significant
        # digits in query results (0.32203037 comes back as 0.32203): equal to 1e-6 absolute
        np.testing.assert_allclose([ann_a[k] for k in sorted(ann_a)], [ann_b[k] for k in sorted(ann_a)], rtol=0,
                                   atol=1e-6)

        def hits(ws):
            return [(h.record, h.image, h.concept, h.annotated, h.score)
                    for h in search(ws, "bateau", lang="fr", min_score=0.2, limit=50)]

        ha, hb = hits(a), hits(b)
        assert ha and [h[:4] for h in ha] == [h[:4] for h in hb]
        np.testing.assert_allclose([h[4] for h in ha], [h[4] for h in hb], rtol=1e-6)
        for kind in ("noise", "silence"):
            items_a = [(x.record, x.concept, x.score) for x in audit(a, "sujets", kind)]
            items_b = [(x.record, x.concept, x.score) for x in audit(b, "sujets", kind)]
            assert [i[:2] for i in items_a] == [i[:2] for i in items_b], kind
            np.testing.assert_allclose([i[2] or 0.0 for i in items_a], [i[2] or 0.0 for i in items_b], rtol=1e-6)
    finally:
        a.close()
        b.close()
