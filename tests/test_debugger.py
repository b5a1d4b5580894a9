"""The debugger hook: real pseudo-terminals, real sockets, real HTTP, real REPLs.

Programs under test run in subprocesses (``tests/debugger_target.py``, or the example
project's ``runserver``), never in the pytest process: a debugger opened here would
read pytest's terminal. Without a pty the subprocess has no terminal at all, which is
exactly CI's situation, so the no-TTY tests are the no-terminal path for real.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pexpect
import pytest
from django.core.exceptions import MiddlewareNotUsed
from django.test import override_settings

from django_devcommands import debugger
from django_devcommands.checks import check_settings

from .conftest import EXAMPLE, ROOT
from .repl import Session
from .server_fixtures import get

TARGET = Path(__file__).with_name("debugger_target.py")
EXPECT_NO_REPLS = os.environ.get("DEVCOMMANDS_EXPECT_NO_REPLS") == "1"
REMOTE_LINE = re.compile(r"connect with: nc 127\.0\.0\.1 (\d+)")


def repl_available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def need(module: str) -> None:
    """Skip only in the tox env that is meant to lack REPLs; anywhere else, fail loudly."""
    if repl_available(module):
        return
    if EXPECT_NO_REPLS:
        pytest.skip(f"{module} is not installed (DEVCOMMANDS_EXPECT_NO_REPLS)")
    pytest.fail(f"{module} is not installed: install the 'all' extra to run this test")


@pytest.fixture
def target_env(example_env: dict[str, str]) -> dict[str, str]:
    return {
        **example_env,
        "DJANGO_SETTINGS_MODULE": "tests.debugger_settings",
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "TARGET_REMOTE_TIMEOUT": "20",
    }


@pytest.fixture
def hide(tmp_path: Path, target_env: dict[str, str]):
    """Env whose Python cannot import the given packages (a shadowing package that raises)."""

    def _hide(*packages: str) -> dict[str, str]:
        for package in packages:
            (tmp_path / package).mkdir(exist_ok=True)
            (tmp_path / package / "__init__.py").write_text(
                f"raise ImportError('{package} hidden by the test')\n"
            )
        path = os.pathsep.join([str(tmp_path), target_env["PYTHONPATH"]])
        return {**target_env, "PYTHONPATH": path}

    return _hide


@pytest.fixture
def pty(target_env: dict[str, str]):
    """Run ``debugger_target.py SCENARIO`` in a real pseudo-terminal."""
    children = []

    def _run(scenario: str, env: dict[str, str] | None = None, **extra: str):
        child = pexpect.spawn(
            sys.executable,
            [str(TARGET), scenario],
            env={**(env or target_env), **extra},
            cwd=str(ROOT),
            encoding="utf-8",
            timeout=30,
            dimensions=(40, 160),
        )
        children.append(child)
        return child

    yield _run
    for child in children:
        if child.isalive():
            child.terminate(force=True)


@pytest.fixture
def no_tty(target_env: dict[str, str]):
    """Run ``debugger_target.py SCENARIO`` with stdin on /dev/null and pipes: no terminal."""
    procs: list[subprocess.Popen[str]] = []

    def _run(scenario: str, **extra: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(TARGET), scenario],
            env={**target_env, **extra},
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    yield _run
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def remote_port(stream, timeout: float = 30) -> int:
    """Read the log line the remote debugger writes, return its port."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        match = REMOTE_LINE.search(line)
        if match:
            return int(match.group(1))
    raise AssertionError(f"no remote debugger line in: {''.join(seen)!r}")


