"""Fixtures and helpers for runfcgi's tests: the server on port 0 (or a Unix socket),
nginx in front with the params files nginx ships, and raw SCGI/FastCGI clients.

Use them with ``from tests.fcgi_fixtures import *`` (and ``tests.server_fixtures``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import MANAGE
from tests.server_fixtures import (
    ServerProcess,
    free_port,
    start_front_server,
    start_server,
    stop_process,
)

__all__ = [
    "FCGI_BEGIN_REQUEST",
    "FCGI_PARAMS",
    "FCGI_STDIN",
    "ajp_request",
    "apache_ajp",
    "fcgi_env",
    "fcgi_record",
    "fcgi_request",
    "nginx_location",
    "nginx_params",
    "parse_cgi_response",
    "runfcgi",
    "scgi_request",
    "upstream_of",
]

FCGI_BEGIN_REQUEST, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_END_REQUEST = 1, 4, 5, 6, 3


@pytest.fixture(scope="session")
def fcgi_env(example_env: dict[str, str]) -> dict[str, str]:
    """The example project's environment with the test views of tests/fcgi_urls.py."""
    return {**example_env, "DJANGO_SETTINGS_MODULE": "tests.fcgi_settings"}


@pytest.fixture
def runfcgi(fcgi_env: dict[str, str]) -> Iterator[Callable[..., ServerProcess]]:
    """``runfcgi(*args, env=None)``: ``manage.py runfcgi port=0 ARGS`` (unless socket= given)."""
    started: list[ServerProcess] = []

    def start(
        *args: str,
        env: dict[str, str] | None = None,
        expect_banner: bool = True,
        port: str | None = "port=0",
        stdin: int = subprocess.DEVNULL,
    ) -> ServerProcess:
        words = [port] if port and not any(a.startswith(("port=", "socket=")) for a in args) else []
        server = start_server(
            [sys.executable, str(MANAGE), "runfcgi", *words, *args],
            env or fcgi_env,
            expect_banner=expect_banner,
            stdin=stdin,
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.terminate()


APACHE_MODULES = Path("/usr/lib/apache2/modules")

APACHE_CONF = """\
ServerRoot "{tmp}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{tmp}/httpd.pid"
ErrorLog "{tmp}/error.log"
LogLevel warn
DefaultRuntimeDir "{tmp}"
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule proxy_module {modules}/mod_proxy.so
LoadModule proxy_ajp_module {modules}/mod_proxy_ajp.so
{user}
ProxyPass "/" "ajp://{backend}/"
"""


@pytest.fixture
def apache_ajp(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``apache_ajp("127.0.0.1:PORT")`` -> the URL of a real Apache httpd whose
    mod_proxy_ajp passes every request to that AJP backend (Debian's apache2-bin,
    scripts/apt-packages.txt). Its own config and pid file under ``tmp_path``, an
    ephemeral port of 127.0.0.1; stopped by its pid afterwards."""
    binary = shutil.which("apache2") or "/usr/sbin/apache2"
    if not os.path.exists(binary) or not (APACHE_MODULES / "mod_proxy_ajp.so").exists():
        pytest.fail("Apache httpd is not installed (scripts/apt-packages.txt: apache2-bin)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(backend: str) -> str:
        tmp = tmp_path / f"apache{len(procs)}"
        tmp.mkdir()
        port = free_port()
        # As root, httpd's children must switch to a user of their own.
        user = "User nobody\nGroup nogroup" if os.geteuid() == 0 else ""
        conf = tmp / "httpd.conf"
        conf.write_text(
            APACHE_CONF.format(
                tmp=tmp, port=port, modules=APACHE_MODULES, user=user, backend=backend
            )
        )
        start_front_server(
            [binary, "-f", str(conf), "-DFOREGROUND"], port, tmp / "error.log", procs
        )
        return f"http://127.0.0.1:{port}/"

    yield start
    for proc in procs:
        stop_process(proc, signal.SIGTERM)


@functools.cache
def nginx_params(protocol: str) -> str:
    """Absolute path of the ``scgi_params`` / ``fastcgi_params`` file nginx ships."""
    name = {"scgi": "scgi_params", "fcgi": "fastcgi_params"}[protocol]
    candidates = [Path("/etc/nginx") / name]
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if os.path.exists(binary):
        info = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10).stderr
        match = re.search(r"--conf-path=(\S+)", info)
        if match:
            candidates.insert(0, Path(match[1]).parent / name)
    for path in candidates:
        if path.exists():
            return str(path)
    pytest.fail(f"nginx's {name} file not found (is nginx installed?)")


def nginx_location(protocol: str, extra: str = "") -> str:
    """The body of ``location / {}`` passing to the ``app`` upstream with nginx's params."""
    directive = {"scgi": "scgi_pass", "fcgi": "fastcgi_pass"}[protocol]
    return (
        f"            include {nginx_params(protocol)};\n"
        f"            {directive} app;\n"
        "            client_max_body_size 20m;\n" + extra
    )


def upstream_of(server: ServerProcess) -> str:
    """``127.0.0.1:PORT`` or ``unix:/path`` for nginx's ``upstream`` block."""
    if server.url.startswith("unix:"):
        return server.url
    host, port = server.address
    return f"{host}:{port}"


def _connect(address: tuple[str, int] | str, timeout: float) -> socket.socket:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address)
        return sock
    return socket.create_connection(address, timeout=timeout)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def _send(sock: socket.socket, data: bytes, tolerant: bool) -> None:
    """Send and half-close; a server that closed first (malformed input) is fine if tolerant."""
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        if not tolerant:
            raise


def scgi_request(
    address: tuple[str, int] | str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    raw: bytes | None = None,
    timeout: float = 20,
) -> bytes:
    """Send one SCGI request (or ``raw`` bytes) and return everything the server answered."""
    tolerant = raw is not None
    if raw is None:
        fields = {
            "CONTENT_LENGTH": str(len(body)),
            "SCGI": "1",
            "REQUEST_METHOD": "GET",
            "REQUEST_URI": "/echo/",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            **(headers or {}),
        }
        block = b"".join(
            k.encode("latin-1") + b"\0" + v.encode("latin-1") + b"\0" for k, v in fields.items()
        )
        raw = str(len(block)).encode() + b":" + block + b"," + body
    with _connect(address, timeout) as sock:
        _send(sock, raw, tolerant)
        return _read_all(sock)


def fcgi_record(kind: int, request_id: int, content: bytes) -> bytes:
    padding = -len(content) & 7
    header = struct.pack("!BBHHBx", 1, kind, request_id, len(content), padding)
    return header + content + b"\0" * padding


def _pair(name: bytes, value: bytes) -> bytes:
    def length(n: int) -> bytes:
        return bytes([n]) if n < 128 else struct.pack("!L", n | 0x80000000)

    return length(len(name)) + length(len(value)) + name + value


def fcgi_request(
    address: tuple[str, int] | str,
    params: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    raw: bytes | None = None,
    timeout: float = 20,
) -> bytes:
    """Send one FastCGI request (or ``raw`` bytes); return the STDOUT stream's bytes.

    With ``raw``, everything the server sent back is returned unparsed.
    """
    if raw is None:
        fields = {
            "REQUEST_METHOD": "GET",
            "REQUEST_URI": "/echo/",
            "SCRIPT_NAME": "/echo/",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_LENGTH": str(len(body)),
            **(params or {}),
        }
        block = b"".join(_pair(k.encode("latin-1"), v.encode("latin-1")) for k, v in fields.items())
        raw = (
            fcgi_record(FCGI_BEGIN_REQUEST, 1, struct.pack("!HB5x", 1, 0))
            + fcgi_record(FCGI_PARAMS, 1, block)
            + fcgi_record(FCGI_PARAMS, 1, b"")
            + (fcgi_record(FCGI_STDIN, 1, body) if body else b"")
            + fcgi_record(FCGI_STDIN, 1, b"")
        )
        parse = True
    else:
        parse = False
    with _connect(address, timeout) as sock:
        _send(sock, raw, not parse)
        data = _read_all(sock)
    if not parse:
        return data
    return fcgi_stdout(data)


def fcgi_stdout(data: bytes) -> bytes:
    """The STDOUT stream's bytes in the FastCGI records ``data``."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        _, kind, _, length, padding = struct.unpack("!BBHHBx", data[pos : pos + 8])
        if kind == FCGI_STDOUT:
            out.append(data[pos + 8 : pos + 8 + length])
        pos += 8 + length + padding
    return b"".join(out)


def parse_cgi_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """``Status: 200 OK\\r\\nHeader: v\\r\\n\\r\\nbody`` -> (status, headers, body)."""
    head, _, body = data.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(headers.get("status", "200").split()[0]) if head else 0
    return status, headers, body


def _ajp_string(value: str | None) -> bytes:
    if value is None:
        return b"\xff\xff"
    data = value.encode("latin-1")
    return struct.pack(">H", len(data)) + data + b"\0"


def ajp_request(
    address: tuple[str, int] | str | socket.socket,
    uri: str = "/echo/",
    query: str | None = None,
    *,
    is_ssl: bool = False,
    timeout: float = 20,
) -> tuple[int, dict[str, str], bytes]:
    """One AJP13 GET (what Apache's mod_proxy_ajp sends): (status, headers, body).

    ``address`` may be an open socket: AJP connections carry request after request.
    """
    data = (
        b"\x02\x02"
        + _ajp_string("HTTP/1.1")
        + _ajp_string(uri)
        + _ajp_string("127.0.0.1")
        + _ajp_string(None)
        + _ajp_string("127.0.0.1")
        + struct.pack(">H", 80)
        + bytes([1 if is_ssl else 0])
        + struct.pack(">H", 1)
        + b"\xa0\x0b"
        + _ajp_string("127.0.0.1")
    )  # Host
    if query is not None:
        data += b"\x05" + _ajp_string(query)
    data += b"\xff"
    packet = b"\x12\x34" + struct.pack(">H", len(data)) + data
    status, headers, body = 0, {}, b""
    own = not isinstance(address, socket.socket)
    sock = _connect(address, timeout) if own else address  # type: ignore[arg-type]
    with contextlib.nullcontext(sock) if not own else sock:
        sock.sendall(packet)
        buffer = b""
        while True:
            while len(buffer) < 4 or len(buffer) < 4 + struct.unpack(">H", buffer[2:4])[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"AJP connection closed mid-response: {buffer[:100]!r}")
                buffer += chunk
            length = struct.unpack(">H", buffer[2:4])[0]
            payload, buffer = buffer[4 : 4 + length], buffer[4 + length :]
            kind = payload[0]
            if kind == 4:  # SEND_HEADERS
                status = struct.unpack(">H", payload[1:3])[0]
                pos = 3 + 2 + struct.unpack(">H", payload[3:5])[0] + 1
                count = struct.unpack(">H", payload[pos : pos + 2])[0]
                pos += 2
                for _ in range(count):
                    if payload[pos] == 0xA0:
                        name = {
                            1: "content-type",
                            2: "content-language",
                            3: "content-length",
                            4: "date",
                            5: "last-modified",
                            6: "location",
                            7: "set-cookie",
                            8: "set-cookie2",
                            9: "servlet-engine",
                            10: "status",
                            11: "www-authenticate",
                        }[payload[pos + 1]]
                        pos += 2
                    else:
                        size = struct.unpack(">H", payload[pos : pos + 2])[0]
                        name = payload[pos + 2 : pos + 2 + size].decode("latin-1").lower()
                        pos += 2 + size + 1
                    size = struct.unpack(">H", payload[pos : pos + 2])[0]
                    headers[name] = payload[pos + 2 : pos + 2 + size].decode("latin-1")
                    pos += 2 + size + 1
            elif kind == 3:  # SEND_BODY_CHUNK
                size = struct.unpack(">H", payload[1:3])[0]
                body += payload[3 : 3 + size]
            elif kind == 5:  # END_RESPONSE
                return status, headers, body
