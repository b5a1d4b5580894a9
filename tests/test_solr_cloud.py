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


def _cloud_pages(count: int) -> None:
    from django.utils import timezone
    from pages.models import Page

    for i in range(count):
        Page.objects.create(
            title=f"Cloud {i}", slug=f"cloud-{i}", body="cloud body", published=timezone.now()
        )


@pytest.mark.django_db
def test_cloud_swap_changes_the_schema_only_at_the_switch(cloud_client, solr_name):
    """--swap uploads the new definitions as a configset of the fresh collection's own:
    the live collection keeps its schema until the alias moves, and the configset of a
    collection a swap replaced goes with it."""
    from pages.search_indexes import PageIndex

    from django_devcommands.solr import indexer
    from django_devcommands.solr import indexes as ix

    class PageIndexV2(PageIndex):
        edition = ix.StringField()

        def prepare_edition(self, page) -> str:
            return "v2"

    _cloud_pages(6)
    target = indexer.Target(cloud_client, solr_name, cloud=True, configset=solr_name)
    indexer.create(target, [PageIndex()])
    first = cloud_client.aliases()[solr_name]
    indexer.reindex([PageIndex()], target)

    def live_fields() -> set[str]:
        return {f["name"] for f in cloud_client.schema_get(solr_name, "fields")["fields"]}

    seen_while_building: list[set[str]] = []
    _results, second = indexer.swap_reindex(
        [PageIndexV2()], target, on_built=lambda fresh: seen_while_building.append(live_fields())
    )
    assert seen_while_building and "edition" not in seen_while_building[0]
    assert "edition" in live_fields()
    assert cloud_client.count(solr_name, "edition:v2") == 6
    # The swapped-in collection's own configset is as editable as --create's.
    from django_devcommands.solr import schema

    class PageIndexV3(PageIndexV2):
        extra = ix.StringField()

    applied = schema.sync_schema(cloud_client, solr_name, [PageIndexV3()])
    assert [c["add-field"]["name"] for c in applied] == ["extra"]
    assert "extra" in live_fields()
    assert schema.sync_schema(cloud_client, solr_name, [PageIndexV3()]) == []
    assert first not in cloud_client.collections()
    assert solr_name in cloud_client.configsets()  # --create's, not made by a swap
    assert second in cloud_client.configsets()

    _results, third = indexer.swap_reindex([PageIndex()], target)
    assert "edition" not in live_fields() and cloud_client.count(solr_name) == 6
    assert second not in cloud_client.collections() and second not in cloud_client.configsets()
    cloud_client.delete_alias(solr_name)
    cloud_client.delete_collection(third)
    cloud_client.delete_configset(third)


@pytest.mark.django_db
def test_cloud_swap_failing_after_the_switch_keeps_the_old_collection(
    cloud_client, solr_name, monkeypatch
):
    """Once the alias points to the new collection, a failure (here Ctrl-C while nodes
    pick up the alias) must neither delete the new one nor claim nothing changed."""
    from pages.search_indexes import PageIndex

    from django_devcommands.solr import indexer
    from django_devcommands.solr.errors import SolrError

    _cloud_pages(4)
    target = indexer.Target(cloud_client, solr_name, cloud=True, configset=solr_name)
    indexer.create(target, [PageIndex()])
    first = cloud_client.aliases()[solr_name]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cloud_client, "wait_for_alias", interrupted)
    with pytest.raises(SolrError, match="Interrupted after the switch") as caught:
        indexer.swap_reindex([PageIndex()], target)
    second = cloud_client.aliases()[solr_name]
    assert second != first and second in str(caught.value) and first in str(caught.value)
    assert {first, second} <= set(cloud_client.collections())
    assert cloud_client.count(solr_name) == 4
    cloud_client.delete_alias(solr_name)
    for name in (first, second):
        cloud_client.delete_collection(name)
    cloud_client.delete_configset(second)
