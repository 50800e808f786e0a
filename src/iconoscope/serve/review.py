"""Writing a curator's decision on a prediction into the review graph (docs/graph-model.md).

What a decision is about (image, concept, record) is read from the graph by the annotation's IRI, never taken
from the client, so a forged form cannot make the app write an arbitrary subject. The whole decision is one SPARQL
UPDATE request (one transaction on Oxigraph): it either lands completely or not at all. Source and run graphs are
never modified; accepted subjects live in ``B/graph/review``, where the next ``labels`` run finds them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from iconoscope.graph import queries
from iconoscope.graph.queries import IRI
from iconoscope.graph.terms import XSD, Term
from iconoscope.serve.catalog import absolute_iri
from iconoscope.serve.errors import BadRequest, NotFound
from iconoscope.serve.schemas import DecisionOut

DECISIONS = ("accepted", "rejected")
_USER = re.compile(r"^[\w .@-]{1,64}$")


def clean_user(name: str | None) -> str:
    """A curator's name as it goes into ``B/agent/{name}``: short, printable; 'curator' when none."""
    name = (name or "").strip()
    if not name:
        return "curator"
    if not _USER.match(name):
        raise BadRequest(f"user name {name!r}: use 1-64 letters, digits, spaces, '.', '@', '_' or '-'")
    return name


def decide(ws, annotation: str, decision: str, user: str, now: datetime | None = None) -> DecisionOut:  # type: ignore[no-untyped-def]
    """Record ``decision`` ('accepted' or 'rejected') on a prediction; the newest decision on an image and
    concept replaces earlier ones. Raises NotFound for an unknown annotation, BadRequest for a bad value."""
    if decision not in DECISIONS:
        raise BadRequest(f"decision = {decision!r}: expected one of {', '.join(DECISIONS)}")
    absolute_iri(annotation, "annotation")
    user = clean_user(user)
    res = ws.store.select(queries.load("serve_review_lookup", annotation=IRI(annotation)))
    if not res.rows:
        raise NotFound(f"annotation {annotation}: no prediction with this IRI in any run graph")
    row = dict(zip(res.vars, res.rows[0], strict=True))
    body, image, record = row["body"], row["image"], row["record"]
    if body is None or body.kind != "uri":
        raise BadRequest(f"annotation {annotation}: predicts a field value, not a concept; only concept "
                         "predictions become curated subjects")
    if record is None:
        raise NotFound(f"annotation {annotation}: its image {image.value} belongs to no record")
    when = (now or datetime.now(UTC)).replace(microsecond=0)
    stamp = when.isoformat().replace("+00:00", "Z")
    agent = ws.iris.agent(user)
    update = queries.load(
        "serve_review_accept" if decision == "accepted" else "serve_review_reject",
        review=IRI(ws.iris.review_graph()), annotation=IRI(annotation), image=IRI(image.value),
        concept=IRI(body.value), record=IRI(record.value), agent=IRI(agent),
        when=Term("literal", stamp, XSD + "dateTime"))
    ws.store.update(update)
    try:
        record_id = ws.iris.id_of(record.value, "record")
    except ValueError:
        record_id = record.value
    return DecisionOut(annotation=annotation, record=record_id, concept=body.value,
                       status=decision, by=user, at=stamp)  # type: ignore[arg-type]
