"""The solr command against a real 2-node SolrCloud (embedded ZooKeeper), end to end."""

from __future__ import annotations

import pytest

from django_devcommands.solr.client import SolrClient
from tests.conftest import manage
from tests.solr_fixtures import CountLoop
from tests.test_solr import fail, ok

pytestmark = pytest.mark.solr


def test_cloud_create_reindex_swap_sync(cloud_env, cloud_client, solr_cloud):
    cloud_env = {**cloud_env, "EXAMPLE_SOLR_SHARDS": "2"}
    alias = cloud_env["EXAMPLE_SOLR_COLLECTION"]
    assert len(solr_cloud.urls) == 2 and solr_cloud.zk_host
    out = ok(manage(cloud_env, "solr", "--create", timeout=180))
    assert "uploaded" in out and f"alias {alias!r}" in out and "2 shard(s)" in out
    assert cloud_env["EXAMPLE_SOLR_CONFIGSET"] in cloud_client.configsets()
    first = cloud_client.aliases()[alias]
    assert first in cloud_client.collections()
    assert "pages.page: 25 indexed" in ok(manage(cloud_env, "solr", "--reindex", timeout=120))
    # Either node answers for the whole collection, whose two shards both hold documents.
    for url in solr_cloud.urls:
        assert SolrClient(url, timeout=30).count(alias) == 25
    shard_counts = [
        cloud_client.select(alias, {"q": "*:*", "rows": 0, "shards": shard})["response"]["numFound"]
        for shard in ("shard1", "shard2")
    ]
    assert sum(shard_counts) == 25 and all(shard_counts)
    assert "up to date" in ok(manage(cloud_env, "solr", "--sync-schema"))

    with CountLoop(solr_cloud.urls[1], alias, timeout=30, limit=180, join=30) as loop:
        out = ok(manage(cloud_env, "solr", "--reindex", "--swap", "--batch-size", "5", timeout=240))
    assert "Swapped" in out
    assert not loop.errors, loop.errors
    assert loop.seen and set(loop.seen) == {25}
    second = cloud_client.aliases()[alias]
    assert second != first
    assert first not in cloud_client.collections()  # the old collection is removed
    assert cloud_client.count(alias) == 25
    assert "25 documents" in ok(manage(cloud_env, "solr", "--status"))
    ok(manage(cloud_env, "solr", "--flush", "--noinput"))
    assert cloud_client.count(alias) == 0


def test_cloud_swap_needs_an_alias(cloud_env, cloud_client):
    name = cloud_env["EXAMPLE_SOLR_COLLECTION"]
    configset = cloud_env["EXAMPLE_SOLR_CONFIGSET"]
    ok(manage(cloud_env, "solr", "--create", timeout=180))
    physical = cloud_client.aliases()[name]
    # Replace the alias by a plain collection of the same name: --swap must refuse.
    cloud_client.delete_alias(name)
    cloud_client.create_collection(name, configset)
    try:
        assert "not an alias" in fail(manage(cloud_env, "solr", "--reindex", "--swap", timeout=120))
        assert not [
            c for c in cloud_client.collections() if c.startswith(name + "_") and c != physical
        ]
    finally:
        cloud_client.delete_collection(name)
        cloud_client.delete_collection(physical)
