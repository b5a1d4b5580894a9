"""DEVCOMMANDS['SOLR_AUTH'] against a real Solr 9 that requires Basic authentication
(BasicAuthPlugin + RuleBasedAuthorizationPlugin; see solr_secured in tests/solr_fixtures.py)."""

from __future__ import annotations

import pytest
import requests
from django.test import override_settings

from django_devcommands.solr import local
from django_devcommands.solr.client import SolrClient
from django_devcommands.solr.errors import SolrAuthError
from django_devcommands.solr.search import search
from tests.conftest import manage
from tests.solr_fixtures import SECURED_AUTH, _require_java

pytestmark = pytest.mark.solr


def ok(result) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    return result.stdout


def one_line_error(result) -> str:
    """The command failed with a single CommandError line and no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("CommandError: ")
    return lines[0]


def test_solr_really_requires_authentication(solr_secured):
    """Without this the failure tests below could pass against an open Solr."""
    url = f"{solr_secured.url}/admin/info/system"
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, auth=SECURED_AUTH, timeout=30).status_code == 200
    wrong = (SECURED_AUTH[0], "nope")
    assert requests.get(url, auth=wrong, timeout=30).status_code == 401


def test_create_reindex_search_with_the_right_credentials(secured_env, solr_secured, solr_name):
    ok(manage(secured_env, "solr", "--create"))
    assert "pages.page: 25 indexed" in ok(manage(secured_env, "solr", "--reindex"))
    assert "25 documents" in ok(manage(secured_env, "solr", "--status"))
    assert "Swapped" in ok(manage(secured_env, "solr", "--reindex", "--swap"))
    assert "up to date" in ok(manage(secured_env, "solr", "--sync-schema"))
    # The query API reads SOLR_AUTH from the settings too.
    devcommands = {
        "SOLR_URL": solr_secured.url,
        "SOLR_COLLECTION": solr_name,
        "SOLR_AUTH": SECURED_AUTH,
    }
    with override_settings(DEVCOMMANDS=devcommands):
        assert search("").total == 25
    anonymous = {**devcommands, "SOLR_AUTH": None}
    with override_settings(DEVCOMMANDS=anonymous), pytest.raises(SolrAuthError, match="HTTP 401"):
        search("")


@pytest.mark.parametrize(
    ("auth", "says"),
    [
        (None, "Solr requires credentials: set DEVCOMMANDS['SOLR_AUTH']"),
        (f"{SECURED_AUTH[0]}:wrong", f"rejected the user {SECURED_AUTH[0]!r}"),
        (f"intruder:{SECURED_AUTH[1]}", "rejected the user 'intruder'"),
    ],
    ids=["no-credentials", "wrong-password", "unknown-user"],
)
def test_missing_or_wrong_credentials_fail_in_one_line(secured_env, solr_secured, auth, says):
    env = dict(secured_env)
    if auth is None:
        env.pop("EXAMPLE_SOLR_AUTH")
    else:
        env["EXAMPLE_SOLR_AUTH"] = auth
    for action in ("--create", "--reindex", "--status"):
        line = one_line_error(manage(env, "solr", action))
        assert "authentication failed (HTTP 401)" in line, line
        assert f"for {solr_secured.url}/" in line, line
        assert says in line, line
        assert SECURED_AUTH[1] not in line  # the password is never echoed


def test_client_raises_auth_error_with_status(solr_secured):
    client = SolrClient(solr_secured.url, timeout=30, retries=0)
    try:
        with pytest.raises(SolrAuthError) as caught:
            client.system_info()
        assert caught.value.status == 401
        assert str(caught.value).startswith(
            f"Solr authentication failed (HTTP 401) for {solr_secured.url}/admin/info/system: "
        )
    finally:
        client.close()
    client = SolrClient(solr_secured.url, timeout=30, auth=SECURED_AUTH)
    try:
        assert client.is_cloud() is False
    finally:
        client.close()


def test_read_only_user_searches_but_cannot_create(tmp_path, example_env, solr_name):
    """HTTP 403 (authenticated, not authorized) is a one-line error naming the user.

    A Solr of its own: a read-only user is added through Solr's security APIs.
    """
    _require_java()
    solr = local.start(
        "standalone", home=tmp_path / "home", heap="384m", timeout=900, auth=SECURED_AUTH
    )
    try:
        admin = {"auth": SECURED_AUTH, "timeout": 30}
        for path, body in (
            ("admin/authentication", {"set-user": {"reader": "read-only-pw"}}),
            (
                "admin/authorization",
                {
                    "set-user-role": {"reader": ["reader"]},
                    # Before "all" (index 1): rules match in order.
                    "set-permission": {"name": "read", "role": ["admin", "reader"], "before": 1},
                },
            ),
        ):
            response = requests.post(f"{solr.url}/{path}", json=body, **admin)
            assert response.status_code == 200, response.text
        env = {
            **example_env,
            "EXAMPLE_SOLR_URL": solr.url,
            "EXAMPLE_SOLR_COLLECTION": solr_name,
            "EXAMPLE_SOLR_CONFIGSET": solr_name,
            "EXAMPLE_SOLR_AUTH": ":".join(SECURED_AUTH),
        }
        ok(manage(env, "solr", "--create"))
        ok(manage(env, "solr", "--reindex"))
        reader = SolrClient(solr.url, timeout=30, auth=("reader", "read-only-pw"))
        try:
            assert reader.count(solr_name) == 25
        finally:
            reader.close()
        line = one_line_error(
            manage({**env, "EXAMPLE_SOLR_AUTH": "reader:read-only-pw"}, "solr", "--reindex")
        )
        assert "authorization failed (HTTP 403)" in line and f"for {solr.url}/" in line, line
        assert "user 'reader' lacks the permission" in line, line
    finally:
        solr.stop()
    assert not solr.alive()
