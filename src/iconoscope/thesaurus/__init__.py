"""Thesauri: SKOS files, the Iconclass text distribution and CSV trees, loaded into one named graph each, and the
multilingual label matcher that links free subject text to their concepts."""

from iconoscope.thesaurus.load import (
    ConceptInfo,
    build_label_index,
    concept_info,
    describe,
    detect_format,
    load_vocabulary,
    resolve_concept,
)
from iconoscope.thesaurus.matching import LabelIndex, Match, normalize
from iconoscope.thesaurus.report import VocabIssue, VocabReport

__all__ = ["ConceptInfo", "LabelIndex", "Match", "VocabIssue", "VocabReport", "build_label_index", "concept_info",
           "describe", "detect_format", "load_vocabulary", "normalize", "resolve_concept"]
