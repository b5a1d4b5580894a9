"""runfcgi under abuse: fuzzed SCGI netstrings and FastCGI records, signals under
load through nginx, a killed worker, c=100 and c=1000, and flup's Python 3 bugs
shown absent from our command."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import struct
import time

import hypothesis
import hypothesis.strategies as st
import pytest
import requests

from tests.fcgi_fixtures import *  # noqa: F403
from tests.fcgi_fixtures import (
    FCGI_BEGIN_REQUEST,
    FCGI_PARAMS,
    FCGI_STDIN,
    fcgi_record,
    fcgi_request,
    nginx_location,
    parse_cgi_response,
    scgi_request,
    upstream_of,
)
from tests.server_fixtures import *  # noqa: F403
from tests.server_fixtures import Load, children, run_load, wait_until
from tests.spin import assert_one_at_a_time_once_saturated

FUZZ = hypothesis.settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)


def _pairs(draw_dict: dict[bytes, bytes]) -> bytes:
    out = b""
    for name, value in draw_dict.items():
        for n in (len(name), len(value)):
            out += bytes([n]) if n < 128 else struct.pack("!L", n | 0x80000000)
        out += name + value
    return out


@st.composite
def scgi_garbage(draw):  # type: ignore[no-untyped-def]
    """Raw bytes, or a netstring with a wrong length, bad trailer, odd or missing headers."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.binary(max_size=200))
    fields = draw(st.lists(st.binary(max_size=20), max_size=7))
    block = b"".join(f + b"\0" for f in fields)
    length = len(block)
    if kind == 2:
        length = draw(st.one_of(st.integers(0, 10**12), st.just(-1)))
    prefix = draw(
        st.sampled_from(
            [str(length).encode(), b" " + str(length).encode(), b"0x10", b"", b"9" * 30]
        )
    )
    trailer = draw(st.sampled_from([b",", b";", b""]))
    body = draw(st.binary(max_size=50)) if kind == 4 else b""
    return prefix + b":" + block + trailer + body


