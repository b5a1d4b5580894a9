"""Solr pieces that need no Solr: index classes, registry, checks, parsing, escaping, keyset."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
from xml.etree import ElementTree

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pages.models import Page

from django_devcommands import checks
from django_devcommands.conf import conf
from django_devcommands.solr import indexer, schema
from django_devcommands.solr import indexes as ix
from django_devcommands.solr.search import escape
from tests.conftest import manage


def test_fields_lists_declared_and_system_fields(example_env):
    done = manage(example_env, "solr", "--fields")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "text_general" in lines["title"] and "copy->text" in lines["title"]
    assert "pdate" in lines["published"]
    assert "pint" in lines["words"] and "copy->text" not in lines["words"]
    assert "system" in lines["id"]


def test_schema_without_path_prints_the_managed_schema(example_env):
    done = manage(example_env, "solr", "--schema")
    assert done.returncode == 0, done.stderr
    root = ElementTree.fromstring(done.stdout)
    assert root.tag == "schema" and root.findtext("uniqueKey") == "id"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (ix.TextField(), 12, "12"),
        (ix.StringField(), "a b", "a b"),
        (ix.IntField(), "7", 7),
        (ix.LongField(), 2**40, 2**40),
        (ix.FloatField(), "1.5", 1.5),
        (ix.DoubleField(), 2, 2.0),
        (ix.BooleanField(), 0, False),
        (
            ix.DateField(),
            datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
            "2024-01-02T03:04:05.000Z",
        ),
        (
            ix.DateField(),
            datetime.datetime(
                2024, 1, 2, 5, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            "2024-01-02T03:04:05.000Z",
        ),
        (ix.DateField(), datetime.date(2024, 1, 2), "2024-01-02T00:00:00Z"),
        (ix.StringField(multi_valued=True), "one", ["one"]),
        (ix.IntField(multi_valued=True), ["1", None, 2], [1, 2]),
        (ix.TextField(), None, None),
    ],
)
def test_field_conversion(field, value, expected):
    assert field.to_solr(value) == expected


def test_copy_to_text_defaults_and_analyzer_only_on_text():
    assert ix.TextField().copy_to_text and not ix.StringField().copy_to_text
    assert ix.StringField(copy_to_text=True).copy_to_text
    with pytest.raises(ix.IndexDefinitionError, match="TextField only"):
        ix.StringField(analyzer={"tokenizer": {"name": "whitespace"}})


def test_registry_rejects_duplicates_and_non_models():
    registry = ix.Registry()
    registry._discovered = True

    class One(ix.SearchIndex):
        model = Page
        title = ix.TextField()

    class Two(ix.SearchIndex):
        model = Page
        title = ix.TextField()

    registry.register(One)
    registry.register(One)  # the same class again (a re-import) is fine
    with pytest.raises(ix.AlreadyRegistered, match="indexed twice"):
        registry.register(Two)

    class NoModel(ix.SearchIndex):
        title = ix.TextField()

    with pytest.raises(ix.IndexDefinitionError, match="must set model"):
        registry.register(NoModel)
    with pytest.raises(ix.IndexDefinitionError, match=r"No search index for 'pages\.Nope'"):
        registry.for_labels(["pages.Nope"])
    assert registry.for_labels(["PAGES.page"])[0].label() == "pages.page"


def test_autodiscovery_finds_the_example_index():
    assert [type(i).__name__ for i in ix.registry.all()] == ["PageIndex"]


def test_prepare_builds_the_document():
    index = ix.registry.get(Page)
    page = Page(
        pk=5,
        title="T",
        slug="s",
        body="one two three",
        published=datetime.datetime(2024, 5, 6, tzinfo=datetime.timezone.utc),
    )
    assert index.prepare(page) == {
        "id": "pages.page.5",
        "django_ct": "pages.page",
        "django_id": "5",
        "title": "T",
        "body": "one two three",
        "slug": "s",
        "published": "2024-05-06T00:00:00.000Z",
        "words": 3,
    }
    # Only the columns the fields read are loaded (the prepare_words hook reads body).
    assert index.load_fields() == ["body", "id", "published", "slug", "title"]


def test_prepare_takes_the_general_path_whenever_the_fast_one_would_differ():
    # prepare() puts a plain column's value straight into the document when it already
    # has the field's type; everything else must still be converted as before.
    class Shout(ix.TextField):
        def convert(self, value):
            return str(value).upper()

    class Mixed(ix.SearchIndex):
        model = Page
        title = Shout()  # a subclass with its own convert(): never taken as is
        slug = ix.IntField(model_attr="pk")  # an int column into an int field
        published = ix.BooleanField(model_attr="title")  # a str into a boolean field
        body = ix.TextField(model_attr="get_absolute_url")  # a method: called
        words = ix.FloatField(model_attr="body", multi_valued=True)
        tags = ix.StringField(model_attr="slug", multi_valued=True)

    index = Mixed()
    page = Page(pk=7, title="quiet", slug="a-b", body="1.5", published=None)
    assert index.prepare(page) == {
        "id": "pages.page.7",
        "django_ct": "pages.page",
        "django_id": "7",
        "title": "QUIET",
        "slug": 7,
        "published": True,
        "body": page.get_absolute_url(),
        "words": [1.5],
        "tags": ["a-b"],
    }

    class Reads(ix.SearchIndex):  # an index overriding read() sees every field
        model = Page
        title = ix.TextField()

        def read(self, obj, field):
            return "read: " + obj.title

    assert Reads().prepare(page)["title"] == "read: quiet"
    pk_true = Page(pk=8, title="t", slug="s", body="2")
    pk_true.pk = True  # bool is an int subclass: converted, not taken as is
    assert type(Mixed().prepare(pk_true)["slug"]) is int


@pytest.mark.parametrize("fast", [True, False])
def test_json_encoders_agree(fast):
    docs = [
        {
            "id": "pages.page.1",
            "title": 'Ünïcode "quoted" \\ and \n newline',
            "n": 3,
            "x": 1.25,
            "b": True,
            "when": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
            "day": datetime.date(2024, 5, 6),
            "amount": decimal.Decimal("1.10"),
            "many": ["a", "b"],
        }
    ]
    encode = indexer.json_encoder(fast=fast)
    assert encode.__name__ == ("fast_dumps" if fast else "dumps")  # orjson: the solr extra
    body = encode(docs)
    assert isinstance(body, bytes)
    assert json.loads(body) == json.loads(indexer.json_encoder(fast=False)(docs))
    assert json.loads(body)[0]["when"] == "2024-05-06T07:08:09.000Z"
    assert json.loads(body)[0]["day"] == "2024-05-06T00:00:00Z"
    assert json.loads(body)[0]["amount"] == "1.10"


def test_json_encoder_falls_back_without_orjson(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson now fails
    encode = indexer.json_encoder()
    assert encode.__name__ == "dumps"
    assert json.loads(encode([{"a": "é"}])) == [{"a": "é"}]


def _only(index_class: type) -> ix.Registry:
    registry = ix.Registry()
    registry._discovered = True
    registry.register(index_class)
    return registry


def test_problems_become_check_errors(monkeypatch):
    registry = ix.Registry()
    registry._discovered = True

    class Bad(ix.SearchIndex):
        model = Page
        updated_field = "title"
        text = ix.TextField()
        missing = ix.StringField()
        slug = ix.IntField()

    class WithFiles(ix.SearchIndex):
        model = get_user_model()
        username = ix.TextField(
            analyzer={
                "tokenizer": {"name": "standard"},
                "filters": [
                    {"name": "stop", "words": "lang/stopwords_fr.txt"},
                    {"name": "stop", "words": "stopwords.txt"},
                ],
            }
        )

    class AlsoBad(ix.SearchIndex):
        model = get_user_model()
        slug = ix.StringField(model_attr="username")

    registry.register(Bad)
    registry.register(AlsoBad)
    texts = [p.message for p in _only(WithFiles).problems()]
    assert texts == [
        "the analyzer of field 'username' names 'lang/stopwords_fr.txt', which "
        "the configset does not contain."
    ]
    monkeypatch.setattr(ix, "registry", registry)
    messages = checks.check_search_indexes()
    assert {m.id for m in messages} == {"devcommands.E310"}
    text = " ".join(m.msg for m in messages)
    assert "reserved name" in text and "'missing'" in text and "updated_field 'title'" in text
    assert "is pint here but string" in text or "is string here but pint" in text


def test_duplicate_registration_at_import_is_check_e311(monkeypatch):
    registry = ix.Registry()

    def boom(*args, **kwargs):
        raise ix.AlreadyRegistered("pages.Page is indexed twice: by a and by b.")

    monkeypatch.setattr("django.utils.module_loading.autodiscover_modules", boom)
    monkeypatch.setattr(ix, "registry", registry)
    assert [m.id for m in checks.check_search_indexes()] == ["devcommands.E311"]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, set()),
        ({"SOLR_URL": "http://127.0.0.1:8983/solr"}, set()),
        ({"SOLR_URL": "ftp://x/solr"}, {"devcommands.E301"}),
        ({"SOLR_URL": "localhost:8983"}, {"devcommands.E301"}),
        ({"SOLR_MODE": "cluster"}, {"devcommands.E302"}),
        ({"SOLR_COLLECTION": "my core"}, {"devcommands.E303"}),
        ({"SOLR_CONFIGSET": ""}, {"devcommands.E303"}),
        ({"SOLR_BATCH_SIZE": 0}, {"devcommands.E304"}),
        ({"SOLR_SHARDS": 1.5}, {"devcommands.E304"}),
        ({"SOLR_TIMEOUT": True}, {"devcommands.E304"}),
        ({"SOLR_TIMEOUT": 0.5}, set()),
        ({"SOLR_AUTH": "user:pw"}, {"devcommands.E305"}),
        (
            {"SOLR_AUTH": ("u", "p"), "SOLR_URL": "http://search.example.com/solr"},
            {"devcommands.W301"},
        ),
        ({"SOLR_AUTH": ("u", "p"), "SOLR_URL": "https://search.example.com/solr"}, set()),
        ({"SOLR_SIGNALS": "yes"}, {"devcommands.E306"}),
        ({"SOLR_INSTALL": "/nonexistent"}, {"devcommands.E307"}),
        ({"SOLR_VERSION": "8.11.2"}, {"devcommands.E308"}),
        ({"SOLR_UPDATE_LOG": "no"}, {"devcommands.E309"}),
        ({"SOLR_UPDATE_LOG": False}, set()),
        ({"SOLR_UPDATE_LOG": False, "SOLR_MODE": "cloud"}, {"devcommands.E312"}),
    ],
)
def test_solr_settings_checks(settings, expected):
    with override_settings(DEVCOMMANDS=settings):
        ids = {m.id for m in checks.check_settings()}
    assert ids == expected


def test_settings_are_read_live():
    assert conf.SOLR_COLLECTION == "pages"  # the example's settings
    with override_settings(DEVCOMMANDS={"SOLR_COLLECTION": "other", "SOLR_URL": "http://h/solr/"}):
        assert conf.SOLR_COLLECTION == "other" and conf.SOLR_URL == "http://h/solr"
    with override_settings(DEVCOMMANDS={}):
        assert conf.SOLR_BATCH_SIZE == 1000


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("3d", 259200), ("1w", 604800), ("1.5h", 5400)],
)
def test_parse_since(text, seconds):
    assert indexer.parse_since(text).total_seconds() == seconds


@pytest.mark.parametrize(
    "text", ["", "2", "h", "-1h", "2y", "nanh", "soon", "infd", "1e400d", "1e300w", "800000d"]
)
def test_parse_since_rejects(text):
    with pytest.raises(ValueError):
        indexer.parse_since(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("django solr", "django solr"),
        ("title:x", "title\\:x"),
        ("*:*", "\\*\\:\\*"),
        ('say "hi"', 'say \\"hi\\"'),
        ("a AND b OR NOT c", "a and b or not c"),
        ("(x) [y] {z}", "\\(x\\) \\[y\\] \\{z\\}"),
        ("a&&b||c", "a\\&\\&b\\|\\|c"),
        ("-x +y !z ~w ^v ?u /t \\s", "\\-x \\+y \\!z \\~w \\^v \\?u \\/t \\\\s"),
    ],
)
def test_escape(text, expected):
    assert escape(text) == expected


def test_configset_is_solr9_clean_and_well_formed():
    files = schema.configset_files(ix.registry.all(), "pages")
    assert set(files) == {"managed-schema.xml", "solrconfig.xml", "stopwords.txt", "synonyms.txt"}
    for name in ("managed-schema.xml", "solrconfig.xml"):
        ElementTree.fromstring(files[name])  # well-formed XML
        for gone in ("Trie", "LatLonType", "<lib", "XSLT", "xslt", "velocity"):
            assert gone not in files[name], (name, gone)
        assert "--" not in files[name].replace("<!--", "").replace("-->", "")
    root = ElementTree.fromstring(files["managed-schema.xml"])
    fields = {f.get("name"): f.get("type") for f in root.iter("field")}
    assert fields["published"] == "pdate" and fields["words"] == "pint"
    assert {(c.get("source"), c.get("dest")) for c in root.iter("copyField")} == {
        ("title", "text"),
        ("body", "text"),
    }
    # Every file a field type names is part of the configset.
    referenced = {
        v for el in root.iter() for k, v in el.attrib.items() if k in ("words", "synonyms")
    }
    assert referenced <= set(files)


def test_custom_analyzer_gets_its_own_field_type():
    class Custom(ix.SearchIndex):
        model = Page
        title = ix.TextField(
            analyzer={"tokenizer": {"name": "whitespace"}, "filters": [{"name": "lowercase"}]}
        )

    plan = schema.plan([Custom()])
    assert plan.fields["title"]["type"] == "text_title"
    xml = schema.managed_schema_xml(plan)
    assert '<tokenizer name="whitespace"/>' in xml


@pytest.mark.django_db
def test_keyset_batches_walk_by_pk_without_offset():
    now = timezone.now()
    Page.objects.bulk_create(
        [Page(title=f"k{i}", slug=f"k-{i}", body="b", published=now) for i in range(23)]
    )
    with CaptureQueriesContext(connection) as queries:
        batches = list(indexer.keyset_batches(Page.objects.all(), 10, ["id", "title"]))
    assert [len(b) for b in batches] == [10, 10, 3]
    pks = [p.pk for b in batches for p in b]
    assert pks == sorted(pks) and len(set(pks)) == 23
    sql = " ".join(q["sql"] for q in queries.captured_queries).upper()
    assert "OFFSET" not in sql and '"BODY"' not in sql
    assert len(queries.captured_queries) == 3


def test_json_default_handles_dates():
    body = json.dumps({"d": timezone.now()}, default=indexer._json_default)
    assert body.endswith('Z"}')


class _Flaky:
    """A real HTTP server on 127.0.0.1 answering 503 ``failures`` times, then JSON 200."""

    def __init__(self, failures: int) -> None:
        import http.server
        import threading

        self.failures = failures
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.requests.append(self.path)
                if len(outer.requests) <= outer.failures:
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"busy")
                    return
                body = b'{"responseHeader":{"status":0}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/solr"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.mark.parametrize(("failures", "succeeds"), [(0, True), (2, True), (3, True), (4, False)])
def test_updates_retry_transient_errors_with_backoff(failures, succeeds):
    from django_devcommands.solr.client import SolrClient
    from django_devcommands.solr.errors import SolrError

    server = _Flaky(failures)
    client = SolrClient(server.url, timeout=5, retries=3, backoff=0.01)
    try:
        if succeeds:
            client.add("core", [{"id": "x"}])
        else:
            with pytest.raises(SolrError, match="HTTP 503"):
                client.add("core", [{"id": "x"}])
        assert len(server.requests) == min(failures + 1, 4)
        # Queries are not retried: one failure is reported at once.
        server.requests.clear()
        server.failures = 1
        with pytest.raises(SolrError, match="HTTP 503"):
            client.request("POST", "core/select", data="{}", content_type="application/json")
        assert len(server.requests) == 1
    finally:
        client.close()
        server.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--flush", "--swap"], "--swap goes with --reindex"),
        (["--reindex", "--prune"], "--prune goes with --sync-schema"),
        (["--fields", "--path", "x"], "--path goes with --schema"),
        (["--reindex", "--batch-size", "0"], "--batch-size must be 1 or more"),
        (["--start", "--port", "70000"], "--port must be from 0 to 65535"),
        (["--fields", "--reindex"], "not allowed with argument"),
    ],
)
def test_bad_combinations_are_one_line_errors(example_env, args, message):
    done = manage(example_env, "solr", *args)
    assert done.returncode != 0 and message in done.stderr
    assert "Traceback" not in done.stderr


def test_password_hash_matches_solr_reference_guide():
    """The solr/SolrRocks example of Solr's Basic Authentication Plugin page."""
    from django_devcommands.solr import local

    salt = base64.b64decode("Ndd7LKvVBAaZIF0QAVi1ekCfAJXr1GGfLtRUXhgrF8c=")
    assert local.password_hash("SolrRocks", salt) == (
        "IV0EHq1OnNrj6gvRCwvFwTrZ1+z1oBbnQdiVC3otuq0= Ndd7LKvVBAaZIF0QAVi1ekCfAJXr1GGfLtRUXhgrF8c="
    )
    # A fresh random salt each time: the same password never gives the same credential.
    first, second = local.password_hash("pw"), local.password_hash("pw")
    assert first != second and len(base64.b64decode(first.split()[1])) == 32


