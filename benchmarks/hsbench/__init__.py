"""django-haystack's index of the example's pages, for benchmarks/reindex.py only."""