class Remote:
    """A client of the remote debugger: what ``nc 127.0.0.1 PORT`` does, scripted."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buffer = ""

    def until(self, token: str) -> str:
        while token not in self.buffer:
            data = self.sock.recv(4096)
            if not data:
                raise AssertionError(f"connection closed before {token!r}: {self.buffer!r}")
            self.buffer += data.decode()
        before, _, self.buffer = self.buffer.partition(token)
        return before

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")  # telnet's line ending

    def close(self) -> None:
        self.sock.close()


PROMPT = r"\(Pdb\) "
BPROMPT = r"\(BPdb\) "


# -- local debuggers in a real terminal -------------------------------------------------


@pytest.mark.pty
def test_prompt_next_print_continue(pty):
    child = pty("main", TARGET_DEBUGGERS="pdb")
    child.expect(PROMPT)
    child.sendline("p x + 100")
    child.expect("101")
    child.expect(PROMPT)
    child.sendline("n")
    child.expect(PROMPT)
    child.sendline("p y")
    child.expect("2")
    child.expect(PROMPT)
    child.sendline("c")
    child.expect("x is 1, y is 2")
    child.expect(pexpect.EOF)


@pytest.mark.pty
def test_S_plain_console_changes_the_frame(pty):
    child = pty("main", TARGET_DEBUGGERS="pdb")
    child.expect(PROMPT)
    child.sendline("S")
    child.expect(">>> ")
    child.sendline("x = 42")
    child.expect(">>> ")
    child.sendline("exit()")  # ends the console, not the program
    child.expect(PROMPT)
    child.sendline("c")
    child.expect("x is 42, y is 43")


@pytest.mark.pty
def test_changes_in_a_caller_frame(pty):
    """``up`` then a REPL: written back on Python 3.13+, a one-line notice before."""
    child = pty("up", TARGET_DEBUGGERS="pdb")
    child.expect(PROMPT)
    child.sendline("up")
    child.expect(PROMPT)
    child.sendline("S")
    child.expect(">>> ")
    child.sendline("v = 99")
    child.expect(">>> ")
    child.sendline("exit()")
    if sys.version_info >= (3, 13):
        child.expect(PROMPT)
        child.sendline("c")
        child.expect("v is 99")
    else:
        child.expect(r"\*\*\* Not kept: v \(before Python 3\.13")
        child.expect(PROMPT)
        child.sendline("c")
        child.expect("v is 1")


@pytest.mark.pty
def test_two_threads_take_turns_at_the_terminal(pty):
    child = pty("two_threads", TARGET_DEBUGGERS="pdb")
    names = set()
    for _ in range(2):
        child.expect(PROMPT)
        child.sendline("p threading.current_thread().name")
        child.expect(r"'(worker-\d)'")
        names.add(child.match.group(1))
        child.expect(PROMPT)
        child.sendline("c")
    assert names == {"worker-1", "worker-2"}
    child.expect("workers alive: 0")


@pytest.mark.pty
def test_B_opens_real_bpython_on_the_frame(pty):
    need("bpython")
    term = Session(pty("main"))  # answers bpython's terminal queries
    term.expect(BPROMPT)  # bpdb is first in the default order
    term.sendline("B")
    term.expect(">>> ")
    term.sendline("x * 1000 + 7")
    term.expect("1007")
    term.sendline("x = 42")
    time.sleep(0.5)
    term.send("\x04")
    term.expect(BPROMPT)
    term.sendline("c")
    term.expect("x is 42, y is 43")


@pytest.mark.pty
def test_I_opens_real_ipython_on_the_frame(pty):
    need("IPython")
    child = pty("main", TARGET_DEBUGGERS="pdb")
    child.expect(PROMPT)
    child.sendline("I")
    child.expect(r"In \[")
    child.sendline("x * 1000 + 7")
    child.expect("1007")
    child.sendline("x = 42")
    time.sleep(0.5)
    child.sendline("exit()")
    child.expect(PROMPT)
    child.sendline("c")
    child.expect("x is 42, y is 43")


@pytest.mark.pty
def test_P_opens_real_ptpython_on_the_frame(pty):
    need("ptpython")
    child = pty("main", TARGET_DEBUGGERS="pdb")
    child.expect(PROMPT)
    child.sendline("P")
    child.expect(">>>")
    child.sendline("x * 1000 + 7")
    child.expect("1007")
    time.sleep(0.5)
    child.sendline("exit()")
    child.expect(PROMPT)
    child.sendline("c")
    child.expect("x is 1, y is 2")


@pytest.mark.pty
@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("B", "bpython is not installed"),
        ("I", "IPython is not installed"),
        ("P", "ptpython is not installed"),
    ],
)
def test_missing_repl_falls_back_with_one_line(pty, hide, target_env, command, message):
    # In the norepl env the REPLs are really absent; elsewhere they are made unimportable.
    env = target_env if EXPECT_NO_REPLS else hide("bpython", "IPython", "ptpython")
    child = pty("main", env=env, TARGET_DEBUGGERS="pdb")
    child.expect(PROMPT)
    child.sendline(command)
    child.expect(message + r".*; starting the plain Python shell instead\.")
    child.expect(">>> ")
    child.sendline("x + 1")
    child.expect("2")
    child.expect(">>> ")  # EOF typed before the next prompt can be swallowed by readline
    child.sendeof()
    child.expect(PROMPT)
    child.sendline("c")
    child.expect("x is 1")


@pytest.mark.pty
def test_missing_debugger_falls_back_to_pdb(pty, hide, target_env):
    env = target_env if EXPECT_NO_REPLS else hide("bpython", "ipdb", "pudb")
    child = pty("main", env=env, TARGET_DEBUGGERS="bpdb,ipdb,pudb,pdb")
    child.expect(
        r'bpdb is not installed \(pip install "django-devcommands\[bpython\]"\); '
        r"using pdb instead\."
    )
    child.expect(PROMPT)
    child.sendline("c")
    child.expect("x is 1")


@pytest.mark.pty
def test_ipdb_preferred(pty):
    need("ipdb")
    child = pty("main", TARGET_DEBUGGERS="ipdb,pdb")
    child.expect("ipdb>")
    child.sendline("p x + 100")
    child.expect("101")
    child.sendline("c")
    child.expect("x is 1")


@pytest.mark.pty
def test_pudb_preferred_opens(pty, tmp_path):
    """pudb's full screen opens on the frame (driving its dialogs is pudb's own business)."""
    need("pudb")
    term = Session(pty("main", TARGET_DEBUGGERS="pudb,pdb", HOME=str(tmp_path)))
    term.expect("PuDB")
    term.expect(r"def stop_here\(\)")  # its source view shows our frame


@pytest.mark.pty
def test_breakpoint_in_a_worker_thread(pty):
    child = pty("thread", TARGET_DEBUGGERS="pdb")
    child.expect(PROMPT)
    child.sendline("p threading.current_thread().name")
    child.expect("worker-1")
    child.expect(PROMPT)
    child.sendline("S")  # a console outside the main thread: no signal-handler crash
    child.expect(">>> ")
    child.sendline("x = 5")
    child.expect(">>> ")  # EOF typed before the next prompt can be swallowed by readline
    child.sendeof()
    child.expect(PROMPT)
    child.sendline("c")
    child.expect("x is 5, y is 6")
    child.expect("worker alive: False")


@pytest.mark.pty
def test_B_in_a_worker_thread(pty):
    need("bpython")
    term = Session(pty("thread"))
    term.expect(BPROMPT)
    term.sendline("B")
    term.expect(">>> ")
    term.sendline("x * 1000 + 7")
    term.expect("1007")
    time.sleep(0.5)
    term.send("\x04")
    term.expect(BPROMPT)
    term.sendline("c")
    term.expect("worker alive: False")


@pytest.mark.pty
def test_builtin_breakpoint_hook(pty):
    child = pty("breakpoint", TARGET_DEBUGGERS="pdb")
    child.expect(PROMPT)
    child.sendline("p x + 100")
    child.expect("101")
    child.sendline("c")
    child.expect("x is 1")


@pytest.mark.pty
def test_local_post_mortem(pty):
    child = pty("post_mortem", TARGET_DEBUGGERS="pdb")
    child.expect(PROMPT)
    child.sendline("p x")
    child.expect("41")
    child.sendline("c")
    child.expect("after post-mortem")


@pytest.mark.pty
@pytest.mark.parametrize(
    "stop",
    [
        "from django_devcommands import debugger; debugger.set_trace()",
        "import bpdb; bpdb.set_trace()",
    ],
    ids=["set_trace", "bpdb"],
)
def test_stop_inside_a_pytest_test(tmp_path, target_env, stop):
    """Under pytest the hook hands over to pytest's debugger, which lifts output capture
    (Django's test runner forces DEBUG off: the project's DEBUG is the one that counts)."""
    if "bpdb" in stop:
        need("bpython")
    (tmp_path / "test_stop.py").write_text(
        f"def test_stop():\n    x = 1\n    {stop}\n    assert x == 42\n"
    )
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-c",
            os.devnull,
            f"--rootdir={tmp_path}",
            "--pdbcls=django_devcommands.debugger:DevPdb",
            str(tmp_path / "test_stop.py"),
        ],
        env={**target_env, "TARGET_BREAKPOINT": "1"},
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 160),
    )
    try:
        child.expect("IO-capturing turned off")
        child.expect(PROMPT)
        child.sendline("S")
        child.expect(">>> ")
        child.sendline("x = 42")
        child.expect(">>> ")
        child.sendline("exit()")
        child.expect(PROMPT)
        child.sendline("c")
        child.expect("1 passed")
    finally:
        child.terminate(force=True)


@pytest.mark.pty
def test_bpdb_in_runserver_threads(target_env):
    """bpython's own ``bpdb.set_trace()`` in a view under ``runserver`` (autoreload, threads)."""
    need("bpython")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = pexpect.spawn(
        sys.executable,
        [str(EXAMPLE / "manage.py"), "runserver", f"127.0.0.1:{port}"],
        env=target_env,
        cwd=str(ROOT),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 160),
    )
    term = Session(child)
    try:
        term.expect("Quit the server")
        results: dict[str, str] = {}

        def get(path: str) -> None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as resp:
                results[path] = resp.read().decode()

        stopped = threading.Thread(target=get, args=("/bpdb/",))
        stopped.start()
        term.expect(BPROMPT)
        get("/ok/")  # another request is served while one sits in the debugger
        assert results["/ok/"] == "ok"
        term.sendline("B")
        term.expect(">>> ")
        term.sendline("answer * 10 + 2")
        term.expect("412")
        time.sleep(0.5)
        term.send("\x04")
        term.expect(BPROMPT)
        term.sendline("c")
        stopped.join(30)
        assert results["/bpdb/"] == "answer=41"
    finally:
        child.terminate(force=True)


