"""Fixtures and helpers for tests of real servers: start a server on port 0 and
learn its address from its banner, drive bounded HTTP load, run nginx in front.

Use them from a test module with ``from tests.server_fixtures import *``
(runcpserver's and runfcgi's tests both do).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import EXAMPLE, MANAGE

__all__ = [
    "TCP_CLOSE_WAIT",
    "TCP_ESTABLISHED",
    "TCP_LISTEN",
    "Load",
    "LoadResult",
    "ServerProcess",
    "children",
    "free_port",
    "get",
    "nginx",
    "raise_fd_limit",
    "run_load",
    "runcpserver",
    "start_front_server",
    "start_server",
    "stop_process",
    "tcp_sockets",
    "tls_ca",
    "wait_until",
]

BANNER = re.compile(r"serving on (?P<url>\S+)")


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 20.0,
    interval: float = 0.05,
    message: str = "condition",
) -> object:
    """Poll ``predicate`` until it returns something true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {message}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_fd_limit(wanted: int = 8192) -> None:
    """Load tests hold thousands of sockets; the soft limit is often 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def children(pid: int) -> list[int]:
    """Live (non-zombie) child processes of ``pid``, from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    alive = []
    for child in found:
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()[0]
            if state not in {"Z", "X"}:
                alive.append(child)
    return sorted(alive)


# -- a server subprocess ----------------------------------------------------------------


@dataclass
class ServerProcess:
    """A server started in its own session; output collected by reader threads."""

    proc: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def output(self) -> str:
        return "".join(self.lines) + "".join(self.errors)

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 80

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def terminate(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, bounded wait, then SIGKILL for the whole session we started."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # our own session: leftover workers
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        return self.proc.returncode


def start_server(
    args: list[str],
    env: dict[str, str],
    *,
    cwd: Path = EXAMPLE,
    timeout: float = 60.0,
    expect_banner: bool = True,
    stdin: int = subprocess.DEVNULL,
) -> ServerProcess:
    """Start ``args``; wait for the "serving on URL" banner (or for the process to end).

    ``stdin`` is a descriptor for the server's fd 0 (runfcgi serves on a socket there).
    """
    raise_fd_limit()
    proc = subprocess.Popen(
        args,
        env=env,
        cwd=cwd,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    server = ServerProcess(proc)
    found = threading.Event()

    def read(stream, sink: list[str]) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            sink.append(line)
            match = BANNER.search(line)
            if match and not server.url:
                server.url = match["url"]
                found.set()
        found.set() if proc.poll() is not None else None

    threading.Thread(target=read, args=(proc.stdout, server.lines), daemon=True).start()
    threading.Thread(target=read, args=(proc.stderr, server.errors), daemon=True).start()
    if expect_banner:
        deadline = time.monotonic() + timeout
        while not server.url and time.monotonic() < deadline:
            if proc.poll() is not None:
                time.sleep(0.2)  # let the readers drain
                break
            found.wait(0.1)
        if not server.url:
            server.terminate()
            pytest.fail(f"server did not start: {args}\n{server.output}")
    return server


@pytest.fixture
def runcpserver(example_env: dict[str, str]) -> Iterator[Callable[..., ServerProcess]]:
    """``runcpserver(*args, env=None)``: ``manage.py runcpserver port=0 autoreload=false ARGS``."""
    started: list[ServerProcess] = []

    def start(
        *args: str,
        env: dict[str, str] | None = None,
        expect_banner: bool = True,
        port: str = "port=0",
        autoreload: bool | None = False,
    ) -> ServerProcess:
        words = [port] if port and not any(a.startswith(("port=", "socket=")) for a in args) else []
        if autoreload is not None and not any(a.startswith("autoreload=") for a in args):
            words.append(f"autoreload={'true' if autoreload else 'false'}")
        server = start_server(
            [sys.executable, str(MANAGE), "runcpserver", *words, *args],
            env or example_env,
            expect_banner=expect_banner,
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.terminate()


# -- HTTP -------------------------------------------------------------------------------


def get(
    url: str,
    *,
    timeout: float = 20.0,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection: (status, headers, body)."""
    import http.client

    parts = urlsplit(url)
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@dataclass
class LoadResult:
    ok: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.ok + len(self.failures)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    line = await reader.readline()
    if not line:
        raise ConnectionError("connection closed before a response")
    status = int(line.split()[1])
    length, chunked, close = None, False, line.startswith(b"HTTP/1.0")
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection":
            close = value == "close"
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()
        close = True
    return status, close


async def _client(
    url: str,
    result: LoadResult,
    *,
    requests: int | None,
    stop: threading.Event,
    keepalive: bool,
    timeout: float,
    context: ssl.SSLContext | None,
    unix: str | None,
) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc or 'localhost'}\r\n"
        f"Connection: {'keep-alive' if keepalive else 'close'}\r\n\r\n"
    ).encode()
    reader = writer = None
    done = 0
    while (requests is None and not stop.is_set()) or (requests is not None and done < requests):
        done += 1
        try:
            if writer is None:
                if unix:
                    opened = asyncio.open_unix_connection(unix)
                else:
                    opened = asyncio.open_connection(
                        host, port, ssl=context, server_hostname=host if context else None
                    )
                reader, writer = await asyncio.wait_for(opened, timeout)
            writer.write(request)
            status, close = await asyncio.wait_for(_read_response(reader), timeout)
            result.statuses[status] += 1
            if 200 <= status < 400:
                result.ok += 1
            else:
                result.failures.append(f"HTTP {status}")
            if close or not keepalive:
                writer.close()
                writer = None
        except (
            OSError,
            asyncio.TimeoutError,
            asyncio.IncompleteReadError,
            ValueError,
            IndexError,
            ssl.SSLError,
        ) as exc:
            result.failures.append(f"{type(exc).__name__}: {exc}")
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()


def run_load(
    url: str,
    *,
    concurrency: int,
    requests: int | None = None,
    stop: threading.Event | None = None,
    keepalive: bool = False,
    timeout: float = 60.0,
    context: ssl.SSLContext | None = None,
    unix: str | None = None,
) -> LoadResult:
    """``concurrency`` clients each sending ``requests`` GETs (or until ``stop`` is set)."""
    raise_fd_limit(concurrency * 2 + 512)
    result = LoadResult()
    stop = stop or threading.Event()

    async def main() -> None:
        await asyncio.gather(
            *(
                _client(
                    url,
                    result,
                    requests=requests,
                    stop=stop,
                    keepalive=keepalive,
                    timeout=timeout,
                    context=context,
                    unix=unix,
                )
                for _ in range(concurrency)
            )
        )

    asyncio.run(main())
    return result


class Load:
    """Load in a background thread until :meth:`finish` (for reloads and failovers)."""

    def __init__(self, url: str, *, concurrency: int = 20, **kwargs: object) -> None:
        self._stop = threading.Event()
        self.result: LoadResult | None = None
        self._thread = threading.Thread(
            target=self._run, args=(url, concurrency, kwargs), daemon=True
        )

    def _run(self, url: str, concurrency: int, kwargs: dict) -> None:  # type: ignore[type-arg]
        self.result = run_load(url, concurrency=concurrency, stop=self._stop, **kwargs)  # type: ignore[arg-type]

    def start(self) -> Load:
        self._thread.start()
        return self

    def finish(self, timeout: float = 120.0) -> LoadResult:
        self._stop.set()
        self._thread.join(timeout)
        assert self.result is not None, "load did not finish"
        return self.result


# -- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A throwaway CA and a server certificate for 127.0.0.1/localhost (trustme)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    tmp = tmp_path_factory.mktemp("tls")
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_path)
    cert.private_key_pem.write_to_path(key_path)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return {"cert": str(cert_path), "key": str(key_path), "context": context}


# -- nginx ------------------------------------------------------------------------------

NGINX_CONF = """\
{user}worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    scgi_temp_path {tmp}/scgi;
    uwsgi_temp_path {tmp}/uwsgi;
    upstream app {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port}{listen_ssl};
{server_extra}
        location / {{
{location}
        }}
    }}
}}
"""

PROXY_LOCATION = """\
            proxy_pass http://app;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 2s;
            proxy_max_temp_file_size 0;  # workers may run as nobody: no temp files"""


