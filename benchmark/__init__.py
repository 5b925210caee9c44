"""The benchmark: the pipeline against a hand-written DuckDB script and a pandas script (``python -m benchmark``)."""
