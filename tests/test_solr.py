"""The solr command against a real standalone Solr 9.10.1 (see tests/solr_fixtures.py)."""

from __future__ import annotations

import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from django_devcommands.solr import indexer, local, schema
from django_devcommands.solr.errors import SolrError
from django_devcommands.solr.indexes import registry
from django_devcommands.solr.search import search
from tests.conftest import manage
from tests.solr_fixtures import CountLoop

pytestmark = pytest.mark.solr


def ok(result) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    return result.stdout


def fail(result) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    return result.stderr


def test_schema_configset_boots_in_real_solr(
    solr_env, solr_standalone, standalone_client, solr_name
):
    """The files --schema writes, and nothing else, make a core Solr 9 accepts."""
    conf_dir = f"{solr_standalone.home}/configsets/{solr_name}-written/conf"
    out = ok(manage(solr_env, "solr", "--schema", "--path", conf_dir))
    assert "managed-schema.xml" in out
    text = "".join(
        Path(conf_dir, name).read_text() for name in ("managed-schema.xml", "solrconfig.xml")
    )
    for removed in ("Trie", "LatLonType", "<lib", "XSLT", "xslt", "velocity"):
        assert removed not in text
    standalone_client.create_core(solr_name, f"{solr_name}-written")
    try:
        standalone_client.add(
            solr_name,
            [
                {
                    "id": "pages.page.1",
                    "django_ct": "pages.page",
                    "django_id": "1",
                    "title": "Booted schema",
                    "published": "2024-01-02T03:04:05Z",
                    "words": 2,
                }
            ],
        )
        standalone_client.commit(solr_name)
        data = standalone_client.select(solr_name, {"q": "text:booted", "fl": "id,words"})
        assert data["response"]["docs"] == [{"id": "pages.page.1", "words": 2}]
    finally:
        standalone_client.unload_core(solr_name)


def test_create_reindex_search_sync(solr_env, standalone_client, solr_name):
    ok(manage(solr_env, "solr", "--create"))
    assert standalone_client.core_exists(solr_name)
    # Creating twice is refused with a hint, not a traceback.
    assert "already exists" in fail(manage(solr_env, "solr", "--create"))
    out = ok(manage(solr_env, "solr", "--reindex", "--batch-size", "7"))
    assert "pages.page: 25 indexed" in out
    assert standalone_client.count(solr_name) == 25
    # The schema is what the indexes declare: a sync changes nothing, twice.
    assert "up to date" in ok(manage(solr_env, "solr", "--sync-schema"))
    assert "up to date" in ok(manage(solr_env, "solr", "--sync-schema", "--prune"))
    assert "25 documents" in ok(manage(solr_env, "solr", "--status"))
    # -v0 is quiet.
    assert ok(manage(solr_env, "solr", "--reindex", "-v0")) == ""


def tlog_files(client, core: str) -> list[str]:
    """The core's transaction log files, read from the data directory Solr reports."""
    status = client.request("GET", "admin/cores", params={"action": "STATUS", "core": core})
    tlog = Path(status["status"][core]["dataDir"], "tlog")
    return sorted(p.name for p in tlog.iterdir()) if tlog.is_dir() else []


def test_update_log_follows_the_setting(solr_env, standalone_client, solr_name):
    """SOLR_UPDATE_LOG = False: --create and --swap make cores that write no transaction
    log, and the swapped-in core keeps it off; the default keeps Solr's log."""
    ok(manage(solr_env, "solr", "--create"))
    ok(manage(solr_env, "solr", "--reindex"))
    assert tlog_files(standalone_client, solr_name)  # the default: a log is written
    standalone_client.unload_core(solr_name)

    env = {**solr_env, "EXAMPLE_SOLR_UPDATE_LOG": "0"}
    ok(manage(env, "solr", "--create"))
    ok(manage(env, "solr", "--reindex"))
    assert standalone_client.count(solr_name) == 25
    assert tlog_files(standalone_client, solr_name) == []
    assert "Swapped" in ok(manage(env, "solr", "--reindex", "--swap"))
    assert standalone_client.count(solr_name) == 25
    assert tlog_files(standalone_client, solr_name) == []
    # Cloud mode refuses the setting before anything is sent.
    err = fail(manage({**env, "EXAMPLE_SOLR_MODE": "cloud"}, "solr", "--status"))
    assert "devcommands.E312" in err and "SolrCloud" in err