# -- no terminal: remote debugger over a real socket ------------------------------------


@pytest.mark.parametrize("scenario", ["main", "thread"])
def test_remote_debugger_over_a_socket(no_tty, scenario):
    proc = no_tty(scenario)
    remote = Remote(remote_port(proc.stderr))
    try:
        remote.until("(Pdb-remote) ")
        remote.send("p x + 100")
        assert "101" in remote.until("(Pdb-remote) ")
        remote.send("B")  # no terminal here: falls back to the console on the socket
        assert "needs a terminal" in remote.until(">>> ")
        remote.send("x = 42")
        remote.until(">>> ")
        remote.send("print('from the console', x)")
        assert "from the console 42" in remote.until(">>> ")
        remote.send("exit()")
        remote.until("(Pdb-remote) ")
        remote.send("c")
        out, err = proc.communicate(timeout=30)
    finally:
        remote.close()
    assert "x is 42, y is 43" in out
    assert proc.returncode == 0, err


def test_remote_client_hangup_continues(no_tty):
    proc = no_tty("main")
    remote = Remote(remote_port(proc.stderr))
    remote.until("(Pdb-remote) ")
    remote.close()  # like closing nc: the program goes on without a debugger
    out, err = proc.communicate(timeout=30)
    assert "x is 1, y is 2" in out
    assert proc.returncode == 0, err