def test_write_security_json(tmp_path):
    from django_devcommands.solr import local

    path = local.write_security(tmp_path, "alice", "s3cret")
    data = json.loads(path.read_text())
    assert data["authentication"]["class"] == "solr.BasicAuthPlugin"
    assert data["authentication"]["blockUnknown"] is True
    assert list(data["authentication"]["credentials"]) == ["alice"]
    assert "s3cret" not in path.read_text()
    assert data["authorization"]["user-role"] == {"alice": ["admin"]}
    assert path.stat().st_mode & 0o077 == 0


def test_secured_local_solr_is_standalone_only(tmp_path):
    from django_devcommands.solr import local
    from django_devcommands.solr.errors import LocalSolrError

    with pytest.raises(LocalSolrError, match="standalone only"):
        local.start("cloud", home=tmp_path, auth=("u", "p"))
    assert not (tmp_path / "security.json").exists()


def test_local_solr_state_naming_a_reused_pid_is_stale(tmp_path):
    # A state file older than the process it names: the pid now belongs to a program
    # started later (after a reboot); solr --stop must not signal it.
    import os
    import subprocess
    import sys
    import time

    from django_devcommands.solr import local

    innocent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path = local.state_file("standalone", str(tmp_path))
        path.parent.mkdir(parents=True)
        state = {"mode": "standalone", "pid": innocent.pid, "urls": ["http://127.0.0.1:9/solr"]}
        path.write_text(json.dumps({**state, "home": str(tmp_path)}))
        assert local.running("standalone", str(tmp_path)).pid == innocent.pid
        long_ago = time.time() - 3600
        os.utime(path, (long_ago, long_ago))
        assert local.stop("standalone", str(tmp_path)) is None
        assert innocent.poll() is None and not path.exists()
    finally:
        innocent.kill()
        innocent.wait(10)


