"""runfcgi with real processes: SCGI and FastCGI behind real nginx (TCP and Unix
sockets), raw protocol clients, options, stop/status, the spawned-by-the-server mode."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import manage
from tests.fcgi_fixtures import *  # noqa: F403
from tests.fcgi_fixtures import (
    fcgi_request,
    nginx_location,
    parse_cgi_response,
    scgi_request,
    upstream_of,
)
from tests.server_fixtures import *  # noqa: F403
from tests.server_fixtures import (
    TCP_ESTABLISHED,
    get,
    start_front_server,
    stop_process,
    tcp_sockets,
    wait_until,
)

PROTOCOLS = ["scgi", "fcgi"]


def start_behind_nginx(
    runfcgi, nginx, protocol: str, *args: str, unix: Path | None = None, tls: dict | None = None
):
    """runfcgi PROTOCOL (on TCP port 0, or the Unix socket ``unix``) with nginx in front."""
    where = [f"socket={unix}"] if unix else []
    server = runfcgi(f"protocol={protocol}", *where, *args)
    url = nginx([upstream_of(server)], location=nginx_location(protocol), tls=tls)
    return server, url


@pytest.mark.parametrize("transport", ["tcp", "unix"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_request_seen_by_django_behind_nginx(runfcgi, nginx, tmp_path, protocol, transport):
    unix = tmp_path / "app.sock" if transport == "unix" else None
    server, url = start_behind_nginx(runfcgi, nginx, protocol, unix=unix)
    assert server.url == (f"unix:{unix}" if unix else server.url)

    response = requests.get(url + "echo/caf%C3%A9%20y%20%2B/x?q=caf%C3%A9&q=2&sp=a%20b", timeout=20)
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["path"] == "/echo/café y +/x"
    assert seen["path_info"] == "/echo/café y +/x"
    assert seen["script_name"] == ""
    assert seen["GET"] == {"q": ["café", "2"], "sp": ["a b"]}
    assert seen["full_path"] == "/echo/caf%C3%A9%20y%20+/x?q=caf%C3%A9&q=2&sp=a%20b"
    assert seen["remote_addr"] == "127.0.0.1"
    assert seen["is_secure"] is False
    assert seen["method"] == "GET"

    response = requests.post(
        url + "echo/form", data={"name": "Zoë", "tags": ["a", "b c"]}, timeout=20
    )
    assert response.status_code == 200, response.text
    assert response.json()["POST"] == {"name": ["Zoë"], "tags": ["a", "b c"]}
    assert response.json()["method"] == "POST"

    # the example project's real pages
    listing = requests.get(url, timeout=20)
    assert listing.status_code == 200 and "<html" in listing.text.lower()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ten_megabyte_upload(runfcgi, nginx, protocol):
    import hashlib

    _, url = start_behind_nginx(runfcgi, nginx, protocol)
    payload = os.urandom(10 * 1024 * 1024)
    response = requests.post(
        url + "echo/upload", files={"blob": ("blob.bin", payload)}, data={"note": "big"}, timeout=60
    )
    assert response.status_code == 200, response.text[:500]
    seen = response.json()
    assert seen["FILES"]["blob"] == {
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    assert seen["POST"] == {"note": ["big"]}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_is_secure_behind_https(runfcgi, nginx, tls_ca, protocol):
    _, url = start_behind_nginx(runfcgi, nginx, protocol, tls=tls_ca)
    assert url.startswith("https://")
    status, _, body = get(url + "echo/tls", context=tls_ca["context"])
    assert status == 200
    assert json.loads(body)["is_secure"] is True


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_script_name_mounts_the_app_under_a_prefix(runfcgi, nginx, protocol):
    _, url = start_behind_nginx(runfcgi, nginx, protocol, "script_name=/app/")
    response = requests.get(url + "app/echo/d%C3%A9j%C3%A0?x=1", timeout=20)
    assert response.status_code == 200, response.text[:500]
    seen = response.json()
    assert seen["script_name"] == "/app"
    assert seen["path_info"] == "/echo/déjà"
    assert seen["path"] == "/app/echo/déjà"
    assert seen["reverse"] == "/app/echo/"  # URLs Django builds carry the prefix


def test_raw_scgi_and_fastcgi_clients_see_decoded_path(runfcgi):
    """Without nginx: flup alone would hand Django the percent-encoded PATH_INFO."""
    for protocol, send in (("scgi", scgi_request), ("fcgi", fcgi_request)):
        server = runfcgi(f"protocol={protocol}")
        answer = send(
            server.address,
            {"REQUEST_URI": "/echo/a%20b%2Fc/%E2%82%AC", "QUERY_STRING": "k=%E2%82%AC"},
        )
        status, _headers, body = parse_cgi_response(answer)
        assert status == 200, answer[:300]
        seen = json.loads(body)
        assert seen["path"] == "/echo/a b/c/€"
        assert seen["GET"] == {"k": ["€"]}


def test_fastcgi_streams_a_streamed_response_and_sends_a_whole_one_with_the_end(runfcgi, tmp_path):
    """A body that is all there goes out with the request's end (one send); a streamed
    one still leaves chunk by chunk, before the application has produced the next."""
    from django.http import HttpResponse, StreamingHttpResponse

    from django_devcommands.servers.fastcgi import whole_response
    from django_devcommands.servers.supervisor import Closing
    from tests.fcgi_fixtures import (
        FCGI_BEGIN_REQUEST,
        FCGI_PARAMS,
        FCGI_STDIN,
        _pair,
        fcgi_record,
        fcgi_stdout,
    )

    server = runfcgi("protocol=fcgi")
    mark = tmp_path / "go"
    fields = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": f"/stream/?mark={mark}",
        "SERVER_NAME": "127.0.0.1",
    }
    fields |= {"QUERY_STRING": f"mark={mark}", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1"}
    block = b"".join(_pair(k.encode(), v.encode()) for k, v in fields.items())
    request = (
        fcgi_record(FCGI_BEGIN_REQUEST, 1, struct.pack("!HB5x", 1, 0))
        + fcgi_record(FCGI_PARAMS, 1, block)
        + fcgi_record(FCGI_PARAMS, 1, b"")
        + fcgi_record(FCGI_STDIN, 1, b"")
    )
    with socket.create_connection(server.address, timeout=20) as sock:
        sock.sendall(request)
        data = b""
        while b"first" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        assert b"second" not in data and not mark.exists()  # the view is still waiting
        mark.touch()
        while chunk := sock.recv(65536):
            data += chunk
    status, _, body = parse_cgi_response(fcgi_stdout(data))
    assert status == 200 and body == b"first\nsecond\n"
    assert whole_response([b"x"]) and whole_response(HttpResponse(b"x"))
    assert not whole_response(StreamingHttpResponse(iter([b"x"])))
    assert not whole_response(iter([b"x"]))
    assert whole_response(Closing(HttpResponse(b"x"), lambda: None))  # the worker's wrapper
    assert not whole_response(Closing(StreamingHttpResponse(iter([b"x"])), lambda: None))
    assert parse_cgi_response(fcgi_request(server.address))[0] == 200  # a whole one


# -- options, errors, stop/status -----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["socket=/tmp/x.sock", "port=9000"], "Give socket= or host=/port=, not both."),
        (["protocol=http", "port=0"], "Bad value for protocol: 'http' is not one of fcgi"),
        (["method=threaded", "workers=3", "port=0"], "method=threaded runs one process"),
        (["host=127.0.0.1"], "host=127.0.0.1 needs port=PORT too."),
        (["maxspare=0", "port=0"], "Bad value for maxspare"),
        (["debug=maybe", "port=0"], "Bad value for debug"),
        ([], "standard input is not a socket"),
        (["stop"], "runfcgi stop needs pidfile=PATH."),
        (["protocol=ajp", "port=9000", "nginx"], "nginx does not speak AJP"),
    ],
)
def test_bad_options_are_one_line_errors(fcgi_env, args, message):
    result = manage(fcgi_env, "runfcgi", *args, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_old_runfcgi_spellings_are_accepted(runfcgi):
    server = runfcgi(
        "protocol=scgi",
        "method=fork",
        "maxchildren=6",
        "maxspare=2",
        "minspare=2",
        "maxrequests=0",
        "debug=false",
        "umask=022",
    )
    assert "prefork: 2 workers x 3 threads" in server.output
    server = runfcgi("method=thread", "maxchildren=4", "--protocol", "fcgi")
    assert "threaded: 1 process x 4 threads" in server.output
    status, _, _ = parse_cgi_response(fcgi_request(server.address))
    assert status == 200


def test_foreground_by_default_then_stop_and_status(runfcgi, fcgi_env, tmp_path):
    pidfile = tmp_path / "run" / "fcgi.pid"
    server = runfcgi("protocol=scgi", f"pidfile={pidfile}", "workers=2")
    wait_until(pidfile.exists, 20, message="pidfile")
    assert int(pidfile.read_text()) == server.pid  # foreground: the process we started
    status = manage(fcgi_env, "runfcgi", "status", f"pidfile={pidfile}")
    assert status.returncode == 0 and str(server.pid) in status.stdout
    stop = manage(fcgi_env, "runfcgi", "stop", f"pidfile={pidfile}")
    assert stop.returncode == 0, stop.stderr
    assert f"Stopped process {server.pid}" in stop.stdout
    assert server.wait(30) == 0
    assert not pidfile.exists()
    status = manage(fcgi_env, "runfcgi", "status", f"pidfile={pidfile}")
    assert str(server.pid) not in status.stdout


def test_daemonize_and_stop(fcgi_env, tmp_path):
    pidfile = tmp_path / "fcgi.pid"
    sock = tmp_path / "fcgi.sock"
    started = manage(
        fcgi_env,
        "runfcgi",
        "protocol=fcgi",
        f"socket={sock}",
        "daemonize=true",
        "method=threaded",
        f"pidfile={pidfile}",
        f"errlog={tmp_path / 'err.log'}",
        timeout=60,
    )
    try:
        assert started.returncode == 0, started.stderr
        assert "daemon pid" in started.stdout
        pid = int(pidfile.read_text())
        status, _, body = parse_cgi_response(fcgi_request(str(sock)))
        assert status == 200 and json.loads(body)["pid"] == pid
    finally:
        stop = manage(fcgi_env, "runfcgi", "stop", f"pidfile={pidfile}")
    assert stop.returncode == 0, stop.stderr
    assert not pidfile.exists()


def test_unix_socket_umask(runfcgi, tmp_path):
    sock = tmp_path / "s.sock"
    runfcgi("protocol=scgi", f"socket={sock}", "umask=007")
    assert sock.stat().st_mode & 0o777 == 0o770


@pytest.mark.parametrize("transport", ["tcp", "unix"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_serves_the_socket_passed_as_fd0(runfcgi, tmp_path, protocol, transport):
    """Old runfcgi's spawned mode: no address given, the web server's socket is stdin."""
    if transport == "unix":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(tmp_path / "web.sock"))
    else:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    with listener:
        server = runfcgi(f"protocol={protocol}", port=None, stdin=listener.fileno())
        address = listener.getsockname()
        assert server.url.endswith(f":{address[1]}/" if transport == "tcp" else address)
        send = scgi_request if protocol == "scgi" else fcgi_request
        status, _, _ = parse_cgi_response(send(address))
        assert status == 200
        server.signal(signal.SIGTERM)
        assert server.wait(20) == 0
        if transport == "unix":  # not ours to remove: the web server made it
            assert (tmp_path / "web.sock").exists()


def test_allowed_servers(runfcgi):
    server = runfcgi("protocol=scgi", "allowed_servers=192.0.2.1")
    assert scgi_request(server.address) == b""  # closed at once
    wait_until(lambda: "refused (allowed_servers)" in server.output, 10, message="the log line")
    server = runfcgi("protocol=scgi", "allowed_servers=192.0.2.1,127.0.0.1")
    assert parse_cgi_response(scgi_request(server.address))[0] == 200


def test_fcgi_web_server_addrs_respected(runfcgi, fcgi_env):
    server = runfcgi("protocol=fcgi", env={**fcgi_env, "FCGI_WEB_SERVER_ADDRS": "192.0.2.7"})
    assert fcgi_request(server.address) == b""


# -- debug: our error page, never flup's cgitb ----------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_debug_false_shows_no_traceback(runfcgi, protocol):
    server = runfcgi(f"protocol={protocol}", "debug=false")
    send = scgi_request if protocol == "scgi" else fcgi_request
    status, _, body = parse_cgi_response(send(server.address, {"REQUEST_URI": "/__crash__"}))
    assert status == 500
    assert b"Server error" in body
    assert b"secret-traceback-marker" not in body and b"Traceback" not in body
    # and the worker still serves
    assert parse_cgi_response(send(server.address))[0] == 200


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_debug_true_shows_our_page_without_cgitb(runfcgi, fcgi_env, tmp_path, protocol):
    """cgitb is gone in Python 3.13: make it unimportable here and debug must still work."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "cgitb.py").write_text("raise ImportError('cgitb was removed in Python 3.13')\n")
    env = {**fcgi_env, "PYTHONPATH": os.pathsep.join([str(shadow), fcgi_env["PYTHONPATH"]])}
    server = runfcgi(f"protocol={protocol}", "debug=true", env=env)
    send = scgi_request if protocol == "scgi" else fcgi_request
    status, headers, body = parse_cgi_response(send(server.address, {"REQUEST_URI": "/__crash__"}))
    assert status == 500
    assert b"Traceback" in body and b"secret-traceback-marker" in body
    assert headers["content-type"].startswith("text/html")


