"""runcpserver end to end: the example project behind real cheroot processes."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.checks import Error
from django.test import override_settings

from django_devcommands.checks import check_settings
from django_devcommands.servers.http import SPEC
from tests.conftest import MANAGE, manage
from tests.server_fixtures import *  # noqa: F403
from tests.server_fixtures import Load, children, get, run_load, wait_until


def page_list_ok(url: str, **kwargs) -> bytes:  # type: ignore[no-untyped-def]
    status, _headers, body = get(url, **kwargs)
    assert status == 200, body[:500]
    assert b"<html" in body
    return body


@pytest.fixture
def production_env(example_env: dict[str, str]) -> dict[str, str]:
    """DEBUG off (no autoreload, no static by default), as a deployment would run."""
    return {**example_env, "EXAMPLE_DEBUG": "0"}


# -- options and errors -------------------------------------------------------------------


def test_serves_the_page_list_on_an_ephemeral_port(runcpserver) -> None:
    server = runcpserver()
    assert server.url.startswith("http://127.0.0.1:")
    assert "(cheroot, 1 process x 10 threads" in server.output
    body = page_list_ok(server.url)
    assert b"Page 1" in body or b"page" in body.lower()


def test_flags_work_like_key_value(runcpserver) -> None:
    server = runcpserver("--threads", "3", "--server-name", "example.test", port="--port=0")
    status, headers, _ = get(server.url)
    assert status == 200
    assert headers["server"] == "example.test"
    assert "x 3 threads" in server.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prot=80"], "Unknown option 'prot'. Did you mean 'port'?"),
        (["workers=0"], "Bad value for workers: '0' is not a whole number from 1 to 1024"),
        (["daemonize=perhaps"], "Bad value for daemonize: 'perhaps' is not a boolean"),
        (["stop"], "runcpserver stop needs pidfile=PATH."),
        (["ssl_certificate=/nonexistent.pem"], "ssl_certificate and ssl_private_key go together"),
        (["autoreload=true", "workers=2"], "autoreload works with one worker in the foreground"),
        (["socket=/tmp/x.sock", "host=0.0.0.0"], "Give socket= or host=/port=, not both."),
        (["workdir=/nonexistent/dir"], "workdir /nonexistent/dir is not a directory."),
        (
            ["ssl_certificate=/etc/hostname", "ssl_private_key=/etc/hostname"],
            "Cannot use ssl_certificate /etc/hostname with ssl_private_key /etc/hostname:",
        ),
    ],
)
def test_bad_input_is_a_clear_error(example_env, args: list[str], message: str) -> None:
    done = manage(example_env, "runcpserver", *args, timeout=60)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_port_in_use_is_a_clear_error(example_env) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = manage(example_env, "runcpserver", f"port={port}", "autoreload=false")
    assert done.returncode == 1
    assert f"Cannot bind 127.0.0.1:{port}: Address already in use." in done.stderr
    assert "Traceback" not in done.stderr


def test_non_loopback_bind_with_debug_warns(example_env, tmp_path) -> None:
    # The warning comes before the engine's checks: a missing TLS file then stops the
    # command before anything binds, so no test ever listens beyond loopback.
    missing = str(tmp_path / "missing.pem")
    done = manage(
        example_env,
        "runcpserver",
        "host=0.0.0.0",
        "port=0",
        f"ssl_certificate={missing}",
        f"ssl_private_key={missing}",
    )
    assert "Warning: DEBUG is on and the server binds 0.0.0.0" in done.stderr
    assert done.returncode == 1
    assert f"TLS file {missing} does not exist." in done.stderr


def test_loopback_bind_does_not_warn(runcpserver) -> None:
    server = runcpserver()
    server.terminate()  # stderr is read by another thread: let it reach the end first
    assert "Warning" not in server.output


def test_ipv6_loopback(runcpserver) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = runcpserver("host=::1")
    assert server.url.startswith("http://[::1]:")
    page_list_ok(server.url)


def test_unix_socket(runcpserver, tmp_path: Path) -> None:
    path = tmp_path / "cp.sock"
    server = runcpserver(f"socket={path}")
    assert server.url == f"unix:{path}"
    result = run_load("http://localhost/", concurrency=2, requests=3, unix=str(path))
    assert result.failures == [] and result.ok == 6
    assert server.terminate() == 0
    assert not path.exists()  # removed on exit


# -- static files, access log, limits --------------------------------------------------------


def test_static_files_from_the_finders_when_debug(runcpserver) -> None:
    server = runcpserver()
    status, headers, body = get(server.url + "static/pages/site.css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    assert (
        body
        == (
            Path(__file__).resolve().parent.parent / "example/pages/static/pages/site.css"
        ).read_bytes()
    )
    server_off = runcpserver("static=false")
    assert get(server_off.url + "static/pages/site.css")[0] == 404


def test_static_files_from_static_root_with_whitenoise(runcpserver, production_env) -> None:
    done = manage(production_env, "collectstatic", "--noinput", "-v0")
    assert done.returncode == 0, done.stderr
    server = runcpserver("static=true", env=production_env)
    status, headers, body = get(server.url + "static/pages/site.css")
    assert status == 200 and b"{" in body
    assert "max-age" in headers.get("cache-control", "")  # WhiteNoise's headers
    assert get(runcpserver(env=production_env).url + "static/pages/site.css")[0] == 404


def test_access_log_in_combined_format(runcpserver, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = runcpserver(f"access_log={log}")
    page_list_ok(
        server.url + "?q=1", headers={"User-Agent": "test-agent/1.0", "Referer": "http://ref/"}
    )
    line = wait_until(lambda: log.exists() and log.read_text(), message="an access log line")
    import re

    assert re.fullmatch(
        r"127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
        r'"GET /\?q=1 HTTP/1\.1" 200 \d+ '
        r'"http://ref/" "test-agent/1\.0"\n',
        line,  # type: ignore[arg-type]
    ), line


def test_header_and_body_limits_answer_413(runcpserver) -> None:
    import http.client

    server = runcpserver("max_request_header_size=2000", "max_request_body_size=100")
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=20)
    conn.request("GET", "/", headers={"X-Big": "x" * 5000})
    assert conn.getresponse().status == 413
    conn.close()
    conn = http.client.HTTPConnection(host, port, timeout=20)
    conn.request("POST", "/", body=b"y" * 1000)
    assert conn.getresponse().status == 413
    conn.close()
    page_list_ok(server.url)


# -- TLS -------------------------------------------------------------------------------------


def test_https_with_a_throwaway_ca(runcpserver, tls_ca) -> None:
    server = runcpserver(f"ssl_certificate={tls_ca['cert']}", f"ssl_private_key={tls_ca['key']}")
    assert server.url.startswith("https://127.0.0.1:")
    page_list_ok(server.url, context=tls_ca["context"])
    with pytest.raises(ssl.SSLCertVerificationError):
        get(server.url, context=ssl.create_default_context())


def test_plain_http_on_the_https_port_neither_kills_threads_nor_hangs(runcpserver, tls_ca) -> None:
    server = runcpserver(
        f"ssl_certificate={tls_ca['cert']}", f"ssl_private_key={tls_ca['key']}", "threads=2"
    )
    host, port = server.address
    for _ in range(20):  # ten times the threads
        with socket.create_connection((host, port), timeout=10) as plain:
            plain.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try:  # cheroot answers 400 and closes; unread bytes may turn the close into a reset
                answer = plain.recv(1000)
            except ConnectionResetError:
                answer = b""
            assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer
    result = run_load(server.url, concurrency=4, requests=5, context=tls_ca["context"])
    assert result.failures == [] and result.ok == 20


# -- daemonize, pidfile, stop, status --------------------------------------------------------


def test_daemonize_pidfile_status_and_stop(example_env, tmp_path: Path) -> None:
    pidfile, outlog = tmp_path / "cp.pid", tmp_path / "out.log"
    done = manage(
        example_env,
        "runcpserver",
        "port=0",
        "daemonize=true",
        f"pidfile={pidfile}",
        f"outlog={outlog}",
        f"errlog={outlog}",
        "access_log=-",
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    pid = int(pidfile.read_text())
    try:
        assert f"(daemon pid {pid})" in done.stdout
        url = done.stdout.split("serving on ", 1)[1].split()[0]
        page_list_ok(url)
        wait_until(lambda: '"GET / HTTP/1.1" 200' in outlog.read_text(), message="the access log")
        status = manage(example_env, "runcpserver", "status", f"pidfile={pidfile}")
        assert (status.returncode, status.stdout) == (
            0,
            f"Running: process {pid} (pidfile {pidfile}).\n",
        )
        again = manage(example_env, "runcpserver", "port=0", f"pidfile={pidfile}")
        assert again.returncode == 1
        assert f"names a running process ({pid})" in again.stderr
        stopped = manage(example_env, "runcpserver", "stop", f"pidfile={pidfile}")
        assert stopped.returncode == 0, stopped.stderr
        assert f"Stopped process {pid}." in stopped.stdout
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert not pidfile.exists()
    wait_until(
        lambda: (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2][:3]
        ),
        message="the daemon to exit",
    )
    status = manage(example_env, "runcpserver", "status", f"pidfile={pidfile}")
    assert status.returncode == 3
    assert f"Not running: no pidfile at {pidfile}." in status.stderr


def test_stop_with_a_stale_pidfile(example_env, tmp_path: Path) -> None:
    pidfile = tmp_path / "stale.pid"
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    pidfile.write_text(f"{proc.pid}\n")
    done = manage(example_env, "runcpserver", "stop", f"pidfile={pidfile}")
    assert done.returncode == 1
    assert (
        f"Pidfile {pidfile} is stale: process {proc.pid} is not running (pidfile removed)."
        in done.stderr
    )
    assert not pidfile.exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_gracefully_and_remove_the_pidfile(runcpserver, tmp_path: Path, sig) -> None:
    pidfile = tmp_path / "cp.pid"
    server = runcpserver(f"pidfile={pidfile}", "workers=2")
    assert int(pidfile.read_text()) == server.pid
    wait_until(lambda: len(children(server.pid)) == 2, message="2 workers")
    page_list_ok(server.url)
    server.signal(sig)
    assert server.wait(40) == 0
    assert not pidfile.exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_idle_keepalive_connection_does_not_hold_up_a_stop(runcpserver, workers) -> None:
    """A browser keeps its connection open between pages: a stop must not wait for it
    (it held every stop for 5 s), only for connections that have not had a request."""
    import http.client
    from urllib.parse import urlsplit

    server = runcpserver(f"workers={workers}")
    if workers == "2":
        wait_until(lambda: len(children(server.pid)) == 2, message="2 workers")
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        assert response.status == 200 and not response.will_close  # kept alive, idle
        began = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait(20) == 0
        assert time.monotonic() - began < 4.0
    finally:
        conn.close()


# -- load and robustness ---------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [100, 1000])
def test_no_failed_request_under_concurrency_on_default_settings(
    runcpserver, production_env, concurrency: int
) -> None:
    server = runcpserver(env=production_env)
    requests = 3 if concurrency <= 100 else 1  # bounded: 300 / 1000 requests
    result = run_load(
        server.url, concurrency=concurrency, requests=requests, keepalive=True, timeout=120
    )
    assert result.failures[:5] == []
    assert result.ok == concurrency * requests
    assert set(result.statuses) == {200}


def test_idle_keepalive_connections_do_not_block_a_request(runcpserver, production_env) -> None:
    server = runcpserver(env=production_env)
    host, port = server.address
    idle = []
    try:
        for _ in range(500):
            conn = socket.create_connection((host, port), timeout=30)
            conn.sendall(b"GET /static/missing HTTP/1.1\r\nHost: localhost\r\n\r\n")
            idle.append(conn)
        kept = 0
        for conn in idle:
            head = _read_head(conn)
            kept += b"connection: close" not in head.lower()
        assert kept == 500  # the server kept every one of them open
        page_list_ok(server.url, timeout=30)  # a normal request is served meanwhile
        for conn in idle[:50]:  # and the idle ones still work
            conn.sendall(b"GET /static/missing HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert _read_head(conn).startswith(b"HTTP/1.1 404")
    finally:
        for conn in idle:
            conn.close()


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += conn.recv(65536)
    return head


def test_sighup_reload_under_load_fails_no_request(runcpserver, production_env) -> None:
    server = runcpserver("workers=2", env=production_env)
    before = wait_until(lambda: len(c := children(server.pid)) == 2 and c, message="2 workers")
    load = Load(server.url, concurrency=20, timeout=60).start()
    server.signal(signal.SIGHUP)
    wait_until(
        lambda: (c := children(server.pid)) and len(c) == 2 and not set(c) & set(before),
        timeout=60,
        message="every worker replaced",
    )
    result = load.finish()
    assert result.failures[:5] == []
    assert result.ok > 0


# -- scale out: nginx in front of two instances ------------------------------------------------


def test_nginx_balances_two_instances_and_fails_over(runcpserver, production_env, nginx) -> None:
    first = runcpserver("access_log=-", env=production_env)
    second = runcpserver("access_log=-", env=production_env)
    front = nginx([f"127.0.0.1:{first.address[1]}", f"127.0.0.1:{second.address[1]}"])
    warm = run_load(front, concurrency=4, requests=10)
    assert warm.failures == [] and warm.ok == 40

    def served() -> list[int]:
        return [s.output.count('"GET / HTTP/1.0" 200') for s in (first, second)]

    wait_until(lambda: sum(served()) == 40, message="40 access log lines")
    assert all(served())  # both instances took requests

    baseline = served()[1]
    load = Load(front, concurrency=20, timeout=60).start()
    wait_until(lambda: served()[1] > baseline + 50, message="load on both instances")
    os.kill(second.pid, signal.SIGKILL)  # a crash, not a graceful stop
    second.wait(20)
    after_kill = served()[0]
    wait_until(
        lambda: served()[0] > after_kill + 200, timeout=60, message="the survivor to take the load"
    )
    result = load.finish()
    assert result.failures[:5] == []
    assert set(result.statuses) == {200}


# -- settings and checks ----------------------------------------------------------------------


def test_project_defaults_from_settings(runcpserver, example_env, tmp_path: Path) -> None:
    settings_py = tmp_path / "cpsettings.py"
    settings_py.write_text(
        "from exampleproject.settings import *\n"
        "DEVCOMMANDS = {**DEVCOMMANDS,\n"
        "               'RUNCPSERVER': {'threads': 4, 'server_name': 'from-settings'}}\n"
    )
    env = {
        **example_env,
        "DJANGO_SETTINGS_MODULE": "cpsettings",
        "PYTHONPATH": example_env["PYTHONPATH"] + os.pathsep + str(tmp_path),
    }
    server = runcpserver("server_name=cli-wins", env=env)
    assert "x 4 threads" in server.output
    assert get(server.url)[1]["server"] == "cli-wins"


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ({"workers": 4, "access_log": "-"}, []),
        ("workers=4", ["devcommands.E101"]),
        ({"wrokers": 4}, ["devcommands.E102"]),
        ({"workers": "many"}, ["devcommands.E103"]),
        ({"port": 99999, "threads": 0}, ["devcommands.E103", "devcommands.E103"]),
    ],
)
def test_runcpserver_setting_checks(value: object, ids: list[str]) -> None:
    with override_settings(DEVCOMMANDS={"RUNCPSERVER": value}):
        messages = check_settings(None)
    assert [m.id for m in messages] == ids
    assert all(isinstance(m, Error) for m in messages)
    if ids == ["devcommands.E102"]:
        assert messages[0].hint == "Did you mean 'workers'?"


def test_spec_drives_help_and_docs_table() -> None:
    done = subprocess.run(
        [sys.executable, str(MANAGE), "runcpserver", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "exampleproject.settings",
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        },
        cwd=MANAGE.parent,
    )
    text = " ".join(done.stdout.split())
    for option in SPEC:
        assert option.flag in text
        assert f"``{option.name}=``" in SPEC.rst_table()
    assert "or an action (stop, status)" in text


def test_threads_in_worker_survive_many_requests(runcpserver) -> None:
    server = runcpserver("threads=2")
    threads = [threading.Thread(target=page_list_ok, args=(server.url,)) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    page_list_ok(server.url)


# -- autoreload and privileges -----------------------------------------------------------------


def test_autoreload_is_on_by_default_with_debug_and_restarts_on_a_code_change(runcpserver) -> None:
    server = runcpserver(port="port=0", autoreload=None)
    page_list_ok(server.url)  # imports the views
    views = Path(__file__).resolve().parent.parent / "example" / "pages" / "views.py"
    stat = views.stat()
    try:
        wait_until(
            lambda: (
                os.utime(views, (stat.st_atime, time.time() + 5))
                or server.output.count("serving on") >= 2
            ),
            timeout=30,
            interval=0.5,
            message="a restart after views.py changed",
        )
    finally:
        os.utime(views, (stat.st_atime, stat.st_mtime))
    assert len(children(server.pid)) == 1  # Django's reloader runs the server in a child


def _world_readable(path: Path) -> bool:
    return all(p.stat().st_mode & 0o005 == 0o005 for p in [path, *path.parents])


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_server_user_and_group_after_binding(runcpserver) -> None:
    import grp
    import pwd
    import sysconfig

    for where in (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]):
        if not _world_readable(Path(where)):
            pytest.skip(f"user nobody cannot read this Python ({where})")

    server = runcpserver("server_user=nobody", "server_group=nogroup", "workers=2")
    wait_until(lambda: len(children(server.pid)) == 2, message="2 workers")
    uid, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    for pid in [server.pid, *children(server.pid)]:
        status = Path(f"/proc/{pid}/status").read_text()
        assert f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}" in status
        assert f"Gid:\t{gid}\t{gid}\t{gid}\t{gid}" in status
    # A request that needs no database (nobody cannot read the test's root-owned DB).
    assert get(server.url + "static/missing.css")[0] == 404


def test_silent_new_connections_do_not_occupy_the_threads(runcpserver, production_env) -> None:
    """Clients that connect and say nothing (yet) must not hold the request threads."""
    server = runcpserver("threads=2", env=production_env)
    host, port = server.address
    silent = [socket.create_connection((host, port), timeout=30) for _ in range(200)]
    try:
        page_list_ok(server.url, timeout=30)  # would wait for 100 x cheroot's 10 s otherwise
        for conn in silent[:20]:  # they are served once they speak
            conn.sendall(b"GET /static/missing HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert _read_head(conn).startswith(b"HTTP/1.1 404")
    finally:
        for conn in silent:
            conn.close()