def test_no_tty_nobody_connects_bounded_wait(no_tty):
    proc = no_tty("main", TARGET_REMOTE_TIMEOUT="1")
    out, err = proc.communicate(timeout=30)
    assert REMOTE_LINE.search(err)
    assert "No remote debugger connection within 1s" in err
    assert "x is 1, y is 2" in out and proc.returncode == 0


def test_no_tty_remote_off_skips_with_warning(no_tty):
    proc = no_tty("main", TARGET_REMOTE="0")
    out, err = proc.communicate(timeout=30)
    assert "no terminal on stdin/stdout and DEVCOMMANDS['DEBUGGER_REMOTE'] is off" in err
    assert "x is 1, y is 2" in out and proc.returncode == 0


def test_debug_false_never_opens(no_tty):
    proc = no_tty("main", EXAMPLE_DEBUG="0")
    out, err = proc.communicate(timeout=30)
    assert "Debugger not opened: DEBUG is False" in err
    assert not REMOTE_LINE.search(err)
    assert "x is 1, y is 2" in out and proc.returncode == 0


def test_debug_false_forced_opens(no_tty):
    proc = no_tty("main", EXAMPLE_DEBUG="0", TARGET_FORCE="1", TARGET_REMOTE_TIMEOUT="1")
    _, err = proc.communicate(timeout=30)
    assert REMOTE_LINE.search(err)


