"""runfcgi's pure parts: the WSGI path fixer, option resolution, the system checks."""

from __future__ import annotations

import os
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


def test_thread_pool_thread_takes_the_next_connection_itself():
    # Under a steady load the thread that finished a job takes the next connection
    # itself (no hand-over through the accept loop) while the limit allows it.
    pool = fastcgi.ThreadPool(max_threads=4, min_spare=1, max_spare=4, retire_after=60)
    ran: list[tuple[str, int]] = []
    done = threading.Event()
    offered = [3]  # connections waiting in the "accept queue"

    class Job:
        def __init__(self, name: str) -> None:
            self.name = name

        def run(self) -> None:
            ran.append((self.name, threading.get_ident()))

    def take_next() -> Job | None:
        if offered[0] == 0:
            done.set()
            return None
        offered[0] -= 1
        return Job(f"taken{offered[0]}")

    pool.take_next = take_next
    pool.limit = lambda: 1
    assert pool.free(5, 1)
    pool.submit(Job("submitted"))
    assert done.wait(10)
    wait_until(lambda: pool.busy == 0, 10, message="the thread to go idle")
    assert [name for name, _ in ran] == ["submitted", "taken2", "taken1", "taken0"]
    assert len({thread for _, thread in ran}) == 1  # one thread served them all
    assert pool.free(0.5, 1)  # and the accept loop was told it is free again
    # Past the limit (as when it was halved below the requests running), a finished
    # thread takes none.
    offered[0] = 5
    pool.limit = lambda: 0
    ran.clear()
    pool.submit(Job("alone"))
    wait_until(lambda: pool.busy == 0 and ran, 10, message="the job to run")
    assert [name for name, _ in ran] == ["alone"] and offered[0] == 5
    # A failing accept is logged and the thread goes idle, not down.
    logged: list[str] = []
    pool.log = logged.append
    pool.limit = lambda: 1

    def broken() -> Job | None:
        raise OSError("accept exploded")

    pool.take_next = broken
    pool.submit(Job("before the failure"))
    wait_until(lambda: logged and pool.busy == 0, 10, message="the failure to be logged")
    assert "accept exploded" in logged[0]
    pool.take_next = None
    pool.submit(Job("after"))
    wait_until(lambda: ran[-1][0] == "after", 10, message="the pool to serve again")
    assert pool.drain(10)


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([(5, 1, b"")], True),  # the empty STDIN record that ends the input
        ([(5, 1, b"name=value"), (5, 1, b"")], True),  # the rest of a body, then the end
        ([(5, 2, b"")], False),  # another request's
        ([(4, 1, b"")], False),  # PARAMS, not STDIN
        ([(5, 1, b"abc")], False),  # more input, no end yet
        ([(5, 1, b""), (5, 1, b"")], False),  # bytes after the end
        ([], False),  # nothing buffered: the end may still be in the socket
    ],
)
def test_only_input_end_recognises_the_end_of_a_requests_input(
    records: list[tuple[int, int, bytes]], expected: bool
) -> None:
    import struct

    data = b"".join(
        struct.pack("!BBHHBx", 1, kind, rid, len(body), -len(body) & 7)
        + body
        + bytes(-len(body) & 7)
        for kind, rid, body in records
    )
    assert fastcgi._only_input_end(data, 1) is expected
    if data:
        assert fastcgi._only_input_end(data[:-1], 1) is False  # a record cut short


class _Clocks:
    """Wall and CPU time the test moves by hand: a busy core on a loaded CI machine
    need not get 90 % of a core in a real 0.15 s window."""

    def __init__(self) -> None:
        self.now = 0.0
        self.cpu = 0.0
        self.wait = 0.0  # ready to run, but the CPU was another process's

    def burn(self, seconds: float) -> None:  # a core kept busy
        self.now += seconds
        self.cpu += seconds

    def starve(self, seconds: float, share: float) -> None:  # runnable, ``share`` of a core
        self.now += seconds
        self.cpu += seconds * share
        self.wait += seconds * (1 - share)

    def sleep(self, seconds: float) -> None:  # waiting, no CPU
        self.now += seconds


def test_concurrency_limit_follows_the_cpu_the_process_gets():
    from django_devcommands.servers.supervisor import Concurrency, run_queue_wait

    clocks = _Clocks()

    def fresh(threads: int = 10) -> Concurrency:
        return Concurrency(
            threads=threads,
            clock=lambda: clocks.now,
            cpu_clock=lambda: clocks.cpu,
            wait_clock=lambda: clocks.wait,
        )

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
    for expected in (1, 2, 3):  # half a core, blocked the other half (no run-queue
        clocks.now += rise  # wait): one more per whole window
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
    # Runnable but given only part of a core (the web server and the other worker
    # share the machine): never more at once, whatever the CPU time alone says.
    limit = fresh()
    for _ in range(5):
        clocks.starve(limit.RISE_WINDOW * 1.5, share=0.2)
        limit.tick(busy=limit.limit, waiting=lambda: True)
        clocks.starve(limit.WINDOW * 1.5, share=0.6)
        limit.tick(busy=limit.limit, waiting=lambda: True)
    assert limit.limit == 1
    limit.limit = 4
    clocks.starve(limit.WINDOW * 1.5, share=0.6)
    limit.tick(busy=4, waiting=lambda: True)
    assert limit.limit == 2  # a whole core wanted, 60 % of it got: half as many
    # The real clocks by default: this process's CPU time (all threads), and its
    # threads' run-queue wait.
    assert Concurrency(threads=2)._cpu_clock is time.process_time
    assert Concurrency(threads=2)._wait_clock is run_queue_wait


def test_run_queue_wait_counts_time_ready_but_not_running(tmp_path):
    """Real scheduler statistics: a thread sharing one CPU with a busy process waits."""
    import subprocess
    import sys
    import textwrap

    if not os.path.exists("/proc/self/task"):
        pytest.skip("no /proc (Linux only)")
    script = textwrap.dedent(
        """
        import os, signal, sys, time
        from django_devcommands.servers.supervisor import run_queue_wait
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        def burn(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass
        before = run_queue_wait()
        burn(0.3)  # alone on the CPU (mostly)
        alone = run_queue_wait() - before
        hog = os.fork()
        if hog == 0:
            os.sched_setaffinity(0, {cpu})
            burn(5)
            os._exit(0)
        try:
            time.sleep(0.05)
            before = run_queue_wait()
            burn(0.6)  # sharing the CPU with the hog
            shared = run_queue_wait() - before
        finally:
            os.kill(hog, signal.SIGKILL)
            os.waitpid(hog, 0)
        print(alone, shared)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    alone, shared = map(float, done.stdout.split())
    if shared == 0.0 and alone == 0.0:
        pytest.skip("this kernel keeps no scheduler statistics")
    assert shared > 0.15, (alone, shared)  # about half of 0.6 s waiting for the hog
    assert alone < shared / 2, (alone, shared)


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
