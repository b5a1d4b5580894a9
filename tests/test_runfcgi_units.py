"""runfcgi's pure parts: the WSGI path fixer, option resolution, the system checks."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import override_settings

from django_devcommands import checks
from django_devcommands.servers import fastcgi
from tests.server_fixtures import wait_until


@pytest.mark.parametrize(
    ("environ", "script_name", "expected"),
    [
        # nginx scgi_params: REQUEST_URI only; flup would copy it still encoded
        ({"REQUEST_URI": "/caf%C3%A9%20x/?a=1"}, None, ("", "/caf\xc3\xa9 x/", "a=1")),
        # nginx fastcgi_params: SCRIPT_NAME is the whole decoded path
        ({"REQUEST_URI": "/a%2Fb", "SCRIPT_NAME": "/a/b"}, None, ("", "/a/b", "")),
        ({"REQUEST_URI": "/app/x%20y", "QUERY_STRING": "q=1"}, "/app", ("/app", "/x y", "q=1")),
        ({"REQUEST_URI": "/app"}, "/app/", ("/app", "", "")),
        ({"REQUEST_URI": "/application/x"}, "/app", ("/app", "/application/x", "")),
        ({"REQUEST_URI": "http://example.com/p%21?z"}, None, ("", "/p!", "z")),
        # no REQUEST_URI: trust the server's (already decoded) SCRIPT_NAME + PATH_INFO
        ({"SCRIPT_NAME": "/s", "PATH_INFO": "/\xc3\xa9"}, None, ("", "/s/\xc3\xa9", "")),
        ({"SCRIPT_NAME": "/app", "PATH_INFO": "/x"}, "/app", ("/app", "/x", "")),
    ],
)
def test_request_fixer_paths(environ, script_name, expected):
    environ = dict(environ)
    fastcgi.RequestFixer(lambda e, s: [], script_name).fix(environ)
    got = (environ["SCRIPT_NAME"], environ["PATH_INFO"], environ.get("QUERY_STRING", ""))
    assert got == expected


@pytest.mark.parametrize(
    ("environ", "scheme"),
    [({"HTTPS": "on"}, "https"), ({"REQUEST_SCHEME": "https"}, "https"), ({}, "http")],
)
def test_request_fixer_scheme(environ, scheme):
    environ = {"REQUEST_URI": "/", "wsgi.url_scheme": "http", **environ}
    fastcgi.RequestFixer(lambda e, s: []).fix(environ)
    assert environ["wsgi.url_scheme"] == scheme


def resolve(*words: str) -> dict:
    return fastcgi.resolve_values(fastcgi.SPEC.resolve(list(words), {}))


@pytest.mark.parametrize(
    ("words", "workers", "threads"),
    [
        ([], 2, 10),  # minspare=2 processes, runcpserver's 10 threads (maxchildren=50 caps)
        (["maxchildren=10"], 2, 5),
        (["minspare=3"], 3, 10),
        (["workers=8"], 8, 7),
        (["workers=2", "threads=8"], 2, 8),
        (["method=threaded"], 1, 50),
        (["method=thread", "maxchildren=7"], 1, 7),
        (["method=fork", "maxchildren=1"], 2, 1),
    ],
)
def test_process_and_thread_mapping(words, workers, threads):
    values = resolve(*words)
    assert (values["workers"], values["threads"]) == (workers, threads)


def test_port_alone_binds_loopback_and_no_address_means_fd0():
    assert resolve("port=9000")["host"] == "127.0.0.1"
    values = resolve()
    assert values["host"] is None and values["port"] is None and values["socket"] is None


def test_spec_drives_the_docs_table():
    table = fastcgi.SPEC.rst_table()
    for name in (
        "protocol",
        "method",
        "maxspare",
        "minspare",
        "maxchildren",
        "maxrequests",
        "daemonize",
        "pidfile",
        "workdir",
        "debug",
        "outlog",
        "errlog",
        "umask",
        "socket",
        "script_name",
        "workers",
        "threads",
    ):
        assert f"``{name}=``" in table


def test_thread_pool_grows_to_max_and_trims_to_max_spare():
    pool = fastcgi.ThreadPool(max_threads=4, min_spare=1, max_spare=1, retire_after=0.1)
    release = threading.Event()
    started = threading.Semaphore(0)

    class Job:
        def run(self) -> None:
            started.release()
            release.wait(10)

    for _ in range(4):
        assert pool.free(5)
        pool.submit(Job())
    for _ in range(4):
        assert started.acquire(timeout=10)
    assert pool.threads == 4 and pool.busy == 4
    assert not pool.free(0.05)  # full: the accept loop would leave connections queued
    release.set()
    wait_until(lambda: pool.busy == 0 and pool.threads == 1, 10, message="idle threads to retire")
    assert pool.idle == 1
    assert pool.drain(10)


def test_thread_pool_wakes_the_most_recently_idle_thread():
    # A shared condition wakes the thread idle longest, rotating one-at-a-time jobs over
    # every thread (cold caches); the pool hands each to the thread that ran the last.
    pool = fastcgi.ThreadPool(max_threads=6, min_spare=4, max_spare=6, retire_after=60)
    ran: list[str] = []
    done = threading.Semaphore(0)

    class Job:
        def run(self) -> None:
            ran.append(threading.current_thread().name + str(threading.get_ident()))
            done.release()

    for _ in range(12):
        assert pool.free(5)
        pool.submit(Job())
        assert done.acquire(timeout=10)
        # ...and its thread to be waiting again: a job submitted before that goes
        # to another thread, by design (CI once saw it here, under load).
        wait_until(
            lambda: pool.busy == 0 and len(pool._idle._sleepers) == pool.idle,
            10,
            message="the job's thread to wait for the next",
        )
    assert pool.threads >= 4
    assert len(set(ran[1:])) == 1, ran
    assert pool.drain(10)


class _Clocks:
    """Wall and CPU time the test moves by hand: a busy core on a loaded CI machine
    need not get 90 % of a core in a real 0.15 s window."""

    def __init__(self) -> None:
        self.now = 0.0
        self.cpu = 0.0

    def burn(self, seconds: float) -> None:  # a core kept busy
        self.now += seconds
        self.cpu += seconds

    def sleep(self, seconds: float) -> None:  # waiting, no CPU
        self.now += seconds


def test_concurrency_limit_follows_the_cpu_the_process_gets():
    from django_devcommands.servers.supervisor import Concurrency

    clocks = _Clocks()

    def fresh(threads: int = 10) -> Concurrency:
        return Concurrency(threads=threads, clock=lambda: clocks.now, cpu_clock=lambda: clocks.cpu)

    limit = fresh()
    assert limit.limit == Concurrency.START == 1  # a burst starts with one at a time
    rise = limit.RISE_WINDOW * 1.5
    for expected in (2, 4, 8, 10, 10):  # requests wait on a blocked core: twice as many
        clocks.sleep(rise)
        limit.tick(busy=limit.limit, waiting=lambda: True)
        assert limit.limit == expected
    limit = fresh()
    clocks.sleep(limit.RISE_WINDOW / 2)
    limit.tick(busy=1, waiting=lambda: True)
    assert limit.limit == 1  # within the rise window: nothing moves
    limit = fresh()
    for expected in (1, 2, 3):  # half a core (blocked half the time, or another
        clocks.now += rise  # process has the rest): one more per whole window
        clocks.cpu += rise * 0.5
        limit.tick(busy=limit.limit, waiting=lambda: True)
        assert limit.limit == expected
        clocks.now += limit.WINDOW
        clocks.cpu += limit.WINDOW * 0.5
        limit.tick(busy=limit.limit, waiting=lambda: True)
        assert limit.limit == expected + 1
    limit = fresh()
    limit.limit = 10
    clocks.burn(rise)
    limit.tick(busy=10, waiting=lambda: True)
    assert limit.limit == 10  # a busy core, but not for a whole window yet
    for expected in (5, 2, 1, 1):  # a busy core: half as many per window, down to one
        clocks.burn(limit.WINDOW * 1.5)
        limit.tick(busy=3, waiting=lambda: True)
        assert limit.limit == expected
    waiting = [False]
    clocks.sleep(limit.WINDOW * 1.5)
    limit.tick(busy=1, waiting=lambda: waiting[0])
    assert limit.limit == 1  # idle, but nothing waits: no reason to grow
    clocks.sleep(limit.WINDOW * 1.5)
    limit.tick(busy=0, waiting=lambda: True)
    assert limit.limit == 1  # requests wait, but the admitted ones are not all busy
    limit.limit = 10
    clocks.now += limit.WINDOW * 1.5  # 80 % of a core: neither saturated nor idle
    clocks.cpu += limit.WINDOW * 1.5 * 0.8
    limit.tick(busy=10, waiting=lambda: True)
    assert limit.limit == 10
    limit.limit = 4
    clocks.sleep(limit.WINDOW * 1.5)  # nothing served, nothing waiting...
    limit.tick(busy=0, waiting=lambda: False)
    assert limit.limit == 1  # ...the next burst starts afresh
    one = fresh(threads=1)
    clocks.sleep(rise)
    one.tick(busy=1, waiting=lambda: True)
    assert one.limit == 1  # never more than the threads
    # The real clocks by default: this process's CPU time, all threads.
    assert Concurrency(threads=2)._cpu_clock is time.process_time


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ({}, []),
        ({"protocol": "scgi", "socket": "/run/x.sock"}, []),
        ("scgi", ["devcommands.E201"]),
        ({"protocl": "scgi"}, ["devcommands.E202"]),
        ({"method": "forking"}, ["devcommands.E203"]),
        ({"socket": "/x.sock", "port": 9000}, ["devcommands.E204"]),
        ({"debug": True}, ["devcommands.W201"]),
        ({"Socket": "/x.sock", "HOST": "::1"}, ["devcommands.E204"]),
        ({"debug": "t"}, ["devcommands.W201"]),
        ({"debug": "false"}, []),
    ],
)
def test_runfcgi_setting_checks(value, ids):
    with override_settings(DEVCOMMANDS={"RUNFCGI": value}):
        found = [m.id for m in checks.check_settings() if m.id.startswith("devcommands.")]
    assert found == ids
