"""What a vocabulary load did: counts a curator can check, and every problem with its file and line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from iconoscope.errors import InputError


@dataclass
class VocabIssue:
    source: str
    line: int | None
    problem: str

    def __str__(self) -> str:
        return f"{self.source}{f', line {self.line}' if self.line else ''}: {self.problem}"


@dataclass
class VocabReport:
    """Counts after a load plus the issues met; with ``strict`` the first issue raises instead."""

    name: str
    format: str
    path: str
    graph: str = ""
    concepts: int = 0
    triples: int = 0
    pref_labels: dict[str, int] = field(default_factory=dict)
    alt_labels: int = 0
    broader: int = 0
    related: int = 0
    top_concepts: int = 0
    seconds: float = 0.0
    issues: list[VocabIssue] = field(default_factory=list)
    strict: bool = False

    def issue(self, source: Path | str, problem: str, line: int | None = None) -> None:
        """Record a problem; in strict mode raise it at once (before the store is touched)."""
        if self.strict:
            raise InputError(str(source), problem, line=line)
        self.issues.append(VocabIssue(str(source), line, problem))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["issues"] = [str(i) for i in self.issues]
        return d

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        labels = ", ".join(f"{n} @{lang}" for lang, n in sorted(self.pref_labels.items())) or "none"
        return (f"vocabulary '{self.name}' ({self.format}, {self.path}): {self.concepts} concepts, "
                f"{self.triples} triples; prefLabels {labels}; {self.alt_labels} alt/hidden labels; "
                f"{self.broader} broader links; {self.related} related links; {self.top_concepts} top concepts; "
                f"{len(self.issues)} issue(s); {self.seconds:.1f} s")