def test_sync_schema_adds_and_prunes(standalone_client, solr_standalone, solr_name):
    """A core made from a bare schema is brought in line; --prune drops a stray field."""
    indexes = registry.all()
    conf_dir = f"{solr_standalone.home}/configsets/{solr_name}/conf"
    schema.write_configset(conf_dir, [], solr_name)  # system fields only
    standalone_client.create_core(solr_name, solr_name)
    try:
        standalone_client.schema_update(
            solr_name, [{"add-field": {"name": "stray", "type": "string", "stored": True}}]
        )
        applied = schema.sync_schema(standalone_client, solr_name, indexes)
        verbs = [
            (verb, body.get("name") or body.get("source"))
            for c in applied
            for verb, body in c.items()
        ]
        assert ("add-field", "title") in verbs and ("add-copy-field", "body") in verbs
        assert ("delete-field", "stray") not in verbs
        assert schema.sync_schema(standalone_client, solr_name, indexes) == []
        pruned = schema.sync_schema(standalone_client, solr_name, indexes, prune=True)
        assert pruned == [{"delete-field": {"name": "stray"}}]
        assert schema.sync_schema(standalone_client, solr_name, indexes, prune=True) == []
    finally:
        standalone_client.unload_core(solr_name)


def test_flush_asks_then_deletes(solr_env, standalone_client, solr_name):
    ok(manage(solr_env, "solr", "--create"))
    ok(manage(solr_env, "solr", "--reindex"))
    # A document of another model, which --models pages.Page must leave alone.
    other = {"id": "other.thing.1", "django_ct": "other.thing", "django_id": "1"}
    standalone_client.add(solr_name, [other])
    standalone_client.commit(solr_name)
    assert "cancelled" in fail(manage(solr_env, "solr", "--flush", input="n\n"))
    assert standalone_client.count(solr_name) == 26
    ok(manage(solr_env, "solr", "--flush", "--models", "pages.Page", input="y\n"))
    assert standalone_client.count(solr_name) == 1
    assert standalone_client.count(solr_name, "django_ct:pages.page") == 0
    ok(manage(solr_env, "solr", "--reindex"))
    ok(manage(solr_env, "solr", "--flush", "--noinput"))
    assert standalone_client.count(solr_name) == 0


def test_unknown_model_is_a_clear_error(solr_env):
    ok(manage(solr_env, "solr", "--create"))
    assert "No search index for 'pages.Nope'" in fail(
        manage(solr_env, "solr", "--reindex", "--models", "pages.Nope")
    )


def test_unreachable_solr_names_the_url_within_the_timeout(example_env):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**example_env, "EXAMPLE_SOLR_URL": f"http://127.0.0.1:{port}/solr"}
    for action in ("--status", "--reindex", "--create", "--sync-schema"):
        err = fail(manage(env, "solr", action, timeout=30))
        assert f"http://127.0.0.1:{port}/solr" in err and "unreachable" in err


def test_missing_core_says_how_to_create_it(solr_env, solr_name):
    err = fail(manage(solr_env, "solr", "--reindex"))
    assert f"no core {solr_name!r}" in err and "solr --create" in err


def test_bad_options_are_one_line_errors(solr_env):
    assert "--batch-size" in fail(manage(solr_env, "solr", "--reindex", "--batch-size", "0"))
    assert "--since" in fail(manage(solr_env, "solr", "--update", "--since", "soon"))
    assert "one of the arguments" in fail(manage(solr_env, "solr"))
    # An option of another action is refused, not ignored.
    assert "--since goes with --update" in fail(
        manage(solr_env, "solr", "--reindex", "--since", "1h")
    )
    assert "--models goes with --reindex or --update or --flush" in fail(
        manage(solr_env, "solr", "--status", "--models", "pages.Page")
    )
    assert "--port goes with --start or --stop" in fail(
        manage(solr_env, "solr", "--reindex", "--port", "8983")
    )


