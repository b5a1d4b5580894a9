"""Real Solr 9 for the tests: one standalone node and one 2-node SolrCloud at most per
session, started from Maven Central's artifacts by django_devcommands.solr.local.

The first run downloads the artifacts into ~/.m2 (about 100 MB, shared by every tox
env); later starts take a few seconds. The Solr processes watch their stdin pipe, so
even a killed test run does not leave them behind.
"""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from collections.abc import Iterator

import pytest

from django_devcommands.solr import local
from django_devcommands.solr.client import SolrClient

SOLR_VERSION = "9.10.1"
_names = itertools.count(1)


def _require_java() -> None:
    """Missing Java/Maven fails the Solr tests: CI must have them (scripts/apt-packages.txt)."""
    missing = [tool for tool in ("java", "javac", "mvn") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"real Solr needs {', '.join(missing)} on PATH (scripts/test installs them; "
            "deselect with -m 'not solr')"
        )


@pytest.fixture(scope="session")
def solr_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.LocalSolr]:
    """A standalone Solr node on 127.0.0.1 and an ephemeral port."""
    _require_java()
    solr = local.start(
        "standalone",
        home=tmp_path_factory.mktemp("solr-standalone"),
        version=SOLR_VERSION,
        heap="512m",
        timeout=900,
    )
    try:
        yield solr
    finally:
        solr.stop()


@pytest.fixture(scope="session")
def solr_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.LocalSolr]:
    """A 2-node SolrCloud with an embedded ZooKeeper, on 127.0.0.1."""
    _require_java()
    solr = local.start(
        "cloud",
        home=tmp_path_factory.mktemp("solr-cloud"),
        nodes=2,
        version=SOLR_VERSION,
        heap="768m",
        timeout=900,
    )
    try:
        yield solr
    finally:
        solr.stop()


#: The one user of the secured Solr (see solr_secured).
SECURED_AUTH = ("devsearch", "Corr3ct-horse:battery")


@pytest.fixture(scope="module")
def solr_secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.LocalSolr]:
    """A standalone Solr that requires Basic authentication as SECURED_AUTH (module-scoped:
    only the auth tests start it; stopped by pid afterwards)."""
    _require_java()
    solr = local.start(
        "standalone",
        home=tmp_path_factory.mktemp("solr-secured"),
        version=SOLR_VERSION,
        heap="384m",
        timeout=900,
        auth=SECURED_AUTH,
    )
    try:
        yield solr
    finally:
        solr.stop()


@pytest.fixture
def secured_env(
    example_env: dict[str, str], solr_secured: local.LocalSolr, solr_name: str
) -> dict[str, str]:
    """example_env pointed at the secured Solr with the right SOLR_AUTH, a core of its own."""
    return {
        **example_env,
        "EXAMPLE_SOLR_URL": solr_secured.url,
        "EXAMPLE_SOLR_MODE": "standalone",
        "EXAMPLE_SOLR_COLLECTION": solr_name,
        "EXAMPLE_SOLR_CONFIGSET": solr_name,
        "EXAMPLE_SOLR_AUTH": ":".join(SECURED_AUTH),
    }


@pytest.fixture
def solr_name() -> str:
    """A core/collection name of its own for one test."""
    return f"t{next(_names)}"


@pytest.fixture
def standalone_client(solr_standalone: local.LocalSolr) -> Iterator[SolrClient]:
    client = SolrClient(solr_standalone.url, timeout=30)
    yield client
    client.close()


@pytest.fixture
def cloud_client(solr_cloud: local.LocalSolr) -> Iterator[SolrClient]:
    client = SolrClient(solr_cloud.url, timeout=60)
    yield client
    client.close()


@pytest.fixture
def solr_env(
    example_env: dict[str, str], solr_standalone: local.LocalSolr, solr_name: str
) -> dict[str, str]:
    """example_env pointed at the standalone Solr, with a core name of its own."""
    return {
        **example_env,
        "EXAMPLE_SOLR_URL": solr_standalone.url,
        "EXAMPLE_SOLR_MODE": "standalone",
        "EXAMPLE_SOLR_COLLECTION": solr_name,
        "EXAMPLE_SOLR_CONFIGSET": solr_name,
    }


@pytest.fixture
def cloud_env(
    example_env: dict[str, str], solr_cloud: local.LocalSolr, solr_name: str
) -> dict[str, str]:
    """example_env pointed at the SolrCloud, with a collection/alias name of its own."""
    return {
        **example_env,
        "EXAMPLE_SOLR_URL": solr_cloud.url,
        "EXAMPLE_SOLR_MODE": "cloud",
        "EXAMPLE_SOLR_COLLECTION": f"c{solr_name}",
        "EXAMPLE_SOLR_CONFIGSET": f"c{solr_name}",
    }


class CountLoop:
    """Counts the documents of ``name`` over and over on a thread of its own, while the
    block runs (a reindex with --swap): ``seen`` holds every count, ``errors`` the first
    failure. Bounded by ``limit`` seconds in any case."""

    def __init__(self, url: str, name: str, *, timeout: float, limit: float, join: float) -> None:
        self.url, self.name, self.timeout, self.limit, self.join = url, name, timeout, limit, join
        self.seen: list[int] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client = SolrClient(self.url, timeout=self.timeout)
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self.seen.append(client.count(self.name))
            except BaseException as exc:
                self.errors.append(exc)
                return
        client.close()

    def __enter__(self) -> CountLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.join)
