"""The ``inputs`` / ``targets`` syntax of a ``head = "multimodal"`` classifier, parsed once with clear errors.

Input specs (``inputs = [...]``)::

    image                  the record's image embedding from the classifier's ``backbone`` (mean over its images)
    image:SPEC             ... from another backbone spec (e.g. image:torchscript:/path/model.pt)
    [KIND:]FIELD           a record field, encoded by KIND

Target specs (``targets = [...]``)::

    [KIND:]FIELD           cat (softmax over the values) or set (independent sigmoids, multi-label)
    date:W                 the date in bins of W years (date:10 = decades), a softmax task

FIELD is a record field of the graph model: ``creator``, ``medium``, ``title``, ``date`` (dcterms:created),
``year`` (ico:year), ``subject`` (curated concepts), ``subject-text`` (ico:subjectText), or ``field:NAME`` for an
extra source column (``<base/field/NAME>``); a bare other NAME means ``field:NAME``.

KIND says how a field becomes numbers; each field has a sensible default:

    cat    one value per record -> one-hot over the values seen in training (default for creator, medium, fields)
    set    several values -> multi-hot (default for subject); ``separator`` splits one literal into several
    num    a number, standardised, with a missing flag (default for year)
    date   a date -> one-hot bin: ``date:W:FIELD`` (default field ``date``, falling back to ``ico:year``)
    text   a string -> the text encoder's vector (default for title and subject-text); ``text_encoder`` param

Every input also carries a "missing" flag, so a record without a title or an image is still predicted (from what it
has), and a value never seen in training counts as missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from iconoscope.errors import ConfigError

CORE_FIELDS = ("creator", "medium", "title", "date", "year", "subject", "subject-text")
INPUT_KINDS = ("cat", "set", "num", "date", "text")
TARGET_KINDS = ("cat", "set", "date")
_DEFAULT_INPUT_KIND = {"creator": "cat", "medium": "cat", "title": "text", "date": "date", "year": "num",
                       "subject": "set", "subject-text": "text"}
_DEFAULT_TARGET_KIND = {"creator": "cat", "medium": "cat", "title": "cat", "date": "date", "year": "date",
                        "subject": "set", "subject-text": "cat"}
DEFAULT_DATE_WIDTH = 10


@dataclass(frozen=True)
class FieldRef:
    """A record field: a core field name, or an extra column ``field:NAME``."""

    name: str
    extra: bool = False

    @property
    def key(self) -> str:
        """The name used in reports, annotations (``ico:field``) and ``fill``."""
        return f"field:{self.name}" if self.extra else self.name

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True)
class InputSpec:
    kind: str  # image | cat | set | num | date | text
    field: FieldRef | None = None  # None for image
    backbone: str | None = None  # image only (None = the classifier's backbone)
    width: int = DEFAULT_DATE_WIDTH  # date only
    text: str = ""

    @property
    def name(self) -> str:
        return self.text


@dataclass(frozen=True)
class TargetSpec:
    kind: str  # cat | set | date
    field: FieldRef
    width: int = DEFAULT_DATE_WIDTH
    text: str = ""

    @property
    def name(self) -> str:
        """The task's name: the field key, e.g. 'creator', 'date', 'field:genre'."""
        return self.field.key


def _field(text: str, where: str) -> FieldRef:
    if text.startswith("field:"):
        name = text[6:]
        if not name:
            raise ConfigError(f"{where}: 'field:' needs a column name (field:NAME)")
        return FieldRef(name, extra=True)
    if not text:
        raise ConfigError(f"{where}: empty field name")
    if text in CORE_FIELDS:
        return FieldRef(text)
    if ":" in text:
        raise ConfigError(f"{where}: {text!r} is not a field (expected one of {', '.join(CORE_FIELDS)} "
                          "or field:NAME)")
    return FieldRef(text, extra=True)


def _width(text: str, where: str) -> int:
    try:
        w = int(text)
    except ValueError:
        raise ConfigError(f"{where}: date bin width {text!r} is not an integer number of years") from None
    if w < 1:
        raise ConfigError(f"{where}: date bin width must be at least 1 year, not {w}")
    return w