@st.composite
def fcgi_garbage(draw):  # type: ignore[no-untyped-def]
    """Raw bytes, or FastCGI records with odd types, ids, lengths, truncated pairs."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.binary(max_size=200))
    out = b""
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from([1, 2, 4, 5, 8, 9, 11, 0, 255]))
        request_id = draw(st.sampled_from([0, 1, 2, 65535]))
        if kind == FCGI_BEGIN_REQUEST and draw(st.booleans()):
            content = struct.pack(
                "!HB5x", draw(st.sampled_from([1, 2, 3, 7])), draw(st.sampled_from([0, 1]))
            )
        elif kind in (FCGI_PARAMS, 9) and draw(st.booleans()):
            content = _pairs(
                draw(st.dictionaries(st.binary(max_size=10), st.binary(max_size=300), max_size=4))
            )
            content = content[: draw(st.integers(0, len(content)))]  # maybe truncated
        else:
            content = draw(st.binary(max_size=64))
        record = fcgi_record(kind, request_id, content)
        if draw(st.integers(0, 5)) == 0:  # a lying header
            record = record[:4] + struct.pack("!H", draw(st.integers(0, 65535))) + record[6:]
        if draw(st.integers(0, 5)) == 0:
            record = bytes([draw(st.integers(0, 255))]) + record[1:]  # bad version
        out += record
    return out


@pytest.mark.parametrize("protocol", ["scgi", "fcgi"])
def test_fuzzed_input_closes_only_that_connection(runfcgi, protocol):
    """Each malformed input is answered (or not) and closed; the same process serves on."""
    server = runfcgi(f"protocol={protocol}", "method=threaded", "maxchildren=4")
    send = scgi_request if protocol == "scgi" else fcgi_request
    strategy = scgi_garbage() if protocol == "scgi" else fcgi_garbage()
    examples = []

    @FUZZ
    @hypothesis.given(strategy)
    def check(garbage: bytes) -> None:
        send(server.address, raw=garbage, timeout=30)  # returns once the server closes
        status, _, body = parse_cgi_response(send(server.address, timeout=30))
        assert status == 200, body[:300]
        assert server.proc.poll() is None
        examples.append(garbage)

    check()
    assert len(examples) >= 100  # the fuzzing really ran
    assert server.proc.poll() is None
    assert "Traceback" not in server.output, server.output[-3000:]


def test_scgi_huge_length_is_refused_without_allocating(runfcgi):
    server = runfcgi("protocol=scgi", "method=threaded")
    assert scgi_request(server.address, raw=b"99999999999999:xx") == b""
    wait_until(
        lambda: "bad netstring length" in server.output or "too long" in server.output,
        10,
        message="the log line",
    )
    assert parse_cgi_response(scgi_request(server.address))[0] == 200


def test_fcgi_records_split_across_writes_and_keepalive(runfcgi):
    """A well-formed request sent one byte at a time, and two requests on one connection."""
    import socket

    server = runfcgi("protocol=fcgi", "method=threaded")
    params = _pairs(
        {
            b"REQUEST_METHOD": b"GET",
            b"REQUEST_URI": b"/echo/k",
            b"SERVER_NAME": b"x",
            b"SERVER_PORT": b"80",
            b"SERVER_PROTOCOL": b"HTTP/1.1",
            b"HTTP_HOST": b"127.0.0.1",
        }
    )
    one = (
        fcgi_record(FCGI_BEGIN_REQUEST, 1, struct.pack("!HB5x", 1, 1))  # KEEP_CONN
        + fcgi_record(FCGI_PARAMS, 1, params)
        + fcgi_record(FCGI_PARAMS, 1, b"")
        + fcgi_record(FCGI_STDIN, 1, b"")
    )
    with socket.create_connection(server.address, timeout=20) as sock:
        for i in range(len(one)):
            sock.send(one[i : i + 1])
        sock.sendall(one)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"Status: 200") == 2


def _reset_after_eof(sock, data: bytes, within: float = 1.5) -> bool:
    """Send ``data`` on a connection the server ended; True when the server answers
    with a reset (its socket is closed), False when it is still reading (lingering)."""
    import socket

    sock.sendall(data)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        # The reset reaches a socket that already had the server's FIN as an error
        # waiting on it (EPIPE; ECONNRESET otherwise).
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            return True
        time.sleep(0.02)
    return False


def _fcgi_get(path: str, body: bytes = b"", end_input: bool = True) -> bytes:
    params = _pairs(
        {
            b"REQUEST_METHOD": b"GET",
            b"REQUEST_URI": path.encode(),
            b"SERVER_NAME": b"x",
            b"SERVER_PORT": b"80",
            b"SERVER_PROTOCOL": b"HTTP/1.1",
            b"HTTP_HOST": b"127.0.0.1",
            b"CONTENT_LENGTH": str(len(body)).encode(),
        }
    )
    return (
        fcgi_record(FCGI_BEGIN_REQUEST, 1, struct.pack("!HB5x", 1, 0))  # no KEEP_CONN
        + fcgi_record(FCGI_PARAMS, 1, params)
        + fcgi_record(FCGI_PARAMS, 1, b"")
        + (fcgi_record(FCGI_STDIN, 1, body) if body else b"")
        + (fcgi_record(FCGI_STDIN, 1, b"") if end_input else b"")
    )


def test_fcgi_closes_at_once_when_the_input_is_all_read_and_lingers_when_not(runfcgi):
    """The request's input all there (read or still in our buffer): the server closes
    at once, without waiting for the web server to close first. Input still to come:
    it waits (reads and drops it), since closing with unread bytes would reset the
    connection and could cost the web server the response."""
    import socket

    server = runfcgi("protocol=fcgi", "method=threaded", "threads=1")
    with socket.create_connection(server.address, timeout=20) as sock:
        sock.sendall(_fcgi_get("/echo/done"))  # and no half-close: the server goes first
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        assert b"Status: 200" in data
        assert _reset_after_eof(sock, b"late"), "the server waited for us to close"
    body = b"x" * 10
    with socket.create_connection(server.address, timeout=20) as sock:
        sock.sendall(_fcgi_get("/slow/?s=0", body, end_input=False))  # the view reads none
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        assert b"slept" in data
        assert not _reset_after_eof(sock, fcgi_record(FCGI_STDIN, 1, b""), within=0.5)
    # And the one thread serves on.
    assert b"Status: 200" in fcgi_request(server.address)


def test_cpu_bound_requests_run_fewer_at_once_and_waiting_ones_still_meet(runfcgi):
    """Once the worker uses a whole core, it serves fewer requests at once (the GIL
    gives more threads nothing to do); when the requests wait on something instead,
    the limit rises again, so requests that must meet still meet."""
    server = runfcgi("protocol=scgi", "workers=1", "threads=4")

    def spin(_: object) -> tuple[float, int]:
        status, _, body = parse_cgi_response(
            scgi_request(server.address, {"REQUEST_URI": "/spin/?ms=30", "QUERY_STRING": "ms=30"})
        )
        assert status == 200
        return time.monotonic(), int(body.split()[1])

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers: list[tuple[float, int]] = []
        while time.monotonic() - started < 3.0:
            answers += pool.map(spin, range(8))
    assert_one_at_a_time_once_saturated(answers, started)

    def meet(_: object) -> int:
        query = "n=4&timeout=5"
        status, _, _ = parse_cgi_response(
            scgi_request(
                server.address, {"REQUEST_URI": f"/barrier/?{query}", "QUERY_STRING": query}
            )
        )
        return status

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert list(pool.map(meet, range(4))) == [200] * 4


# -- flup's Python 3 bugs, absent -------------------------------------------------------


def test_pool_grows_past_maxspare(runfcgi):
    """flup's prefork never grew past maxSpare: 6 requests that wait for each other meet here."""
    server = runfcgi(
        "protocol=scgi", "method=threaded", "maxspare=1", "minspare=1", "maxchildren=8"
    )
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(
                lambda _: parse_cgi_response(
                    scgi_request(
                        server.address, {"REQUEST_URI": "/barrier/?n=6", "QUERY_STRING": "n=6"}
                    )
                ),
                range(6),
            )
        )
    assert [status for status, _, _ in answers] == [200] * 6, answers


