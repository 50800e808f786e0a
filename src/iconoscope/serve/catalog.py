"""The web app's read model: search, records, predictions and the review queue, straight from the graph.

Every query is a packaged ``serve_*.rq`` file run over the union of the named graphs (docs/graph-model.md), so
what a curator sees is exactly what ``iconoscope sparql`` would return. Only the latest run of each classifier is
shown: older runs may linger in their graphs, and showing their stale scores beside the new ones would mislead.
Labels are picked per request language (then the collection's languages, then any), in Python, because SPARQL
language fallbacks multiply rows.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from iconoscope.graph import queries
from iconoscope.graph.queries import IRI, Raw, values_iris
from iconoscope.graph.terms import Term, nt_iri
from iconoscope.graph.vocab import DCTERMS, ICO, RDF_TYPE
from iconoscope.serve import integrations
from iconoscope.serve.errors import BadRequest, NotFound
from iconoscope.serve.schemas import (
    ConceptRef,
    ConceptScore,
    FacetValue,
    FieldValue,
    ImageOut,
    Prediction,
    RecentDecision,
    RecordOut,
    RecordSummary,
    ReviewItem,
    ReviewQueueOut,
    SearchOut,
    SimilarItem,
    SimilarOut,
    Subject,
)

log = logging.getLogger("iconoscope.serve")

Row = dict[str, Term | None]

# record predicates shown on the item page, in this order, with their labels
FIELD_LABELS: dict[str, str] = {
    DCTERMS + "title": "Title", DCTERMS + "creator": "Creator", DCTERMS + "created": "Date",
    DCTERMS + "medium": "Medium", DCTERMS + "identifier": "Identifier", ICO + "source": "Source",
    ICO + "subjectText": "Subject (source text)", ICO + "mention": "Mentions", ICO + "unmatched": "Unmatched mentions",
}
HIDDEN = {RDF_TYPE, ICO + "image", DCTERMS + "subject", ICO + "year"}
REVIEW_KINDS = ("suggestions", "silence", "noise")
DEFAULT_THRESHOLD = 0.5
FACETS_TTL_S = 60.0
CANDIDATES_TTL_S = 600.0


def absolute_iri(value: str, what: str) -> str:
    """``value`` if it is an absolute IRI SPARQL can hold, else BadRequest naming the parameter."""
    import pyoxigraph

    try:
        nt_iri(value)
        pyoxigraph.NamedNode(value)
    except ValueError:
        raise BadRequest(f"{what} = {value!r}: not an absolute IRI") from None
    if ":" not in value or not value.split(":", 1)[0].replace("+", "").replace("-", "").replace(".", "").isalnum():
        raise BadRequest(f"{what} = {value!r}: not an absolute IRI")
    return value


def in_list(iris: Iterable[str]) -> Raw:
    """IRIs for ``FILTER(?x IN (...))``: a filter lets Oxigraph start from the selective patterns, where a VALUES
    block of runs would make it scan every annotation of those runs first (seconds on 60,000 annotations)."""
    return Raw(", ".join(nt_iri(i) for i in iris))


def pick_label(terms: Iterable[Term | None], langs: Sequence[str]) -> str | None:
    """The label in the first wanted language, else an untagged one, else any (deterministic)."""
    cands = [t for t in terms if t is not None]
    if not cands:
        return None
    for lang in langs:
        for t in cands:
            if t.lang and t.lang.lower().split("-")[0] == lang.lower():
                return t.value
    plain = sorted(t.value for t in cands if not t.lang)
    return plain[0] if plain else sorted(t.value for t in cands)[0]


def local_name(iri: str) -> str:
    """A readable fallback label for an IRI without skos:prefLabel."""
    tail = iri.rstrip("/#").rsplit("#", 1)[-1].rsplit("/", 1)[-1]
    from urllib.parse import unquote

    return unquote(tail) or iri


def url_id(identifier: str) -> str:
    """An identifier as one URL path segment (ids may hold '/', spaces, any Unicode)."""
    return quote(identifier, safe="")


def thumb_url(image_id: str, size: int = 200) -> str:
    return f"/iiif/image/{url_id(image_id)}/full/!{size},{size}/0/default.jpg"


@dataclass(frozen=True)
class Run:
    iri: str
    classifier: str
    version: str | None
    ended: str | None


class Catalog:
    """Reads what the pages and the API show. One per app; cheap to call, no caching of graph data."""

    def __init__(self, ws, languages: Sequence[str] | None = None):  # type: ignore[no-untyped-def]
        self.ws = ws
        self.languages = tuple(languages or ws.config.languages or ("en",))
        self._facets: tuple[float, list[Row]] | None = None
        self._curated: tuple[float, tuple[set[tuple[str, str]], set[tuple[str, str]]]] | None = None
        self._cands: dict[tuple[str, ...], tuple[float, list[tuple[str, str, str, str, float, str]]]] = {}

    # ---------------------------------------------------------------- helpers
    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.ws.store

    def _select(self, name: str, **params: object) -> list[Row]:
        res = self.store.select(queries.load(name, **params))
        return [dict(zip(res.vars, r, strict=True)) for r in res.rows]

    def langs(self, lang: str | None) -> tuple[str, ...]:
        return ((lang,) if lang else ()) + self.languages

    def record_iri(self, record_id: str) -> str:
        try:
            iri = self.ws.iris.record(record_id)
            nt_iri(iri)
        except ValueError:
            raise NotFound(f"record {record_id!r}: no such record") from None
        return iri

    def record_id(self, iri: str) -> str:
        try:
            return self.ws.iris.id_of(iri, "record")
        except ValueError:
            return iri

    def image_id(self, iri: str) -> str:
        try:
            return self.ws.iris.id_of(iri, "image")
        except ValueError:
            return iri

    def runs(self, classifier: str | None = None) -> list[Run]:
        """The latest run of each classifier (or of one)."""
        out = []
        for r in self._select("serve_latest_runs"):
            run = Run(r["run"].value, r["classifier"].value, r["version"].value if r["version"] else None,
                      r["ended"].value if r["ended"] else None)
            if classifier is None or run.classifier == classifier:
                out.append(run)
        return out

    def labels(self, iris: Iterable[str], lang: str | None = None) -> dict[str, str]:
        iris = sorted(set(iris))
        if not iris:
            return {}
        found: dict[str, list[Term]] = defaultdict(list)
        for r in self._select("serve_labels", concepts=values_iris(iris)):
            found[r["concept"].value].append(r["label"])
        langs = self.langs(lang)
        return {i: pick_label(found.get(i, []), langs) or local_name(i) for i in iris}

    # ---------------------------------------------------------------- search
    def invalidate(self) -> None:
        """Forget cached graph data (after a write through this server)."""
        self._facets = None
        self._curated = None
        self._cands = {}

    def facet_rows(self) -> list[Row]:
        """(record, creator, year, source) of every record: cached, as it changes only when sources are
        ingested, which cannot happen while this server holds the embedded store (a remote store: one minute)."""
        hit = self._facets
        if hit is not None and time.monotonic() - hit[0] < FACETS_TTL_S:
            return hit[1]
        rows = self._select("serve_facets")
        self._facets = (time.monotonic(), rows)
        return rows

    def decisions(self) -> dict[tuple[str, str], str]:
        """(image IRI, concept IRI) -> the curator's status, from the review graph."""
        rows = self._select("serve_review_decided", review=IRI(self.ws.iris.review_graph()))
        return {(r["img"].value, r["c"].value): r["status"].value for r in rows}

    def _by_concepts(self, concepts: Sequence[str], runs: Raw, min_score: float,
                     rejected: set[tuple[str, str]]) -> dict[str, tuple[float | None, bool]]:
        """record -> (best prediction score, curated?) for records about any of ``concepts``."""
        out: dict[str, tuple[float | None, bool]] = {}
        if not concepts:
            return out
        for r in self._select("serve_records_by_concepts", concepts=values_iris(concepts), runs=runs,
                              min_score=float(min_score)):
            rec = r["record"].value
            score, direct = out.get(rec, (None, False))
            if r["img"] is None:
                direct = True
            elif (r["img"].value, r["c"].value) not in rejected:
                score = _max(score, r["s"].py())
            else:
                continue
            out[rec] = (score, direct)
        return out

    def search(self, q: str = "", concept: str | None = None, min_score: float | None = None,
               creator: str | None = None, source: str | None = None, decade: int | None = None, limit: int = 24,
               offset: int = 0, lang: str | None = None) -> SearchOut:
        """Records matching a text and/or a concept (with narrower ones), with facets by creator, decade, source.

        A record matches directly (its metadata or a curated subject: relevance 1) or through a prediction of
        the latest runs with at least ``min_score`` (relevance = the best such score; default DEFAULT_THRESHOLD,
        as a 0.1 'apple' score is not an apple). Predictions a curator rejected do not count. Without text or
        concept, every record is listed.
        """
        q = q.strip()
        if min_score is None:
            min_score = DEFAULT_THRESHOLD
        if not 0.0 <= min_score <= 1.0:
            raise BadRequest(f"min_score = {min_score}: expected a number from 0 to 1")
        runs = in_list(r.iri for r in self.runs())
        rejected = {k for k, v in self.decisions().items() if v == "rejected"} if (q or concept) else set()
        matches: dict[str, tuple[float | None, bool]] | None = None
        if concept:
            absolute_iri(concept, "concept")
            closure = [r["c"].value for r in self._select("serve_concept_closure", concept=IRI(concept))]
            matches = self._by_concepts(closure or [concept], runs, min_score, rejected)
        if q:
            text = q.lower()
            found = self._by_concepts([r["c"].value for r in self._select("serve_concepts_by_text", q=text)],
                                      runs, min_score, rejected)
            for r in self._select("serve_records_by_text", q=text):
                found[r["record"].value] = (found.get(r["record"].value, (None, False))[0], True)
            for rec_id, score in integrations.search(self.ws, q, lang, min_score):
                iri = self.ws.iris.record(rec_id)
                old = found.get(iri, (None, False))
                found[iri] = (_max(old[0], score), old[1])
            matches = found if matches is None else {
                k: (_max(v[0], found[k][0]), v[1] or found[k][1]) for k, v in matches.items() if k in found}

        facet_rows = self.facet_rows()
        if matches is None:     # browsing: every record, in identifier order (min_score counts matches only)
            matches = {r["record"].value: (None, False) for r in facet_rows}

        creators: dict[str, set[str]] = defaultdict(set)
        decades: dict[str, str] = {}
        sources: dict[str, str] = {}
        for r in facet_rows:
            rec = r["record"].value
            if r["creator"] is not None:
                creators[rec].add(r["creator"].value)
            if r["year"] is not None and r["year"].value.lstrip("-").isdigit():
                decades[rec] = str(int(r["year"].value) // 10 * 10)
            if r["source"] is not None:
                sources[rec] = r["source"].value
        want_decade = str(decade) if decade is not None else None
        hits = [rec for rec in matches
                if (creator is None or creator in creators.get(rec, ()))
                and (source is None or sources.get(rec) == source)
                and (want_decade is None or decades.get(rec) == want_decade)]

        def facet(values: dict[str, set[str]] | dict[str, str], selected: str | None) -> list[FacetValue]:
            counts: dict[str, int] = defaultdict(int)
            for rec in hits:
                v = values.get(rec)
                for x in (v if isinstance(v, set) else ([v] if v else [])):
                    counts[x] += 1
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:30]
            return [FacetValue(value=k, count=n, selected=k == selected) for k, n in top]

        facets = {"creator": facet(creators, creator), "decade": facet(decades, want_decade),
                  "source": facet(sources, source)}

        def relevance(rec: str) -> tuple[float, str]:
            score, direct = matches[rec]
            return (-(1.0 if direct else (score if score is not None else 0.0)), rec)

        hits.sort(key=relevance)
        page = hits[offset: offset + limit]
        items = self.summaries(page, lang=lang, min_score=min_score)
        for it in items:
            score, direct = matches[it.iri]
            it.score = score
            it.match = "curated" if direct and (q or concept) else ("predicted" if (q or concept) else "all")
        return SearchOut(total=len(hits), offset=offset, limit=limit, items=items, facets=facets)

    def summaries(self, record_iris: Sequence[str], lang: str | None = None,
                  min_score: float = 0.0, top: int = 3) -> list[RecordSummary]:
        """Title, creator, date, thumbnail and best predicted concepts of some records, in the given order."""
        if not record_iris:
            return []
        langs = self.langs(lang)
        vals = values_iris(record_iris)
        titles: dict[str, list[Term]] = defaultdict(list)
        info: dict[str, dict[str, str]] = defaultdict(dict)
        images: dict[str, list[str]] = defaultdict(list)
        for r in self._select("serve_record_summaries", records=vals):
            rec = r["record"].value
            if r["title"] is not None:
                titles[rec].append(r["title"])
            for k in ("creator", "created"):
                if r[k] is not None:
                    info[rec].setdefault(k, r[k].value)
            if r["image"] is not None:
                images[rec].append(r["image"].value)
        preds: dict[str, dict[str, float]] = defaultdict(dict)
        labels: dict[str, list[Term]] = defaultdict(list)
        runs = in_list(r.iri for r in self.runs())
        rejected = {k for k, v in self.decisions().items() if v == "rejected"} if top else set()
        rows = self._select("serve_top_predictions", records=vals, runs=runs, min_score=float(min_score)) if top else []
        for r in rows:
            rec, c = r["record"].value, r["concept"].value
            if (r["img"].value, c) in rejected:
                continue
            preds[rec][c] = max(preds[rec].get(c, 0.0), r["score"].py())
            if r["label"] is not None and r["label"] not in labels[c]:
                labels[c].append(r["label"])
        out = []
        for rec in record_iris:
            img = min(images[rec]) if images.get(rec) else None
            img_id = self.image_id(img) if img else None
            rid = self.record_id(rec)
            best = sorted(preds.get(rec, {}).items(), key=lambda kv: -kv[1])[:top]
            out.append(RecordSummary(
                id=rid, iri=rec, title=pick_label(titles.get(rec, []), langs) or rid,
                creator=info[rec].get("creator"), date=info[rec].get("created"), image=img_id,
                thumbnail=thumb_url(img_id) if img_id else None,
                concepts=[ConceptScore(iri=c, label=pick_label(labels[c], langs) or local_name(c), score=s)
                          for c, s in best]))
        return out

    def concepts(self, q: str, limit: int = 20, lang: str | None = None) -> list[ConceptRef]:
        q = q.strip().lower()
        if not q:
            return []
        rows = self._select("serve_concepts", q=q, limit=Raw(str(int(limit) * 4)))
        labels: dict[str, list[Term]] = defaultdict(list)
        notation: dict[str, str] = {}
        for r in rows:
            c = r["concept"].value
            if r["label"] is not None:
                labels[c].append(r["label"])
            if r["notation"] is not None:
                notation[c] = r["notation"].value
        langs = self.langs(lang)
        out = [ConceptRef(iri=c, label=pick_label(ls, langs) or local_name(c), notation=notation.get(c))
               for c, ls in labels.items()]
        out.sort(key=lambda c: (not c.label.lower().startswith(q), c.label.lower()))
        return out[:limit]

    # ---------------------------------------------------------------- records
    def record(self, record_id: str, lang: str | None = None) -> RecordOut:
        iri = self.record_iri(record_id)
        rows = self._select("serve_record", record=IRI(iri))
        if not any(r["p"].value == RDF_TYPE and r["o"].value == ICO + "Record" for r in rows):
            raise NotFound(f"record {record_id!r}: no such record")
        langs = self.langs(lang)
        by_p: dict[str, list[Term]] = defaultdict(list)
        for r in rows:
            by_p[r["p"].value].append(r["o"])
        fields: list[FieldValue] = []
        field_prefix = f"{self.ws.iris.base}field/"
        order = list(FIELD_LABELS) + sorted(p for p in by_p if p not in FIELD_LABELS)
        for p in order:
            if p in HIDDEN or p not in by_p:
                continue
            values = by_p[p]
            if p == DCTERMS + "title":
                chosen = pick_label(values, langs)
                values = [v for v in values if v.value == chosen][:1]
            label = FIELD_LABELS.get(p) or (local_name(p).replace("_", " ").capitalize()
                                            if p.startswith(field_prefix) else local_name(p))
            for v in sorted(values, key=lambda t: t.value):
                fields.append(FieldValue(name=p, label=label, value=v.value, lang=v.lang))
        title = pick_label(by_p.get(DCTERMS + "title", []), langs) or record_id
        return RecordOut(id=record_id, iri=iri, title=title, fields=fields, subjects=self.subjects(iri, lang),
                         images=self.images(iri), manifest=f"/iiif/{url_id(record_id)}/manifest")

    def subjects(self, record_iri: str, lang: str | None = None) -> list[Subject]:
        review = self.ws.iris.review_graph()
        labels: dict[str, list[Term]] = defaultdict(list)
        origin: dict[str, str] = {}
        notation: dict[str, str] = {}
        for r in self._select("serve_record_subjects", record=IRI(record_iri)):
            c = r["concept"].value
            if r["concept"].kind != "uri":
                continue
            # a subject in a source graph stays 'source' even when a curator also accepted it
            if origin.get(c) != "source":
                origin[c] = "review" if r["g"].value == review else "source"
            if r["label"] is not None and r["label"] not in labels[c]:
                labels[c].append(r["label"])
            if r["notation"] is not None:
                notation[c] = r["notation"].value
        langs = self.langs(lang)
        out = [Subject(iri=c, label=pick_label(labels[c], langs) or local_name(c), notation=notation.get(c),
                       origin=o) for c, o in origin.items()]  # type: ignore[arg-type]
        return sorted(out, key=lambda s: (s.origin != "source", s.label.lower()))

    def images(self, record_iri: str) -> list[ImageOut]:
        out = []
        for r in self._select("serve_record_images", record=IRI(record_iri)):
            img = r["image"].value
            iid = self.image_id(img)
            loc = r["location"].value if r["location"] else None
            out.append(ImageOut(id=iid, iri=img, url=loc if loc and loc.startswith(("http://", "https://")) else None,
                                iiif_service=r["service"].value if r["service"] else None,
                                info=f"/iiif/image/{url_id(iid)}/info.json", thumbnail=thumb_url(iid, 600)))
        return out

    def predictions(self, record_id: str, lang: str | None = None) -> list[Prediction]:
        iri = self.record_iri(record_id)
        if not self.store.ask(f"ASK {{ {nt_iri(iri)} a {nt_iri(ICO + 'Record')} }}"):
            raise NotFound(f"record {record_id!r}: no such record")
        runs = in_list(r.iri for r in self.runs())
        rows = self._select("serve_record_predictions", record=IRI(iri), runs=runs,
                            review=IRI(self.ws.iris.review_graph()))
        langs = self.langs(lang)
        by_ann: dict[str, Row] = {}
        labels: dict[str, list[Term]] = defaultdict(list)
        for r in rows:
            a = r["annotation"].value
            by_ann.setdefault(a, r)
            if r["label"] is not None and r["label"] not in labels[a]:
                labels[a].append(r["label"])
        out = []
        for a, r in by_ann.items():
            body = r["body"]
            is_concept = body.kind == "uri"
            status = r["status"].value if r["status"] else None
            out.append(Prediction(
                annotation=a, image=self.image_id(r["image"].value), concept=body.value if is_concept else None,
                label=(pick_label(labels[a], langs) or local_name(body.value)) if is_concept else body.value,
                field=r["field"].value if r["field"] else None, score=float(r["score"].py()),
                run=r["run"].value, classifier=r["classifier"].value,
                model_version=r["version"].value if r["version"] else None,
                status=status if status in ("accepted", "rejected") else None,  # type: ignore[arg-type]
                curated=bool(r["curated"] and r["curated"].py())))
        out.sort(key=lambda p: (-p.score, p.label, p.annotation))
        return out

    def image(self, image_id: str) -> tuple[str, str | None, str | None, str | None]:
        """(image IRI, location, IIIF service, record IRI) of an image id; NotFound when absent."""
        try:
            iri = self.ws.iris.image(image_id)
            nt_iri(iri)
        except ValueError:
            raise NotFound(f"image {image_id!r}: no such image") from None
        rows = self._select("serve_image", image=IRI(iri))
        if not rows:
            raise NotFound(f"image {image_id!r}: no such image")
        r = rows[0]
        return (iri, r["location"].value if r["location"] else None, r["service"].value if r["service"] else None,
                r["record"].value if r["record"] else None)

    def similar(self, record_id: str, k: int = 10) -> SimilarOut:
        self.record_iri(record_id)
        res, problem = integrations.similar(self.ws, record_id, k)
        if res is None:
            return SimilarOut(available=False, message=problem, items=[])
        pairs = [(rid, s) for rid, s in res if rid != record_id][:k]
        summaries = {s.id: s for s in self.summaries([self.ws.iris.record(rid) for rid, _ in pairs])}
        items = [SimilarItem(id=rid, title=summaries[rid].title if rid in summaries else rid, score=s,
                             thumbnail=summaries[rid].thumbnail if rid in summaries else None) for rid, s in pairs]
        return SimilarOut(available=True, items=items)

    def duplicates(self, record_id: str) -> list[RecordSummary]:
        """Other records in a duplicate group with this one (empty when exploration has none)."""
        for group in integrations.duplicate_groups(self.ws) or []:
            if record_id in group:
                others = [self.ws.iris.record(r) for r in group if r != record_id]
                return self.summaries(others)
        return []

    # ---------------------------------------------------------------- review
    def thresholds(self, classifiers: Iterable[str], kind: str) -> dict[str, float]:
        """Per-category thresholds of the audit: silence is ``score >= t``, noise ``score <= t``.

        First choice: the enrichment stage's thresholds from out-of-fold scores (``class_thresholds``: the mean
        out-of-fold score of positives for silence, of negatives for noise); a category without one gets a
        threshold nothing can pass. Else the classifier's calibrated ``models/NAME/thresholds.json``; else
        DEFAULT_THRESHOLD.
        """
        out: dict[str, float] = {}
        class_thresholds = integrations.optional_function("iconoscope.enrich.thresholds", "class_thresholds")
        for name in classifiers:
            th = None
            if class_thresholds is not None and (Path(self.ws.root) / "models" / name / "oof_scores.parquet").is_file():
                th = integrations.call(f"thresholds of {name}", class_thresholds, self.ws, name)
            if th is not None:
                never = 2.0 if kind == "silence" else -1.0
                cfg = self.ws.config.classifiers.get(name)
                for c in cfg.categories if cfg else ():
                    out[c] = never
                for c, d in th.as_dict().items():
                    t = d.get("silence" if kind == "silence" else "noise")
                    out[c] = float(t) if t is not None else never
                continue
            path = Path(self.ws.root) / "models" / name / "thresholds.json"
            if not path.is_file():
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                log.warning("%s: unreadable thresholds (%s); using %.2f", path, e, DEFAULT_THRESHOLD)
                continue
            table = data.get("thresholds", data) if isinstance(data, dict) else {}
            if isinstance(table, list) and isinstance(data.get("categories"), list):   # learning's layout
                table = dict(zip(data["categories"], table, strict=False))
            for c, t in table.items() if isinstance(table, dict) else ():
                if isinstance(t, (int, float)) and isinstance(c, str) and c.startswith(("http", "urn:")):
                    out[c] = float(t)
        return out

    def _candidates(self, runs: list[Run]) -> list[tuple[str, str, str, str, float, str]]:
        """(annotation, image, record, concept, score, classifier) of the runs, best score first; cached per set
        of runs (a run graph never changes once written), for ten minutes at most (a remote store)."""
        key = tuple(sorted(r.iri for r in runs))
        hit = self._cands.get(key)
        if hit is not None and time.monotonic() - hit[0] < CANDIDATES_TTL_S:
            return hit[1]
        rows = self.store.select(queries.load("serve_review_candidates", runs=in_list(key))).rows if key else []
        cands = [(a.value, i.value, r.value, c.value, float(s.py()), k.value) for a, i, r, c, s, k in rows]
        cands.sort(key=lambda x: (-x[4], x[0]))
        self._cands = {key: (time.monotonic(), cands)}
        return cands

    def curated_pairs(self) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        """(record, concept) pairs curated exactly, and with every concept above a curated subject."""
        hit = self._curated
        if hit is not None and time.monotonic() - hit[0] < FACETS_TTL_S:
            return hit[1]
        exact: set[tuple[str, str]] = set()
        expanded: set[tuple[str, str]] = set()
        for r in self._select("serve_curated_pairs"):
            rec = r["record"].value
            exact.add((rec, r["s"].value))
            expanded.add((rec, r["c"].value))
        self._curated = (time.monotonic(), (exact, expanded))
        return exact, expanded

    def review_queue(self, kind: str = "suggestions", classifier: str | None = None, category: str | None = None,
                     min_score: float = 0.0, limit: int = 50, offset: int = 0,
                     lang: str | None = None) -> ReviewQueueOut:
        """Undecided predictions of the latest runs in three views: suggestions (not curated, best first), silence
        (not curated, score at or above the category's threshold), noise (curated, score at or below it, lowest
        first). A decision on this or an earlier run's annotation of the same image and concept removes it.
        'Curated' for a category includes a curated subject below it (skos:broader*), as labels count it."""
        if kind not in REVIEW_KINDS:
            raise BadRequest(f"kind = {kind!r}: expected one of {', '.join(REVIEW_KINDS)}")
        if category:
            absolute_iri(category, "category")
        runs = self.runs(classifier)
        thr = self.thresholds(sorted({r.classifier for r in runs}), kind)
        decided = self.decisions()
        exact, expanded = self.curated_pairs()
        # a category counts a record curated with a narrower concept, unless its classifier says expand = "none"
        exact_only = {name for name, cfg in self.ws.config.classifiers.items() if cfg.expand == "none"}
        cands = self._candidates(runs)
        want = offset + limit + 1
        found: list[tuple[tuple[str, str, str, str, float, str], float]] = []
        audited = self._audit(kind, runs, category, min_score, decided, cands, want) if kind != "suggestions" else None
        if audited is not None:
            found = audited
        else:
            for cand in reversed(cands) if kind == "noise" else cands:
                _a, img, rec, c, score, classifier_name = cand
                if score < min_score or (category and c != category) or (img, c) in decided:
                    continue
                curated = (rec, c) in (exact if classifier_name in exact_only else expanded)
                if curated != (kind == "noise"):
                    continue
                t = thr.get(c, DEFAULT_THRESHOLD)
                if (kind == "silence" and score < t) or (kind == "noise" and score > t):
                    continue
                found.append((cand, t))
                if len(found) >= want:
                    break
        page = found[offset: offset + limit]
        labels = self.labels((cand[3] for cand, _ in page), lang)
        summaries = {s.iri: s for s in self.summaries(sorted({cand[2] for cand, _ in page}), lang=lang, top=0)}
        items = []
        for (a, img, rec, c, score, k), t in page:
            iid = self.image_id(img)
            items.append(ReviewItem(
                annotation=a, record=self.record_id(rec),
                record_title=summaries[rec].title if rec in summaries else self.record_id(rec), image=iid,
                thumbnail=thumb_url(iid), concept=c, label=labels[c], score=score, threshold=float(t), classifier=k))
        return ReviewQueueOut(kind=kind, classifier=classifier, category=category, offset=offset, limit=limit,
                              has_more=len(found) > offset + limit, items=items,  # type: ignore[arg-type]
                              method="audit" if audited is not None else "graph")

    def _audit(self, kind: str, runs: list[Run], category: str | None, min_score: float,
               decided: dict[tuple[str, str], str], cands: list[tuple[str, str, str, str, float, str]],
               want: int) -> list[tuple[tuple[str, str, str, str, float, str], float]] | None:
        """Noise or silence from the enrichment stage's audit (one definition for the CLI and the web app), mapped
        onto the annotations a curator decides on; None when it cannot answer (not installed, a classifier
        without out-of-fold scores, a run it cannot index), and the caller reads the graph itself."""
        audit = integrations.optional_function("iconoscope.enrich.audit", "audit")
        if audit is None or not runs:
            return None
        if not all((Path(self.ws.root) / "models" / r.classifier / "oof_scores.parquet").is_file() for r in runs):
            return None
        by_pair = {(cand[1], cand[3]): cand for cand in cands}
        found = []
        for run in runs:
            items = integrations.call(f"audit of {run.classifier}", audit, self.ws, run.classifier, kind,
                                      category=category, limit=want + len(decided))
            if items is None:
                return None
            for it in integrations.rows_of(items):
                if it.get("image") is None or it.get("score") is None:
                    continue          # no stored score: nothing a curator could accept or reject here
                img = self.ws.iris.image(str(it["image"]))
                cand = by_pair.get((img, str(it["concept"])))
                if cand is None or (img, cand[3]) in decided or cand[4] < min_score:
                    continue
                found.append((cand, float(it["threshold"])))
        found.sort(key=lambda x: ((x[0][4] if kind == "noise" else -x[0][4]), x[0][2], x[0][3]))
        return found[:want]

    def recent_decisions(self, limit: int = 20, lang: str | None = None) -> list[RecentDecision]:
        rows = self._select("serve_review_recent", review=IRI(self.ws.iris.review_graph()), limit=Raw(str(int(limit))))
        labels = self.labels((r["concept"].value for r in rows if r["concept"] is not None
                              and r["concept"].kind == "uri"), lang)
        prefix = f"{self.ws.iris.base}agent/"
        out = []
        for r in rows:
            agent = r["agent"].value if r["agent"] else None
            c = r["concept"].value if r["concept"] else None
            out.append(RecentDecision(
                annotation=r["annotation"].value, status=r["status"].value,
                by=local_name(agent) if agent and agent.startswith(prefix) else agent,
                at=r["when"].value if r["when"] else None,
                record=self.record_id(r["record"].value) if r["record"] else None, concept=c,
                label=labels.get(c) if c else None))
        return out


def _max(a: float | None, b: float | None) -> float | None:
    vals = [v for v in (a, b) if v is not None]
    return max(vals) if vals else None