#: Socket states as /proc/net/tcp writes them.
TCP_ESTABLISHED, TCP_CLOSE_WAIT, TCP_LISTEN = "01", "08", "0A"


def tcp_sockets(port: int, state: str) -> list[list[str]]:
    """The rows of /proc/net/tcp and tcp6 (fields split) for sockets of this machine
    whose local port is ``port`` and whose state is ``state`` (see ``TCP_*``)."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    rows.append(fields)
    return rows


def start_front_server(
    argv: list[str], port: int, log: Path, started: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """Start a front web server (nginx, Apache httpd) in the foreground, add it to
    ``started`` (for the fixture to stop), and return once it listens on
    127.0.0.1:``port``; fail the test with its output and ``log`` if it exits."""
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    started.append(proc)
    name = Path(argv[0]).name

    def listening() -> bool:
        if proc.poll() is not None:
            pytest.fail(
                f"{name} exited: {proc.stdout.read().decode() if proc.stdout else ''}"
                f"{log.read_text() if log.exists() else ''}"
            )
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, 20, message=f"{name} to listen")
    return proc


def stop_process(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Stop a process a test started, by its pid: ``sig``, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``nginx(["127.0.0.1:8001", ...], location=PROXY_LOCATION)`` -> the URL nginx serves.

    Writes its own config, pid file and temp dirs under ``tmp_path``, listens on an
    ephemeral port of 127.0.0.1, and is stopped (by its pid) afterwards.
    ``location`` is the body of ``location / {}`` (runfcgi passes ``scgi_pass app;``).
    """
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        pytest.fail("nginx is not installed (scripts/apt-packages.txt; scripts/test installs it)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        upstreams: list[str],
        location: str = PROXY_LOCATION,
        extra: str = "",
        tls: dict | None = None,
    ) -> str:
        tmp = tmp_path / f"nginx{len(procs)}"
        tmp.mkdir()
        port = free_port()
        servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=10s;" for u in upstreams)
        conf = tmp / "nginx.conf"
        server_extra = ""
        if tls:  # the tls_ca fixture's dict: HTTPS in front
            server_extra = (
                f"        ssl_certificate {tls['cert']};\n        ssl_certificate_key {tls['key']};"
            )
        # As root, nginx's workers would run as nobody: unable to reach the test's
        # temp dirs (request bodies) and Unix sockets.
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf.write_text(
            NGINX_CONF.format(
                tmp=tmp,
                servers=servers + extra,
                port=port,
                location=location,
                user=user,
                listen_ssl=" ssl" if tls else "",
                server_extra=server_extra,
            )
        )
        log = tmp / "error.log"
        argv = [binary, "-e", str(log), "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"]
        start_front_server(argv, port, log, procs)
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}/"

    yield start
    for proc in procs:
        stop_process(proc, signal.SIGQUIT)  # graceful
