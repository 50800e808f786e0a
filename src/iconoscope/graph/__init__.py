"""The knowledge graph: store backends, namespaces and the SPARQL files every stage runs."""

from iconoscope.graph.store import SelectResult, Store, open_store
from iconoscope.graph.terms import Term

__all__ = ["SelectResult", "Store", "Term", "open_store"]