def test_swap_under_a_concurrent_query_loop(solr_env, standalone_client, solr_name):
    """Searches during a --swap reindex always see the full index, never 0 or a part."""
    ok(manage(solr_env, "solr", "--create"))
    ok(manage(solr_env, "solr", "--reindex"))
    with CountLoop(standalone_client.base_url, solr_name, timeout=10, limit=120, join=15) as loop:
        out = ok(manage(solr_env, "solr", "--reindex", "--swap", "--batch-size", "5"))
    assert "Swapped" in out
    assert not loop.errors, loop.errors
    assert len(loop.seen) > 5 and set(loop.seen) == {25}
    assert standalone_client.count(solr_name) == 25
    # The previous index is gone: only the live core carries this name.
    assert [c for c in standalone_client.core_names() if c.startswith(solr_name)] == [solr_name]


@pytest.mark.django_db
def test_swap_failure_leaves_live_index_and_removes_stray(
    standalone_client, solr_standalone, solr_name, monkeypatch
):
    from pages.models import Page

    for i in range(12):
        Page.objects.create(
            title=f"Swap {i}", slug=f"swap-{i}", body="swap body", published=timezone.now()
        )
    target = indexer.Target(standalone_client, solr_name, configset=solr_name)
    indexes = registry.all()
    indexer.create(target, indexes)
    indexer.reindex(indexes, target, batch_size=5)
    assert standalone_client.count(solr_name) == 12
    index = indexes[0]
    calls = {"n": 0}
    real_prepare = type(index).prepare

    def failing_prepare(self, obj):
        calls["n"] += 1
        if calls["n"] > 7:  # fail in the second batch, after a batch was sent
            raise KeyboardInterrupt
        return real_prepare(self, obj)

    monkeypatch.setattr(type(index), "prepare", failing_prepare)
    with pytest.raises(KeyboardInterrupt):
        indexer.swap_reindex(indexes, target, batch_size=5)
    assert standalone_client.count(solr_name) == 12
    assert [c for c in standalone_client.core_names() if c.startswith(solr_name)] == [solr_name]
    standalone_client.unload_core(solr_name)


@pytest.mark.django_db
def test_update_since_and_removal_of_deleted_rows(standalone_client, solr_name):
    from pages.models import Page

    pages = [
        Page.objects.create(
            title=f"Update {i}", slug=f"update-{i}", body="first", published=timezone.now()
        )
        for i in range(6)
    ]
    target = indexer.Target(standalone_client, solr_name, configset=solr_name)
    indexes = registry.all()
    indexer.create(target, indexes)
    indexer.reindex(indexes, target)
    # An old row changed long ago is not re-sent; a fresh change is; a deleted row goes.
    Page.objects.filter(pk=pages[0].pk).update(body="changed", updated=timezone.now())
    Page.objects.filter(pk=pages[1].pk).update(
        body="stale", updated=timezone.now() - timedelta(days=3)
    )
    pages[2].delete()
    results = indexer.update(indexes, target, timedelta(hours=2))
    assert (results[0].indexed, results[0].deleted) == (4, 1)
    assert standalone_client.count(solr_name) == 5
    assert standalone_client.count(solr_name, "text:changed") == 1
    assert standalone_client.count(solr_name, "text:stale") == 0
    # A reindex in place also drops the documents of deleted rows.
    pages[3].delete()
    results = indexer.reindex(indexes, target, batch_size=2)
    assert (results[0].indexed, results[0].deleted) == (4, 1)
    assert standalone_client.count(solr_name) == 4
    standalone_client.unload_core(solr_name)