def test_prefork_pool_grows_past_maxspare(runfcgi):
    """The same with processes: 2 workers x 4 threads serve 8 at once (maxspare=1)."""
    server = runfcgi("protocol=scgi", "workers=2", "maxspare=1", "minspare=1", "maxchildren=8")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: parse_cgi_response(
                    scgi_request(
                        server.address, {"REQUEST_URI": "/slow/?s=1", "QUERY_STRING": "s=1"}
                    )
                ),
                range(8),
            )
        )
    assert [status for status, _, _ in answers] == [200] * 8
    assert len({body for _, _, body in answers}) == 2  # both workers answered


@pytest.mark.parametrize("workers", ["1", "2"])
def test_idle_server_stops_on_sigterm(runfcgi, workers):
    """flup's prefork parent ignored SIGTERM until the next request: ours stops at once."""
    server = runfcgi("protocol=fcgi", f"workers={workers}")
    assert parse_cgi_response(fcgi_request(server.address))[0] == 200
    server.signal(signal.SIGTERM)
    assert server.wait(20) == 0


def test_sigusr1_purge_replaces_workers_without_crashing(runfcgi, nginx):
    """flup's SIGUSR1 purge crashed; ours replaces the workers like a reload, under load."""
    server = runfcgi("protocol=scgi", "workers=2")
    url = nginx([upstream_of(server)], location=nginx_location("scgi"))
    before = wait_until(lambda: len(children(server.pid)) == 2 and children(server.pid), 20)
    load = Load(url, concurrency=10).start()
    time.sleep(0.5)  # load running (no timing is asserted)
    server.signal(signal.SIGUSR1)
    wait_until(
        lambda: (
            len(set(children(server.pid)) - set(before)) >= 2 and len(children(server.pid)) == 2
        ),
        60,
        message="workers replaced",
    )
    result = load.finish()
    assert server.proc.poll() is None
    assert result.failures == [] and result.ok > 0


# -- signals under load through nginx ---------------------------------------------------


@pytest.mark.parametrize("protocol", ["scgi", "fcgi"])
def test_sighup_rolling_reload_under_load(runfcgi, nginx, protocol):
    server = runfcgi(f"protocol={protocol}", "workers=2")
    url = nginx([upstream_of(server)], location=nginx_location(protocol))
    before = wait_until(lambda: len(children(server.pid)) == 2 and children(server.pid), 20)
    load = Load(url, concurrency=20).start()
    time.sleep(0.5)  # load running (no timing is asserted)
    server.signal(signal.SIGHUP)
    wait_until(
        lambda: not set(children(server.pid)) & set(before) and len(children(server.pid)) == 2,
        60,
        message="all workers replaced",
    )
    result = load.finish()
    assert result.failures == [], result.failures[:5]
    assert result.ok > 0


def test_single_process_sighup_reexec_keeps_serving(runfcgi, nginx):
    server = runfcgi("protocol=scgi", "method=threaded")
    url = nginx([upstream_of(server)], location=nginx_location("scgi"))
    load = Load(url, concurrency=10).start()
    time.sleep(0.5)
    server.signal(signal.SIGHUP)
    wait_until(lambda: "re-executed" in server.output, 60, message="the re-exec")
    result = load.finish()
    assert result.failures == [], result.failures[:5]
    assert requests.get(url + "echo/", timeout=20).json()["pid"] == server.pid


