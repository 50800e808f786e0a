"""Scale-out: Ray for batch inference, a SPARQL server for the graph, local servers for tests and benchmarks."""
