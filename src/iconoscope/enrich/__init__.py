"""Enrichment: predictions written into the graph as Web Annotations, ranked search, noise/silence audit, related links.

Modules: ``write`` (prediction runs), ``runs`` (finding them), ``index`` (the derived score table per run),
``concepts`` (label -> concept resolution), ``search``, ``audit``, ``export``, ``related``, ``predictions``.
The graph is the single source of truth; ``index`` only caches what a run graph holds, keyed by the run id.
"""