def test_sigterm_lets_in_flight_requests_finish(runfcgi, nginx):
    server = runfcgi("protocol=fcgi", "workers=2")
    url = nginx([upstream_of(server)], location=nginx_location("fcgi"))
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(requests.get, url + "slow/?s=2", timeout=30) for _ in range(6)]
        time.sleep(0.5)  # let the requests reach the workers (no timing is asserted)
        server.signal(signal.SIGTERM)
        statuses = [f.result().status_code for f in futures]
    assert statuses == [200] * 6
    assert server.wait(30) == 0


def test_killed_worker_is_respawned_and_only_its_requests_fail(runfcgi, nginx):
    threads = 5
    server = runfcgi("protocol=scgi", "workers=2", f"threads={threads}")
    url = nginx([upstream_of(server)], location=nginx_location("scgi"))
    workers = wait_until(lambda: len(children(server.pid)) == 2 and children(server.pid), 20)
    load = Load(url, concurrency=20).start()
    time.sleep(1)
    os.kill(workers[0], signal.SIGKILL)
    wait_until(
        lambda: workers[0] not in children(server.pid) and len(children(server.pid)) == 2,
        30,
        message="a replacement worker",
    )
    result = load.finish()
    # at most the requests the killed worker held: it accepts only what its threads serve
    assert len(result.failures) <= threads, result.failures
    after = run_load(url, concurrency=20, requests=10)
    assert after.failures == [] and after.ok == 200


# -- concurrency through nginx, default settings -----------------------------------------


@pytest.mark.parametrize("protocol", ["scgi", "fcgi"])
@pytest.mark.parametrize(("concurrency", "per_client"), [(100, 5), (1000, 2)])
def test_no_failures_at_high_concurrency(runfcgi, nginx, protocol, concurrency, per_client):
    server = runfcgi(f"protocol={protocol}")  # default settings
    url = nginx([upstream_of(server)], location=nginx_location(protocol))
    result = run_load(url, concurrency=concurrency, requests=per_client, timeout=120)
    assert result.failures == [], result.failures[:5]
    assert result.ok == concurrency * per_client


@pytest.mark.parametrize("protocol", ["fcgi", "ajp"])
def test_kept_alive_idle_connection_does_not_hold_a_stopping_worker(runfcgi, protocol):
    """nginx's fastcgi_keep_conn and Apache's AJP pools keep connections open between requests."""
    import socket

    from tests.fcgi_fixtures import ajp_request

    server = runfcgi(f"protocol={protocol}", "method=threaded", "shutdown_timeout=600")
    with socket.create_connection(server.address, timeout=60) as sock:
        if protocol == "fcgi":
            params = _pairs(
                {
                    b"REQUEST_METHOD": b"GET",
                    b"REQUEST_URI": b"/echo/",
                    b"SERVER_NAME": b"x",
                    b"SERVER_PORT": b"80",
                    b"SERVER_PROTOCOL": b"HTTP/1.1",
                    b"HTTP_HOST": b"127.0.0.1",
                }
            )
            sock.sendall(
                fcgi_record(FCGI_BEGIN_REQUEST, 1, struct.pack("!HB5x", 1, 1))
                + fcgi_record(FCGI_PARAMS, 1, params)
                + fcgi_record(FCGI_PARAMS, 1, b"")
                + fcgi_record(FCGI_STDIN, 1, b"")
            )
            data = b""
            while b"\x01\x03\x00\x01" not in data:  # FCGI_END_REQUEST for request 1
                chunk = sock.recv(65536)
                assert chunk, data
                data += chunk
            assert b"Status: 200" in data
        else:
            assert ajp_request(sock, "/echo/")[0] == 200  # the same connection stays open
        server.signal(signal.SIGTERM)
        assert server.wait(120) == 0  # not shutdown_timeout=600 later
        while sock.recv(65536):  # the rest of the last response, then EOF: closed by the server
            pass


def test_sigterm_while_workers_boot_is_not_lost(runfcgi):
    """A SIGTERM reaching a worker between fork and its own handlers used to be dropped
    (the worker then lived until shutdown_timeout): the supervisor blocks it across fork."""
    for delay in (0.0, 0.1, 0.2, 0.3, 0.5):
        server = runfcgi("protocol=scgi", "workers=3", "shutdown_timeout=600")
        time.sleep(delay)  # somewhere in the workers' boot (no timing is asserted)
        server.signal(signal.SIGTERM)
        # ends (not 600 s later); killed outright if the master had no handlers yet
        assert server.wait(120) in (0, -signal.SIGTERM), server.output
