"""The self-contained demo: a generated collection taken through every stage of the pipeline."""