def test_bpdb_without_terminal_is_adopted(no_tty):
    """bpython's own bpdb.set_trace() with no terminal: BdbQuit unless adopted, remote if so."""
    need("bpython")
    plain = no_tty("bpdb", TARGET_BREAKPOINT="0")
    out, err = plain.communicate(timeout=30)
    assert "bdb.BdbQuit" in err and plain.returncode == 1  # what stands in its way
    adopted = no_tty("bpdb", TARGET_BREAKPOINT="1")
    remote = Remote(remote_port(adopted.stderr))
    try:
        remote.until("(Pdb-remote) ")
        remote.send("p x + 100")
        assert "101" in remote.until("(Pdb-remote) ")
        remote.send("c")
        out, err = adopted.communicate(timeout=30)
    finally:
        remote.close()
    assert "x is 1" in out and adopted.returncode == 0


def test_bpdb_B_without_terminal_does_not_reexec(target_env):
    """bpython's BPdb.B os.execv()s a new interpreter when stdin is not a terminal; adopted, no."""
    need("bpython")
    result = subprocess.run(
        [sys.executable, str(TARGET), "bpdb_class"],
        env=target_env,
        cwd=ROOT,
        input="B\nx = 42\nprint('console', x)\nexit()\nc\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "adopted: True" in result.stdout
    assert "needs a terminal" in result.stdout
    assert "console 42" in result.stdout
    assert "x is 42" in result.stdout, result.stderr
    assert result.returncode == 0


# -- post-mortem from a failing view over real HTTP ---------------------------------------


@pytest.fixture
def server(no_tty):
    def _start(**extra: str) -> tuple[subprocess.Popen[str], int]:
        proc = no_tty("serve", **extra)
        line = proc.stdout.readline()
        while line.startswith("post-mortem signal"):
            assert line.strip().endswith("True")
            line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        return proc, int(line.split()[1])

    return _start


def fetch(port: int, path: str, results: dict[str, int]) -> None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as resp:
            results[path] = resp.status
    except urllib.error.HTTPError as exc:
        results[path] = exc.code


@pytest.mark.parametrize(
    "how",
    [
        {"TARGET_MIDDLEWARE": "1"},
        {"TARGET_MIDDLEWARE": "0", "TARGET_SIGNAL_POST_MORTEM": "1"},
        {"TARGET_MIDDLEWARE": "1", "TARGET_SIGNAL_POST_MORTEM": "1"},  # one session, not two
    ],
    ids=["middleware", "signal", "both"],
)
def test_post_mortem_from_a_failing_view(server, how):
    proc, port = server(**how)
    results: dict[str, int] = {}
    failing = threading.Thread(target=fetch, args=(port, "/boom/", results))
    failing.start()
    remote = Remote(remote_port(proc.stderr))
    try:
        remote.until("(Pdb-remote) ")
        fetch(port, "/ok/", results)  # served while the failing request is being debugged
        assert results["/ok/"] == 200
        remote.send("p answer")
        assert "41" in remote.until("(Pdb-remote) ")
        remote.send("c")
        failing.join(30)
    finally:
        remote.close()
    assert results["/boom/"] == 500  # the normal 500 still completes
    # A 404 is not a bug: no session.
    fetch(port, "/pages/no-such-page/", results)
    assert results["/pages/no-such-page/"] == 404
    proc.kill()
    _, err = proc.communicate(timeout=10)
    # The one session's line was read above; "both" did not open a second one.
    assert not REMOTE_LINE.search(err), err


def test_post_mortem_middleware_off_when_debug_false(server):
    proc, port = server(EXAMPLE_DEBUG="0", TARGET_SIGNAL_POST_MORTEM="")
    results: dict[str, int] = {}
    fetch(port, "/boom/", results)
    assert results["/boom/"] == 500
    proc.kill()
    _, err = proc.communicate(timeout=10)
    assert not REMOTE_LINE.search(err)


# -- in-process units: policy, checks, settings --------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_warnings():
    debugger._warned.clear()
    yield
    debugger._warned.clear()


@override_settings(DEBUG=False)
def test_middleware_not_used_when_debug_false():
    with pytest.raises(MiddlewareNotUsed):
        debugger.PostMortemMiddleware(lambda request: None)


@override_settings(DEBUG=False, DEVCOMMANDS={"DEBUGGER_FORCE": True})
def test_middleware_forced():
    assert debugger.PostMortemMiddleware(lambda request: None).get_response is not None


def test_debug_as_the_project_set_it_during_tests(settings):
    """Django's test environment forces DEBUG off; a breakpoint in a test follows the project."""
    from django.test.utils import _TestState

    assert settings.DEBUG is False  # pytest-django's setup_test_environment()
    assert _TestState.saved_data.debug is True  # the example project's DEBUG
    assert debugger.debugging_allowed() is True
    with override_settings(DEBUG=False):  # explicit in a test: wins
        assert debugger.debugging_allowed() is False
        with override_settings(DEVCOMMANDS={"DEBUGGER_REMOTE": False}):  # nested: still wins
            assert debugger.debugging_allowed() is False
    with override_settings(DEVCOMMANDS={"DEBUGGER_REMOTE": False}):
        assert debugger.debugging_allowed() is True


@override_settings(DEBUG=False)
def test_enable_post_mortem_refused_when_debug_false():
    assert debugger.enable_post_mortem() is False


@override_settings(DEBUG=True)
def test_enable_post_mortem_connects_once():
    from django.core.signals import got_request_exception

    try:
        assert debugger.enable_post_mortem() is True
        assert debugger.enable_post_mortem() is True
        uid = debugger._DISPATCH_UID
        assert len([r for r in got_request_exception.receivers if r[0][0] == uid]) == 1
    finally:
        debugger.disable_post_mortem()
    assert not [r for r in got_request_exception.receivers if r[0][0] == debugger._DISPATCH_UID]


@override_settings(DEBUG=False)
def test_set_trace_refused_in_process(caplog):
    before = sys.gettrace()
    with caplog.at_level(logging.WARNING, logger="django_devcommands.debugger"):
        debugger.set_trace()
    assert sys.gettrace() is before  # no tracer installed: no debugger
    assert "DEBUG is False" in caplog.text


@override_settings(DEBUG=True)
def test_install_breakpoint_hook(monkeypatch):
    monkeypatch.setattr(sys, "breakpointhook", sys.__breakpointhook__)
    monkeypatch.setenv("PYTHONBREAKPOINT", "pdb.set_trace")
    assert debugger.install_breakpoint_hook() is False  # an explicit choice wins
    assert sys.breakpointhook is sys.__breakpointhook__
    monkeypatch.delenv("PYTHONBREAKPOINT")
    assert debugger.install_breakpoint_hook() is True
    assert sys.breakpointhook is debugger.set_trace
    with override_settings(DEBUG=False):
        monkeypatch.setattr(sys, "breakpointhook", sys.__breakpointhook__)
        assert debugger.install_breakpoint_hook() is False


@override_settings(DEBUG=True)
def test_remote_refuses_non_loopback(caplog):
    with caplog.at_level(logging.ERROR, logger="django_devcommands.debugger"):
        assert debugger.accept_remote(host="0.0.0.0", port=0, timeout=5) is None
    assert "not a loopback address" in caplog.text


@override_settings(DEBUG=True)
def test_remote_waits_a_bounded_time(caplog):
    with caplog.at_level(logging.WARNING, logger="django_devcommands.debugger"):
        assert debugger.accept_remote(host="127.0.0.1", port=0, timeout=0.3) is None
    assert REMOTE_LINE.search(caplog.text)
    assert "No remote debugger connection within 0.3s" in caplog.text


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host, loopback):
    assert debugger.is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("order", "installed", "expected", "warning"),
    [
        (["bpdb", "ipdb", "pudb", "pdb"], {"bpython", "ipdb", "pudb"}, "bpdb", None),
        (["bpdb", "ipdb", "pudb", "pdb"], {"ipdb"}, "ipdb", "bpdb is not installed"),
        (["bpdb", "ipdb", "pudb", "pdb"], set(), "pdb", "bpdb is not installed"),
        (["pudb"], {"pudb"}, "pudb", None),
        (["pudb"], set(), "pdb", 'pudb is not installed (pip install "django-devcommands[debug]")'),
        (["pdb", "bpdb"], {"bpython"}, "pdb", None),
    ],
)
def test_choose_debugger(order, installed, expected, warning):
    def is_available(backend: debugger.Backend) -> bool:
        return backend.name == "pdb" or backend.module in installed

    choice = debugger.choose_debugger(order, is_available=is_available)
    assert choice.backend.name == expected
    if warning is None:
        assert choice.warning is None
    else:
        assert warning in choice.warning and choice.warning.endswith(f"using {expected} instead.")


