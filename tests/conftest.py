"""Shared fixtures: a migrated scratch copy of the example project's database, and
helpers to run ``manage.py`` in a real subprocess (a real pseudo-terminal where asked)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Real-server fixtures (runcpserver, nginx, TLS CA, load) for every test module.
pytest_plugins = ["tests.server_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example"
MANAGE = EXAMPLE / "manage.py"


@pytest.fixture(scope="session")
def example_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for subprocesses of the example project on a migrated scratch DB."""
    tmp = tmp_path_factory.mktemp("example")
    home = tmp / "home"
    home.mkdir()
    env = {
        **os.environ,
        "EXAMPLE_DB": str(tmp / "db.sqlite3"),
        "EXAMPLE_STATIC_ROOT": str(tmp / "static"),
        "DJANGO_SETTINGS_MODULE": "exampleproject.settings",
        # This checkout first, whatever else is installed (worktrees, editable installs).
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLE)]),
        # A clean HOME: no ~/.pythonrc.py, REPL configs or histories of the developer's.
        "HOME": str(home),
        "PYTHONSTARTUP": "",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TERM": "xterm",
    }
    env.pop("PYTHONBREAKPOINT", None)
    subprocess.run(
        [sys.executable, str(MANAGE), "demo", "--no-serve", "--pages", "25", "-v0"],
        env=env,
        check=True,
        cwd=EXAMPLE,
    )
    return env


def manage(
    env: dict[str, str],
    *args: str,
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` of the example project; stdin is a pipe (never a terminal)."""
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=env,
        cwd=EXAMPLE,
        input=input or "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def spawn(example_env: dict[str, str]) -> Iterator:
    """Start ``manage.py ARGS`` in a real pseudo-terminal; the child is closed afterwards."""
    import pexpect

    children = []

    def _spawn(*args: str, env: dict[str, str] | None = None, timeout: float = 30):
        child = pexpect.spawn(
            sys.executable,
            [str(MANAGE), *args],
            env=env or example_env,
            cwd=str(EXAMPLE),
            encoding="utf-8",
            timeout=timeout,
            dimensions=(40, 160),
        )
        children.append(child)
        return child

    yield _spawn
    for child in children:
        if child.isalive():
            child.terminate(force=True)


# Real Solr fixtures (session-scoped: defined once here so every module shares them).
from tests.solr_fixtures import (  # noqa: E402, F401
    cloud_client,
    cloud_env,
    secured_env,
    solr_cloud,
    solr_env,
    solr_name,
    solr_secured,
    solr_standalone,
    standalone_client,
)
