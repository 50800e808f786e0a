"""The routers of the web app: pages, REST API, SPARQL protocol, IIIF."""