def ids(devcommands: dict, debug: bool = True) -> list[str]:
    with override_settings(DEVCOMMANDS=devcommands, DEBUG=debug):
        return sorted(message.id for message in check_settings())


@pytest.mark.parametrize(
    ("devcommands", "expected"),
    [
        ({}, []),
        ({"DEBUGGERS": "bpdb"}, ["devcommands.E401"]),
        ({"DEBUGGERS": []}, ["devcommands.E401"]),
        ({"DEBUGGERS": ["bpdb", "gdb"]}, ["devcommands.E402"]),
        ({"BREAKPOINT": "yes"}, ["devcommands.E403"]),
        ({"DEBUGGER_REMOTE": 1}, ["devcommands.E403"]),
        ({"DEBUGGER_REMOTE_PORT": 70000}, ["devcommands.E404"]),
        ({"DEBUGGER_REMOTE_PORT": "4444"}, ["devcommands.E404"]),
        ({"DEBUGGER_REMOTE_PORT": 4444}, []),
        ({"DEBUGGER_REMOTE_TIMEOUT": 0}, ["devcommands.E405"]),
        ({"DEBUGGER_REMOTE_TIMEOUT": 2.5}, []),
        ({"DEBUGGER_REMOTE_HOST": ""}, ["devcommands.E406"]),
        ({"DEBUGGER_REMOTE_HOST": "0.0.0.0"}, ["devcommands.E407"]),
        ({"DEBUGGER_REMOTE_HOST": "::1"}, []),
        (
            {"DEBUGGER_REMOTE_HOST": "0.0.0.0", "DEBUGGER_REMOTE_ALLOW_NON_LOOPBACK": True},
            ["devcommands.W402"],
        ),
        ({"DEBUGGER_FORCE": True}, []),
    ],
)
def test_checks(devcommands, expected):
    assert ids(devcommands) == expected