# -- AJP (Apache's mod_proxy_ajp protocol; nginx does not speak it) ---------------------


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_ajp_request(runfcgi, tmp_path, transport):
    from tests.fcgi_fixtures import ajp_request

    if transport == "unix":
        server = runfcgi("protocol=ajp", f"socket={tmp_path / 'ajp.sock'}")
        address: tuple[str, int] | str = str(tmp_path / "ajp.sock")
    else:
        server = runfcgi("protocol=ajp")
        address = server.address
    status, headers, body = ajp_request(address, "/echo/caf%C3%A9%20z", "q=%C3%A9")
    assert status == 200, body[:300]
    seen = json.loads(body)
    assert seen["path"] == "/echo/café z"
    assert seen["GET"] == {"q": ["é"]}
    assert headers["content-type"].startswith("application/json")
    status, _, body = ajp_request(address, "/echo/s", is_ssl=True)
    assert json.loads(body)["is_secure"] is True


def test_ajp_behind_apache_mod_proxy_ajp(runfcgi, apache_ajp):
    """A real Apache httpd in front (mod_proxy_ajp, whose pooled connections stay open
    between requests): Django sees what it would under runserver."""
    import hashlib
    import os
    import signal
    import time

    server = runfcgi("protocol=ajp", "workers=2")
    url = apache_ajp(upstream_of(server))

    session = requests.Session()
    response = session.get(url + "echo/caf%C3%A9%20y%20%2B/x?q=caf%C3%A9&q=2&sp=a%20b", timeout=20)
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["path"] == "/echo/café y +/x"
    assert seen["GET"] == {"q": ["café", "2"], "sp": ["a b"]}
    assert seen["full_path"] == "/echo/caf%C3%A9%20y%20+/x?q=caf%C3%A9&q=2&sp=a%20b"
    assert seen["remote_addr"] == "127.0.0.1"
    assert seen["is_secure"] is False
    response = session.post(
        url + "echo/form", data={"name": "Zoë", "tags": ["a", "b c"]}, timeout=20
    )
    assert response.json()["POST"] == {"name": ["Zoë"], "tags": ["a", "b c"]}
    blob = os.urandom(10 * 1024 * 1024)
    response = session.post(url + "echo/up", files={"f": ("blob.bin", blob)}, timeout=60)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["FILES"]["f"] == {
        "size": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    for _ in range(20):  # over Apache's kept AJP connections
        assert session.get(url + "echo/again", timeout=20).json()["path"] == "/echo/again"
    listing = session.get(url, timeout=20)
    assert listing.status_code == 200 and "<html" in listing.text.lower()
    # Apache keeps its AJP connections open (seen here on the server's side)...
    assert tcp_sockets(server.address[1], TCP_ESTABLISHED), "Apache kept no AJP connection open"
    # ...and they must not hold a stopping server for its 30 s shutdown timeout.
    started = time.monotonic()
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(25) == 0
    assert time.monotonic() - started < 10


# -- runfcgi nginx: the printed server block works in real nginx ----------------------


@pytest.mark.parametrize(("protocol", "transport"), [("scgi", "tcp"), ("fcgi", "unix")])
def test_nginx_helper_block_passes_nginx_t_and_serves(
    runfcgi, fcgi_env, tmp_path, protocol, transport
):
    import shutil

    from tests.server_fixtures import free_port

    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        pytest.fail("nginx is not installed (scripts/apt-packages.txt)")
    where = [f"socket={tmp_path / 'app.sock'}"] if transport == "unix" else []
    server = runfcgi(f"protocol={protocol}", *where, "script_name=/site")
    address = where or [f"port={server.address[1]}"]
    collected = manage(fcgi_env, "collectstatic", "--noinput", "-v0")
    assert collected.returncode == 0, collected.stderr
    port = free_port()
    printed = manage(
        fcgi_env,
        "runfcgi",
        "nginx",
        f"protocol={protocol}",
        *address,
        "script_name=/site",
        f"listen=127.0.0.1:{port}",
        "server_name=localhost",
    )
    assert printed.returncode == 0, printed.stderr
    assert "server {" in printed.stdout and "upstream " in printed.stdout
    (tmp_path / "site.conf").write_text(printed.stdout)
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"{user}worker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path}/body;\n"
        f"  fastcgi_temp_path {tmp_path}/fcgi;\n  scgi_temp_path {tmp_path}/scgi;\n"
        f"  proxy_temp_path {tmp_path}/proxy;\n  uwsgi_temp_path {tmp_path}/uwsgi;\n"
        f"  include {tmp_path}/site.conf;\n}}\n"
    )
    args = [binary, "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    started: list[subprocess.Popen[bytes]] = []
    try:
        start_front_server([*args, "-g", "daemon off;"], port, tmp_path / "error.log", started)
        response = requests.get(f"http://127.0.0.1:{port}/site/echo/%C3%A0?x=1", timeout=20)
        assert response.status_code == 200, response.text[:300]
        assert response.json()["path"] == "/site/echo/à"
        assert response.json()["script_name"] == "/site"
        css = requests.get(f"http://127.0.0.1:{port}/site/static/pages/site.css", timeout=20)
        assert css.status_code == 200 and "{" in css.text  # nginx serves STATIC_ROOT itself
    finally:
        for proc in started:
            stop_process(proc, signal.SIGQUIT)


def test_maxrequests_recycles_the_worker(runfcgi):
    """Old runfcgi's maxrequests: a worker leaves after that many requests and is replaced."""
    server = runfcgi("protocol=fcgi", "workers=1", "maxrequests=3")
    pids = []
    for _ in range(7):
        status, _, body = parse_cgi_response(fcgi_request(server.address))
        assert status == 200
        pids.append(json.loads(body)["pid"])
    assert len(set(pids[:3])) == 1
    assert len(set(pids)) >= 2  # replaced after 3 requests, nothing failed meanwhile
    assert server.pid not in pids  # maxrequests implies a master


def test_ipv6_loopback(runfcgi):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = runfcgi("protocol=scgi", "host=::1")
    assert server.url.startswith("scgi://[::1]:")
    status, _, body = parse_cgi_response(scgi_request(("::1", server.address[1])))
    assert status == 200, body[:200]
