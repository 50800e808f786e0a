"""Iconoscope: enrich cultural-heritage image collections with deep learning and knowledge graphs.

The package is laid out as the pipeline it runs:
ingest -> graph -> learn -> enrich -> explore -> serve (and scale for the distributed engines).
"""

__version__ = "0.1.0"
