"""A parser for Joconde/Garnier subject strings (the REPR field of French museum catalogues).

Garnier's *Thésaurus iconographique* indexes a work with descriptors, qualified in parentheses that nest, made
more specific with ``:`` chains and listed with ``,`` or ``;``, with ``(?)`` marking a doubtful identification::

    scène (chasse : lévrier, lièvre)
    figure (saint Eloi de Noyon, évêque, en pied ; cheval)
    portrait d'inconnu (fillette, paysan (?),à mi-corps,de face,coiffe,robe,tablier (rayure),tige)

A comma split breaks the qualifiers apart, so this is a real recursive-descent parser over the grammar::

    list  := chain ( (',' | ';') chain )*
    chain := term ( ':' term )*                 a : b  -> b specifies a (``homme : Japonais``)
    term  := TEXT? ( '(' list ')' | '(?)' | TEXT )*

Every term becomes a :class:`Mention` with its context (the terms it qualifies), so ``lévrier`` is known to be
said of ``chasse`` within ``scène``. Malformed strings (an unclosed or a stray parenthesis) raise
:class:`GarnierError` naming the column; with ``lenient=True`` the parser repairs them (closes what is open,
skips what is stray), returns the problems, and keeps every term it could read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from iconoscope.errors import IconoscopeError

_SPECIAL = set("(),;:")


class GarnierError(IconoscopeError):
    """A structural error in a subject string; ``column`` is 1-based."""

    def __init__(self, text: str, column: int, problem: str):
        self.text = text
        self.column = column
        self.problem = problem
        super().__init__(f"column {column}: {problem} in {text!r}")


@dataclass
class Term:
    """One descriptor with its qualifiers (the parenthesised list) and the term that specifies it (after ':')."""

    text: str
    uncertain: bool = False
    qualifiers: list[Term] = field(default_factory=list)
    specific: Term | None = None


@dataclass(frozen=True)
class Mention:
    text: str
    uncertain: bool = False
    context: tuple[str, ...] = ()


@dataclass
class _Tok:
    kind: str  # TEXT ( ) , ; : ?
    value: str
    col: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "(":
            # '(?)' (spaces allowed) marks the preceding term as doubtful
            j = i + 1
            while j < n and text[j] == " ":
                j += 1
            if j < n and text[j] == "?":
                k = j + 1
                while k < n and text[k] == " ":
                    k += 1
                if k < n and text[k] == ")":
                    toks.append(_Tok("?", "(?)", i + 1))
                    i = k + 1
                    continue
            toks.append(_Tok("(", c, i + 1))
            i += 1
        elif c in _SPECIAL:
            toks.append(_Tok(c, c, i + 1))
            i += 1
        else:
            j = i
            while j < n and text[j] not in _SPECIAL:
                j += 1
            chunk = text[i:j]
            if chunk.strip():
                toks.append(_Tok("TEXT", chunk, i + 1 + (len(chunk) - len(chunk.lstrip()))))
            i = j
    return toks


class _Parser:
    def __init__(self, text: str, lenient: bool):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.lenient = lenient
        self.problems: list[GarnierError] = []

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def fail(self, col: int, problem: str) -> None:
        err = GarnierError(self.text, col, problem)
        if not self.lenient:
            raise err
        self.problems.append(err)

    def parse(self) -> list[Term]:
        terms = self.parse_list(depth=0)
        return terms

    def parse_list(self, depth: int) -> list[Term]:
        items: list[Term] = []
        while True:
            term = self.parse_chain(depth)
            if term is not None:
                items.append(term)
            tok = self.peek()
            if tok is None:
                return items
            if tok.kind in (",", ";"):
                self.i += 1
                continue
            if tok.kind == ")":
                if depth > 0:
                    return items
                self.fail(tok.col, "unexpected ')' (no '(' is open)")
                self.i += 1
                continue
            # a ':' with nothing before it, or '(?)' alone: skip it, keep going
            self.i += 1

    def parse_chain(self, depth: int) -> Term | None:
        head = self.parse_term(depth)
        last = head
        while (tok := self.peek()) is not None and tok.kind == ":":
            self.i += 1
            nxt = self.parse_term(depth)
            if nxt is None:
                continue
            if last is None:
                head = last = nxt
            else:
                last.specific = nxt
                last = nxt
        return head

    def parse_term(self, depth: int) -> Term | None:
        words: list[str] = []
        uncertain = False
        quals: list[Term] = []
        seen = False
        while (tok := self.peek()) is not None:
            if tok.kind == "TEXT":
                words.append(tok.value.strip())
                self.i += 1
            elif tok.kind == "?":
                uncertain = True
                self.i += 1
            elif tok.kind == "(":
                self.i += 1
                quals.extend(self.parse_list(depth + 1))
                close = self.peek()
                if close is None or close.kind != ")":
                    self.fail(tok.col, "'(' is never closed")
                else:
                    self.i += 1
            else:
                break
            seen = True
        if not seen:
            return None
        text = " ".join(" ".join(words).split())
        if not text and not quals:
            return None
        return Term(text, uncertain, quals)


def parse(text: str, lenient: bool = False) -> tuple[list[Term], list[GarnierError]]:
    """Parse one subject string into its top-level terms (and, when lenient, the problems repaired)."""
    p = _Parser(text, lenient)
    terms = p.parse()
    return terms, p.problems


def mentions(terms: list[Term], context: tuple[str, ...] = ()) -> list[Mention]:
    """Every term, depth first, with the texts of the terms it qualifies or specifies as context."""
    out: list[Mention] = []
    for t in terms:
        node: Term | None = t
        ctx = context
        while node is not None:
            if node.text:
                out.append(Mention(node.text, node.uncertain, ctx))
            inner = (*ctx, node.text) if node.text else ctx
            out.extend(mentions(node.qualifiers, inner))
            ctx = inner
            node = node.specific
    return out


def parse_mentions(text: str, lenient: bool = False) -> tuple[list[Mention], list[GarnierError]]:
    terms, problems = parse(text, lenient)
    return mentions(terms), problems
