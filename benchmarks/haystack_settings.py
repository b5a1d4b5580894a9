"""The example project's settings plus django-haystack, for benchmarks/reindex.py."""

import os

from exampleproject.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "haystack", "benchmarks.hsbench"]  # noqa: F405

HAYSTACK_CONNECTIONS = {
    "default": {
        "ENGINE": "haystack.backends.solr_backend.SolrEngine",
        "URL": os.environ.get("BENCH_HAYSTACK_URL", "http://127.0.0.1:8983/solr/haystack"),
        "TIMEOUT": 120,
    }
}
