"""The Joconde/Garnier subject-string parser, on hand-made cases and on the real Joconde sample."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from iconoscope.ingest.garnier import GarnierError, Mention, parse, parse_mentions


def texts(s: str) -> list[str]:
    return [m.text for m in parse_mentions(s)[0]]


def test_nested_parentheses_chains_and_lists() -> None:
    ms, problems = parse_mentions("scène (chasse : lévrier, lièvre)")
    assert not problems
    assert ms == [Mention("scène"), Mention("chasse", context=("scène",)),
                  Mention("lévrier", context=("scène", "chasse")), Mention("lièvre", context=("scène",))]
    assert texts("figure (saint Eloi de Noyon, évêque, en pied ; cheval)") == [
        "figure", "saint Eloi de Noyon", "évêque", "en pied", "cheval"]
    terms, _ = parse("scène (allégorie : ange : France, femme : costume),fond de paysage (montagne)")
    assert [t.text for t in terms] == ["scène", "fond de paysage"]
    chain = terms[0].qualifiers[0]
    assert (chain.text, chain.specific.text, chain.specific.specific.text) == ("allégorie", "ange", "France")


def test_uncertainty_marks_and_spacing() -> None:
    ms, _ = parse_mentions("portrait d'inconnu (fillette, paysan (?),à mi-corps,tablier (rayure))")
    assert [(m.text, m.uncertain) for m in ms] == [
        ("portrait d'inconnu", False), ("fillette", False), ("paysan", True), ("à mi-corps", False),
        ("tablier", False), ("rayure", False)]
    assert [m.uncertain for m in parse_mentions("saint ( ? )")[0]] == [True]
    assert texts("  homme   :  Japonais ,, fête ; ") == ["homme", "Japonais", "fête"]
    assert texts("(fleur)") == ["fleur"]
    assert texts("") == []


@pytest.mark.parametrize(("text", "column", "problem", "lenient"), [
    ("ornement (coeur,étoile, rinceaux", 10, "'(' is never closed", ["ornement", "coeur", "étoile", "rinceaux"]),
    ("portrait,allégorie),homme", 19, "unexpected ')'", ["portrait", "allégorie", "homme"]),
    ("a (b (c)", 3, "'(' is never closed", ["a", "b", "c"]),
])
def test_malformed_strings_raise_with_the_column_or_are_repaired(text: str, column: int, problem: str,
                                                                  lenient: list[str]) -> None:
    with pytest.raises(GarnierError) as err:
        parse_mentions(text)
    assert err.value.column == column and problem in str(err.value) and text in str(err.value)
    ms, problems = parse_mentions(text, lenient=True)
    assert [m.text for m in ms] == lenient  # nothing readable is lost
    assert len(problems) == 1 and problems[0].column == column


def test_every_joconde_subject_string_parses(shared_data: Path) -> None:
    """The real REPR field: 2,291 filled strings; a handful are malformed and are repaired, not dropped."""
    folder = shared_data / "joconde_sample"
    n = n_mentions = n_uncertain = 0
    malformed: list[str] = []
    for name in ("BaseJoconde-Costumes-19e-20e.csv", "BaseJoconde_Paris_Reconc.csv"):
        with open(folder / name, encoding="utf-8") as f:
            for row in csv.DictReader(f):
                text = row["Sujet_Represente"].strip()
                if not text:
                    continue
                n += 1
                ms, problems = parse_mentions(text, lenient=True)
                assert ms, text
                n_mentions += len(ms)
                n_uncertain += sum(m.uncertain for m in ms)
                if problems:
                    malformed.append(text)
                    with pytest.raises(GarnierError):
                        parse_mentions(text)
    assert n == 2291
    assert n_mentions > 5 * n  # a naive comma split would give fewer, broken mentions
    assert 0 < len(malformed) <= 10 and n_uncertain >= 1