@pytest.mark.django_db
def test_query_api_escapes_filters_paginates(standalone_client, solr_name):
    from pages.models import Page

    made = [
        Page.objects.create(
            title=f"Needle {i}" if i % 2 else f"Hay {i}",
            slug=f"q-{i}",
            body="common words here",
            published=timezone.now(),
        )
        for i in range(9)
    ]
    target = indexer.Target(standalone_client, solr_name, configset=solr_name)
    indexer.create(target, registry.all())
    indexer.reindex(registry.all(), target)
    kw = {"client": standalone_client, "collection": solr_name}
    found = search("needle", models=[Page], per_page=3, page=2, **kw)
    assert (found.total, found.pages, found.page, len(found.hits)) == (4, 2, 2, 1)
    assert all(o.title.startswith("Needle") for o in found.objects())
    assert search("", **kw).total == 9
    assert search("needle", filters={"slug": made[1].slug}, **kw).total == 1
    ordered = search("", sort="slug desc", per_page=2, **kw)
    assert [o.slug for o in ordered.objects()] == ["q-8", "q-7"]
    with pytest.raises(ValueError, match="not a sort"):
        search("", sort="slug desc; {!xmlparser}", **kw)
    # Query syntax typed by a user is searched for, not obeyed (and never a Solr error).
    hostile = {
        "*:*": 0,
        "title:hay OR *:*": 0,
        '"unclosed': 0,
        "needle)": 4,
        "(needle": 4,
        "AND": 0,
        "a\\": 0,
        "-needle": 4,
        "needle^9 -common": 0,
        "{!lucene}x": 0,
    }
    for text, expected in hostile.items():
        assert search(text, **kw).total == expected, text
    standalone_client.unload_core(solr_name)


@pytest.mark.django_db
def test_search_page(client, standalone_client, solr_standalone, solr_name):
    from pages.models import Page

    Page.objects.create(
        title="Solr searching <b>", slug="s-1", body="findme", published=timezone.now()
    )
    Page.objects.create(title="Other", slug="s-2", body="nothing", published=timezone.now())
    target = indexer.Target(standalone_client, solr_name, configset=solr_name)
    indexer.create(target, registry.all())
    indexer.reindex(registry.all(), target)
    settings = {"SOLR_URL": solr_standalone.url, "SOLR_COLLECTION": solr_name}
    with override_settings(DEVCOMMANDS=settings):
        page = client.get("/search/", {"q": "findme"})
        assert page.status_code == 200
        html = page.content.decode()
        assert "1 result for" in html and "Solr searching &lt;b&gt;" in html
        assert "Other" not in html
        assert "Nothing found" in client.get("/search/", {"q": "absent"}).content.decode()
    with override_settings(DEVCOMMANDS={"SOLR_URL": "http://127.0.0.1:9/solr", "SOLR_TIMEOUT": 2}):
        down = client.get("/search/", {"q": "findme"})
        assert down.status_code == 503 and "unreachable" in down.content.decode()
    standalone_client.unload_core(solr_name)


@pytest.mark.django_db(transaction=True)
def test_signals_batch_per_transaction_and_survive_solr_down(
    standalone_client, solr_standalone, solr_name
):
    from django.db import transaction
    from pages.models import Page

    from django_devcommands.solr import signals

    target = indexer.Target(standalone_client, solr_name, configset=solr_name)
    indexer.create(target, registry.all())
    settings = {"SOLR_URL": solr_standalone.url, "SOLR_COLLECTION": solr_name, "SOLR_SIGNALS": True}
    with override_settings(DEVCOMMANDS=settings):
        sent = signals.stats["sent"]
        with transaction.atomic():
            a = Page.objects.create(
                title="Signal a", slug="sig-a", body="x", published=timezone.now()
            )
            Page.objects.create(title="Signal b", slug="sig-b", body="x", published=timezone.now())
            assert signals.stats["sent"] == sent  # nothing before the commit
        assert signals.stats["sent"] == sent + 2
        with pytest.raises(RuntimeError), transaction.atomic():
            Page.objects.create(
                title="Rolled back", slug="sig-c", body="x", published=timezone.now()
            )
            raise RuntimeError
        a.delete()
        standalone_client.commit(solr_name)
        assert standalone_client.count(solr_name) == 1
        assert standalone_client.count(solr_name, 'slug:"sig-b"') == 1
    down = {**settings, "SOLR_URL": "http://127.0.0.1:9/solr", "SOLR_TIMEOUT": 2}
    with override_settings(DEVCOMMANDS=down):
        failures = signals.stats["failures"]
        Page.objects.create(title="Saved anyway", slug="sig-d", body="x", published=timezone.now())
        assert Page.objects.filter(slug="sig-d").exists()
        assert signals.stats["failures"] == failures + 1
    standalone_client.unload_core(solr_name)