def parse_input(text: str, where: str = "inputs") -> InputSpec:
    """One input spec; raises ConfigError naming ``where`` and the spec."""
    w = f"{where}: {text!r}"
    t = text.strip()
    if t == "image":
        return InputSpec("image", text=t)
    if t.startswith("image:"):
        spec = t[6:]
        if not spec:
            raise ConfigError(f"{w}: 'image:' needs a backbone spec")
        return InputSpec("image", backbone=spec, text=t)
    head, _, rest = t.partition(":")
    if head in INPUT_KINDS and rest:
        if head == "date":
            wtxt, _, ftxt = rest.partition(":")
            if wtxt.isdigit() or wtxt.lstrip("-").isdigit():
                return InputSpec("date", _field(ftxt or "date", w), width=_width(wtxt, w), text=t)
            return InputSpec("date", _field(rest, w), text=t)
        return InputSpec(head, _field(rest, w), text=t)
    if head == "date" and not rest:
        return InputSpec("date", FieldRef("date"), text=t)
    f = _field(t, w)
    kind = "cat" if f.extra else _DEFAULT_INPUT_KIND[f.name]
    return InputSpec(kind, f, text=t)


def parse_target(text: str, where: str = "targets") -> TargetSpec:
    w = f"{where}: {text!r}"
    t = text.strip()
    head, _, rest = t.partition(":")
    if head == "date":
        wtxt, _, ftxt = rest.partition(":")
        if not rest:
            return TargetSpec("date", FieldRef("date"), text=t)
        if wtxt.lstrip("-").isdigit():
            return TargetSpec("date", _field(ftxt or "date", w), width=_width(wtxt, w), text=t)
        return TargetSpec("date", _field(rest, w), text=t)
    if head in ("cat", "set") and rest:
        return TargetSpec(head, _field(rest, w), text=t)
    if head in ("num", "text", "image"):
        raise ConfigError(f"{w}: a target is predicted as a class; use cat:, set: or date:W (not {head}:)")
    f = _field(t, w)
    kind = "cat" if f.extra else _DEFAULT_TARGET_KIND[f.name]
    if f.name == "year" and not f.extra:
        return TargetSpec("date", FieldRef("date"), text=t)
    return TargetSpec(kind, f, text=t)


def same_field(i: InputSpec, t: TargetSpec) -> bool:
    """Does input ``i`` read the field that target ``t`` predicts? (``date``/``year`` are one field.)"""
    if i.field is None:
        return False
    if i.field == t.field:
        return True
    return not i.field.extra and not t.field.extra and {i.field.name, t.field.name} <= {"date", "year"}


def parse_specs(inputs: Iterable[str], targets: Iterable[str], where: str) -> tuple[list[InputSpec],
                                                                                   list[TargetSpec]]:
    """Both lists, checked together: at least one target and one input, nothing given twice.

    A field may be both an input and a target (inputs = [..., "date:10"], targets = ["creator", "date:10"]): each
    head is then computed without its own field (see ``model.Task.hide``), so the known year helps predict the
    artist and the known artist helps predict the year, and no head ever learns to copy its answer."""
    ins = [parse_input(s, f"{where} inputs") for s in inputs]
    outs = [parse_target(s, f"{where} targets") for s in targets]
    if not outs:
        raise ConfigError(f"{where}: key 'targets' = []: expected at least one field to predict "
                          "(e.g. targets = [\"creator\", \"date:10\"])")
    if not ins:
        raise ConfigError(f"{where}: key 'inputs' = []: expected at least one input "
                          "(e.g. inputs = [\"image\", \"field:genus\"])")
    names = [o.name for o in outs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{where}: target(s) {', '.join(dup)} given twice")
    in_names = [i.text for i in ins]
    dup = sorted({n for n in in_names if in_names.count(n) > 1})
    if dup:
        raise ConfigError(f"{where}: input(s) {', '.join(dup)} given twice")
    for o in outs:
        if ins and all(same_field(i, o) for i in ins):
            raise ConfigError(f"{where}: target {o.text!r} sees no input (its own field is hidden from it); add an "
                              "input that is not that field (e.g. \"image\")")
    return ins, outs