def test_check_force_without_debug_warns():
    assert ids({"DEBUGGER_FORCE": True}, debug=False) == ["devcommands.W401"]
    assert ids({}, debug=False) == []


# -- runcpserver pdb=1 / pm=1 ---------------------------------------------------------------


@pytest.mark.parametrize("option", ["pdb=1", "pm=true", "--pdb"])
def test_runcpserver_post_mortem_option(runcpserver, target_env, option):
    """A failing view under runcpserver (no terminal: the remote debugger), threads serve on."""
    env = {**target_env, "TARGET_MIDDLEWARE": "0"}
    server = runcpserver(option, "threads=4", env=env)
    results: dict[str, int] = {}
    failing = threading.Thread(
        target=lambda: results.update(boom=get(server.url.rstrip("/") + "/boom/")[0])
    )
    failing.start()
    deadline = time.monotonic() + 30
    while not REMOTE_LINE.search(server.output) and time.monotonic() < deadline:
        time.sleep(0.05)
    match = REMOTE_LINE.search(server.output)
    assert match, server.output
    remote = Remote(int(match.group(1)))
    try:
        remote.until("(Pdb-remote) ")
        assert get(server.url.rstrip("/") + "/ok/")[0] == 200  # other requests are served meanwhile
        remote.send("p answer")
        assert "41" in remote.until("(Pdb-remote) ")
        remote.send("c")
        failing.join(30)
    finally:
        remote.close()
    assert results["boom"] == 500


def test_runcpserver_post_mortem_refused_without_debug(runcpserver, target_env):
    env = {**target_env, "TARGET_MIDDLEWARE": "0", "EXAMPLE_DEBUG": "0"}
    server = runcpserver("pdb=1", env=env)
    assert "pdb=true ignored: DEBUG is False" in server.output
    assert get(server.url.rstrip("/") + "/boom/")[0] == 500
    time.sleep(0.5)
    assert not REMOTE_LINE.search(server.output)