def test_start_status_stop_a_local_solr(example_env, tmp_path):
    """--start provisions and detaches a Solr; --status finds it; --stop ends it."""
    env = {**example_env, "EXAMPLE_SOLR_LOCAL_DIR": str(tmp_path)}
    env.pop("EXAMPLE_SOLR_URL", None)
    assert "no local Solr is running" in fail(manage(env, "solr", "--status"))
    out = ok(manage(env, "solr", "--start", timeout=900))
    assert "is running at http://127.0.0.1:" in out
    solr = local.running("standalone", str(tmp_path))
    assert solr is not None
    try:
        assert "already running" in ok(manage(env, "solr", "--start"))
        assert "Solr 9.10.1 (standalone)" in ok(manage(env, "solr", "--status"))
        ok(manage(env, "solr", "--create"))
        ok(manage(env, "solr", "--reindex"))
        assert "25 documents" in ok(manage(env, "solr", "--status"))
        assert "Stopped" in ok(manage(env, "solr", "--stop"))
        assert not solr.alive()
        assert "No local Solr" in ok(manage(env, "solr", "--stop"))
    finally:
        solr.stop()


STAND_IN_SOLR = """\
#!/bin/sh
# A stand-in for an install's bin/solr with the same command line (start -p PORT -s HOME
# [-c] ... / stop -p PORT); it runs the Maven-provisioned Solr on that port, detached.
exec {python} - "$@" <<'PYTHON'
import sys
from django_devcommands.solr import local

args = sys.argv[1:]
port = int(args[args.index("-p") + 1])
state = {state!r}
with open(state + "/calls", "a") as calls:
    calls.write(" ".join(args) + "\\n")
if args[0] == "start":
    home = args[args.index("-s") + 1] + "/node"
    local.start("standalone", home=home, port=port, detach=True, local_dir=state, heap="256m")
    print("Started Solr server on port", port)
elif args[0] == "stop":
    assert local.stop("standalone", state) is not None, "nothing to stop"
PYTHON
"""


def test_start_status_stop_with_an_installed_solr(example_env, tmp_path):
    """With SOLR_INSTALL, --start runs its bin/solr, the other actions find the Solr it
    started without SOLR_URL, and --stop passes bin/solr the port --start used. bin/solr
    is a stand-in here (Solr's binary distribution is not on Maven Central); the Solr it
    starts is real."""
    import os
    import sys

    install = tmp_path / "solr-install"
    (install / "server" / "solr").mkdir(parents=True)
    (install / "server" / "solr" / "solr.xml").write_text("<solr/>\n")
    script = install / "bin" / "solr"
    script.parent.mkdir()
    state = tmp_path / "stand-in"
    state.mkdir()
    script.write_text(STAND_IN_SOLR.format(python=sys.executable, state=str(state)))
    script.chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **example_env,
        "EXAMPLE_SOLR_INSTALL": str(install),
        "EXAMPLE_SOLR_LOCAL_DIR": str(tmp_path / "local"),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), *sys.path]),
    }
    env.pop("EXAMPLE_SOLR_URL", None)
    assert "has not started" in fail(manage(env, "solr", "--status"))
    try:
        out = ok(manage(env, "solr", "--start", "--port", str(port), timeout=900))
        assert f"is running at http://127.0.0.1:{port}/solr" in out
        assert "Solr 9.10.1 (standalone)" in ok(manage(env, "solr", "--status"))
        ok(manage(env, "solr", "--create"))
        ok(manage(env, "solr", "--reindex"))
        assert "25 documents" in ok(manage(env, "solr", "--status"))
        assert "Stopped" in ok(manage(env, "solr", "--stop"))
        calls = (state / "calls").read_text().splitlines()
        assert calls[0].startswith(f"start -p {port} -s ") and calls[1] == f"stop -p {port}"
        assert "has not started" in fail(manage(env, "solr", "--status"))
    finally:
        local.stop("standalone", str(state))


def test_solr_error_for_a_bad_request(standalone_client):
    with pytest.raises(SolrError, match="HTTP 400"):
        standalone_client.create_core("x y", "no-such-configset")


@pytest.mark.pty
def test_progress_bar_on_a_terminal(solr_env, spawn):
    ok(manage(solr_env, "solr", "--create"))
    child = spawn("solr", "--reindex", "--batch-size", "5", env=solr_env, timeout=60)
    child.expect(r"pages\.page \[#+-*\] \d+/25 +[\d,]+ docs/s ETA +\d+s")
    child.expect(r"pages\.page: 25 indexed")
    child.expect(pexpect_eof())
    child.close()
    assert child.exitstatus == 0


