"""The commented ``iconoscope.toml`` that ``iconoscope init`` writes: the config documents itself."""

TEMPLATE = '''# Iconoscope workspace configuration.
# Relative paths are resolved against this file's folder. ${{data}}-style placeholders come from [paths]
# or from the environment (ICONOSCOPE_DATA overrides ${{data}}).

[collection]
name = "{name}"
# Records, images, runs and named graphs get IRIs under this base.
base_iri = "https://example.org/{name}/"
# Languages of labels and subject text (used for matching and for search).
languages = ["en", "fr"]
# The backbone used by 'embed' when none is given: builtin:smallcnn | torchscript:PATH | onnx:PATH | hf:ID_OR_PATH
default_backbone = "builtin:smallcnn"

[paths]
# data = "../shared/data"

[store]
# "oxigraph": an embedded store on disk in this folder (the default).
# "sparql": any SPARQL 1.1 server, e.g. Virtuoso:
#   kind = "sparql"
#   query_url = "http://localhost:8890/sparql"
#   update_url = "http://localhost:8890/sparql-auth"
#   user = "dba"
#   password_env = "ICONOSCOPE_SPARQL_PASSWORD"
kind = "oxigraph"
path = "graph"

# A vocabulary (thesaurus). format: skos (Turtle, RDF/XML, N-Triples, JSON-LD) | iconclass (text distribution)
# | csv (id,label,parent[,lang])
# [vocabularies.iconclass]
# path = "${{data}}/iconclass"
# format = "iconclass"
# languages = ["en", "fr"]

# A source of records. kind: csv | tsv | jsonl | rdf | iiif
# [sources.main]
# kind = "csv"
# path = "records.csv"
# images = "images"              # folder that relative image paths are resolved against
# vocabularies = ["iconclass"]   # subject text is matched against their labels
# subject_parser = "list"        # list (split on subject_separator) | garnier (Joconde REPR strings)
# subject_separator = ";"
# subject_lang = "en"
# mapping = "subjects.csv"       # optional explicit table: text,concept
# [sources.main.fields]
# id = "id"
# title = "title"
# creator = "creator"
# date = "date"
# medium = "medium"
# subject = "subject"
# image = "image"

# A classifier project (as in Annif): categories of a vocabulary, a backbone and a head.
# [classifiers.subjects]
# vocabulary = "iconclass"
# categories = ["http://iconclass.org/25G21(APPLE)"]
# expand = "narrower"      # a record is positive for C when a curated subject is C or below it
# exclude = []             # concepts whose records are never positives
# related = false          # also count skos:related concepts as positives
# backbone = "builtin:smallcnn"
# head = "linear"          # linear | mlp | finetune | multimodal
# folds = 5

[serve]
host = "127.0.0.1"
port = 8000
# Write operations (review decisions, SPARQL UPDATE) need this token, read from the environment.
token_env = "ICONOSCOPE_TOKEN"
'''
