"""The ingest report: what went in, what matched, and every problem with its source, line and reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from iconoscope.errors import InputError

MAX_ISSUES = 1000  # issues kept verbatim; beyond that only the per-reason counts grow


@dataclass
class IngestIssue:
    source: str
    line: int | None
    record: str | None
    reason: str

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f", line {self.line}"
        if self.record is not None:
            where += f", record {self.record!r}"
        return f"{where}: {self.reason}"


@dataclass
class IngestReport:
    """Counts of one source's ingest. ``strict``: the first issue raises (the store is left untouched)."""

    source: str
    kind: str = ""
    path: str = ""
    graph: str = ""
    records: int = 0
    images: int = 0
    triples: int = 0
    subject_texts: int = 0
    mentions: int = 0
    matched: int = 0
    unmatched: int = 0
    ambiguous: int = 0
    uncertain: int = 0
    matched_by: Counter[str] = field(default_factory=Counter)  # pref / alt / mapping
    subjects: int = 0  # dcterms:subject links written
    records_with_subject: int = 0
    unmatched_texts: Counter[str] = field(default_factory=Counter)
    ambiguous_texts: Counter[str] = field(default_factory=Counter)
    candidates: dict[str, list[str]] = field(default_factory=dict)
    issue_counts: Counter[str] = field(default_factory=Counter)
    issues: list[IngestIssue] = field(default_factory=list)
    seconds: float = 0.0
    strict: bool = False

    def issue(self, reason: str, *, line: int | None = None, record: str | None = None, kind: str | None = None,
              source: str | None = None) -> None:
        """Record a problem (``kind`` groups the counts, e.g. 'image not found'); strict mode raises it."""
        src = source or self.path or self.source
        if self.strict:
            raise InputError(src, reason, line=line, record=record)
        self.issue_counts[kind or reason] += 1
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(IngestIssue(src, line, record, reason))

    @property
    def errors(self) -> list[IngestIssue]:
        return self.issues

    @property
    def n_issues(self) -> int:
        return sum(self.issue_counts.values())

    def as_dict(self, top: int = 50) -> dict[str, Any]:
        return {
            "source": self.source, "kind": self.kind, "path": self.path, "graph": self.graph,
            "records": self.records, "images": self.images, "triples": self.triples,
            "subject_texts": self.subject_texts, "mentions": self.mentions, "matched": self.matched,
            "unmatched": self.unmatched, "ambiguous": self.ambiguous, "uncertain": self.uncertain,
            "matched_by": dict(self.matched_by), "subjects": self.subjects,
            "records_with_subject": self.records_with_subject,
            "top_unmatched": self.unmatched_texts.most_common(top),
            "top_ambiguous": [(t, n, self.candidates.get(t, [])[:10])
                              for t, n in self.ambiguous_texts.most_common(top)],
            "issue_counts": dict(self.issue_counts), "issues": [str(i) for i in self.issues],
            "seconds": round(self.seconds, 3),
        }

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        how = ", ".join(f"{k} {v}" for k, v in sorted(self.matched_by.items())) or "-"
        return (f"source '{self.source}' ({self.kind}): {self.records} records, {self.images} images, "
                f"{self.triples} triples in {self.seconds:.1f} s; {self.mentions} mentions: {self.matched} matched "
                f"({how}), {self.ambiguous} ambiguous, {self.unmatched - self.ambiguous} unmatched, "
                f"{self.uncertain} uncertain; {self.records_with_subject} records with a subject; "
                f"{self.n_issues} issue(s)")