def pexpect_eof():
    import pexpect

    return pexpect.EOF


def test_ctrl_c_during_swap_keeps_live_index_and_removes_stray(
    solr_env, standalone_client, solr_name, tmp_path
):
    """A real SIGINT while --swap is building: one-line error, live index intact, no stray."""
    import shutil
    import signal
    import subprocess
    import sys

    from tests.conftest import EXAMPLE, MANAGE

    env = {**solr_env, "EXAMPLE_DB": str(tmp_path / "db.sqlite3")}
    shutil.copy(solr_env["EXAMPLE_DB"], env["EXAMPLE_DB"])
    ok(manage(env, "load_pages", "--count", "600", "-v0"))
    ok(manage(env, "solr", "--create"))
    ok(manage(env, "solr", "--reindex"))
    live = standalone_client.count(solr_name)
    assert live == 625
    proc = subprocess.Popen(
        [sys.executable, str(MANAGE), "solr", "--reindex", "--swap", "--batch-size", "1"],
        env=env,
        cwd=EXAMPLE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the fresh core is being filled
            fresh = [c for c in standalone_client.core_names() if c.startswith(solr_name + "_")]
            if fresh:
                break
            time.sleep(0.02)
        assert fresh, "the swap never created its fresh core"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 and "Swapped" not in out
    assert "Interrupted; the live index is untouched" in err and "Traceback" not in err
    assert standalone_client.count(solr_name) == live
    assert [c for c in standalone_client.core_names() if c.startswith(solr_name)] == [solr_name]


def test_update_command_reports_changed_rows(solr_env, standalone_client, solr_name):
    ok(manage(solr_env, "solr", "--create"))
    ok(manage(solr_env, "solr", "--reindex"))
    # Every page of the example was saved just now: all 25 are within the last hour.
    assert "pages.page: 25 indexed" in ok(manage(solr_env, "solr", "--update", "--since", "1h"))
    assert standalone_client.count(solr_name) == 25
    # A duration reaching before year 1 is bad input, not a traceback.
    assert "--since" in fail(manage(solr_env, "solr", "--update", "--since", "800000d"))


@pytest.mark.django_db
def test_every_field_kind_round_trips_through_a_real_solr(
    standalone_client, solr_standalone, solr_name
):
    """Each field kind, multi-valued fields, stored/indexed flags, copy-to and a custom
    analyzer: the configset boots, documents are accepted, and queries on each field
    find them; the Schema API sync of the same definitions changes nothing twice."""
    from pages.models import Page

    from django_devcommands.solr import indexes as ix

    class Kinds(ix.SearchIndex):
        model = Page
        title = ix.TextField()
        code = ix.TextField(
            analyzer={"tokenizer": {"name": "keyword"}, "filters": [{"name": "lowercase"}]},
            copy_to_text=False,
        )
        tags = ix.StringField(multi_valued=True, copy_to_text=True)
        rank = ix.IntField()
        views = ix.LongField()
        ratio = ix.FloatField()
        score = ix.DoubleField(stored=False)
        flag = ix.BooleanField()
        published = ix.DateField()
        secret = ix.StringField(stored=False)
        shown = ix.StringField(indexed=False)

        def prepare_code(self, page):
            return f"AB-{page.pk} X"

        def prepare_tags(self, page):
            return ["red", f"tag{page.pk}"]

        def prepare_rank(self, page):
            return page.pk

        def prepare_views(self, page):
            return 2**40 + page.pk

        def prepare_ratio(self, page):
            return page.pk / 4

        def prepare_score(self, page):
            return page.pk * 1.5

        def prepare_flag(self, page):
            return page.pk % 2 == 0

        def prepare_secret(self, page):
            return f"s{page.pk}"

        def prepare_shown(self, page):
            return f"v{page.pk}"

    now = timezone.now()
    pages = [
        Page.objects.create(
            title=f"Kind {i}", slug=f"kind-{i}", body="b", published=now - timedelta(days=i)
        )
        for i in range(4)
    ]
    index = Kinds()
    configset = f"{solr_name}-kinds"
    schema.write_configset(
        f"{solr_standalone.home}/configsets/{configset}/conf", [index], configset
    )
    standalone_client.create_core(solr_name, configset)
    try:
        standalone_client.add(solr_name, [index.prepare(p) for p in pages])
        standalone_client.commit(solr_name)

        def ids(q: str, **params) -> list[int]:
            data = standalone_client.select(
                solr_name, {"q": q, "fl": "django_id", "rows": 10, "sort": "rank asc", **params}
            )
            return [int(d["django_id"]) for d in data["response"]["docs"]]

        pk = [p.pk for p in pages]
        assert ids(f"code:ab-{pk[1]}\\ x") == [pk[1]]  # keyword + lowercase: whole value
        assert ids("code:ab") == []
        assert ids("tags:red") == pk and ids(f"tags:tag{pk[2]}") == [pk[2]]
        assert ids(f"text:tag{pk[3]}") == [pk[3]]  # copied to the catch-all field
        assert ids(f"rank:[{pk[1]} TO {pk[2]}]") == pk[1:3]
        assert ids(f"views:{2**40 + pk[0]}") == [pk[0]]
        assert ids(f"ratio:[{pk[2] / 4} TO *]") == pk[2:]
        assert ids(f"score:{pk[3] * 1.5}") == [pk[3]]
        assert ids("flag:true") == [p for p in pk if p % 2 == 0]
        assert ids("published:[NOW-1DAY TO *]") == [pk[0]]
        assert ids(f"secret:s{pk[0]}") == [pk[0]]  # indexed, not stored
        assert ids(f"shown:v{pk[0]}") == []  # stored, not indexed
        doc = standalone_client.select(solr_name, {"q": f"rank:{pk[0]}", "fl": "*"})["response"][
            "docs"
        ][0]
        assert doc["tags"] == ["red", f"tag{pk[0]}"] and doc["views"] == 2**40 + pk[0]
        assert doc["flag"] is (pk[0] % 2 == 0) and doc["shown"] == f"v{pk[0]}"
        assert "secret" not in doc and "score" not in doc
    finally:
        standalone_client.unload_core(solr_name)

    # The same definitions through the Schema API, from a bare core: once, then nothing.
    bare = f"{solr_name}-bare"
    schema.write_configset(f"{solr_standalone.home}/configsets/{bare}/conf", [], bare)
    standalone_client.create_core(solr_name, bare)
    try:
        assert schema.sync_schema(standalone_client, solr_name, [index])
        assert schema.sync_schema(standalone_client, solr_name, [index]) == []
        assert schema.sync_schema(standalone_client, solr_name, [index], prune=True) == []
    finally:
        standalone_client.unload_core(solr_name)


@pytest.mark.django_db
def test_models_picks_among_several_indexes(standalone_client, solr_standalone, solr_name):
    """--reindex and --flush with --models touch that model's documents only."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from pages.models import Page

    from django_devcommands.solr import indexes as ix

    class UserIndex(ix.SearchIndex):
        model = User
        username = ix.StringField()

    for i in range(3):
        User.objects.create(username=f"user{i}")
        Page.objects.create(title=f"P{i}", slug=f"p-{i}", body="b", published=timezone.now())
    registry.register(UserIndex)
    settings = {
        "SOLR_URL": solr_standalone.url,
        "SOLR_COLLECTION": solr_name,
        "SOLR_CONFIGSET": solr_name,
    }
    try:
        with override_settings(DEVCOMMANDS=settings):
            call_command("solr", "--create", verbosity=0)

            def counts() -> tuple[int, int]:
                return (
                    standalone_client.count(solr_name, "django_ct:pages.page"),
                    standalone_client.count(solr_name, "django_ct:auth.user"),
                )

            call_command("solr", "--reindex", "--models", "auth.User", verbosity=0)
            assert counts() == (0, 3)
            call_command("solr", "--reindex", "--models", "pages.Page", verbosity=0)
            assert counts() == (3, 3)
            call_command("solr", "--flush", "--models", "auth.User", "--noinput", verbosity=0)
            assert counts() == (3, 0)
    finally:
        registry.unregister(User)
        if standalone_client.core_exists(solr_name):
            standalone_client.unload_core(solr_name)