def test_format_date_gives_one_utc_form_for_one_instant():
    """Django's UTC datetimes take a shortcut; it must agree with the general path."""
    from zoneinfo import ZoneInfo

    utc = datetime.datetime(2026, 11, 27, 1, 2, 3, 456789, tzinfo=datetime.timezone.utc)
    paris = utc.astimezone(ZoneInfo("Europe/Paris"))
    fixed = utc.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))
    expected = "2026-11-27T01:02:03.456Z"
    assert ix.format_date(utc) == ix.format_date(paris) == ix.format_date(fixed) == expected
    assert ix.format_date(utc.replace(tzinfo=None)) == expected  # naive is taken as UTC
    assert ix.format_date(utc.replace(microsecond=0)) == "2026-11-27T01:02:03.000Z"
    assert ix.format_date(datetime.date(2026, 11, 27)) == "2026-11-27T00:00:00Z"
    with pytest.raises(TypeError):
        ix.format_date(3)


def test_ctrl_c_message_says_what_was_left():
    from django_devcommands.management.commands.solr import interrupted

    assert "live index is untouched" in interrupted("reindex", swap=True)
    for action in ("reindex", "update"):
        message = interrupted(action, swap=False)
        assert "untouched" not in message and "again" in message
    assert interrupted("flush", swap=False) == "Interrupted."
