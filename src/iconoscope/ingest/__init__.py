"""Ingest: records and images from CSV/TSV/JSON-Lines, RDF and IIIF manifests into one named graph per source,
with subject text parsed (plain lists or Joconde/Garnier strings) and linked to thesaurus concepts."""

from iconoscope.ingest.records import ImageRef, Record, RecordWriter
from iconoscope.ingest.report import IngestIssue, IngestReport
from iconoscope.ingest.source import ingest_all, ingest_source

__all__ = ["ImageRef", "IngestIssue", "IngestReport", "Record", "RecordWriter", "ingest_all", "ingest_source"]
