"""The prefork supervisor shared by ``runcpserver`` (cheroot) and ``runfcgi`` (flup).

Signals, pidfiles, respawning, graceful and rolling reloads are written once,
here; the protocol engine (the thing that speaks HTTP, SCGI, FastCGI...) runs
inside each worker process and knows nothing about processes.

The engine protocol
-------------------

An engine is any object with:

``name: str``
    Shown in log lines ("cheroot", "flup-scgi").
``bind() -> socket.socket``
    Called ONCE, in the first process, before daemonizing, forking workers or
    dropping privileges (so ports below 1024 and bind errors reach the user's
    terminal). Returns a listening socket; :func:`listen_socket` does the usual
    TCP/Unix-socket work and is what an engine normally calls.
``serve(sock, worker) -> None``
    Called in each worker process; blocks until the engine is stopped. The
    engine must wrap its WSGI application with ``worker.wrap_wsgi(app)`` (request
    counting for ``max_requests``, in-flight tracking for the health check) and
    call ``worker.ready()`` once it accepts connections.
``stop(timeout: float) -> None``
    Called from ANOTHER thread of the same worker (never from a signal handler)
    when the worker must go: stop accepting, let in-flight requests finish for up
    to ``timeout`` seconds, then make ``serve()`` return. Must not shut down the
    shared socket (``shutdown()`` would stop every worker); closing this
    process's descriptor is fine.
``capacity: int`` (optional)
    Requests one worker can serve at once (its threads); a worker whose
    ``capacity`` requests all run longer than ``timeout`` reports itself unhealthy.

Process model
-------------

``workers=1`` (and no ``max_requests``) runs without a master: the one process
binds, serves and handles the signals itself; SIGHUP re-executes the process
with the listening socket inherited (new code, same socket, nothing refused).

``workers>1`` runs a master that forks N workers sharing one listening socket:

* SIGTERM / SIGINT: workers stop accepting, finish in-flight requests (up to
  ``shutdown_timeout``), the master removes the pidfile and exits 0.
* SIGHUP (and SIGUSR1, flup's "purge"): rolling reload. One new worker is forked, and
  once it is serving one old worker is stopped gracefully, and so on: capacity never
  drops and the socket is never closed. Workers are forked from the master, which has
  loaded Django's settings and models but not the WSGI application: views, URLconfs,
  middleware and templates are re-imported; settings and models need a restart.
* SIGTTIN / SIGTTOU: one worker more / fewer.
* A worker that dies is respawned; workers dying before they serve are
  respawned with an exponential backoff (0.1 s doubling up to 10 s).
* Each worker writes a heartbeat into shared memory; one silent for longer than
  ``timeout`` (frozen, stopped, or with every thread stuck in a request) is
  killed with SIGKILL and replaced.
* ``max_requests`` (+ a random ``0..max_requests_jitter``): a worker that served
  that many requests leaves gracefully and is replaced.
"""

from __future__ import annotations

import contextlib
import gc
import mmap
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from django_devcommands import options as o
from django_devcommands.servers import process

#: Environment variable carrying an inherited listening socket across a re-exec.
LISTEN_FD_ENV = "DEVCOMMANDS_LISTEN_FD"
#: Exit status of a worker that failed before serving (counted for backoff).
WORKER_BOOT_ERROR = 3
_SLOTS = 4096
#: Signals the master handles that a worker handles differently (see Master._spawn).
_WORKER_SIGNALS = {
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGTTIN,
    signal.SIGTTOU,
}


class Engine(Protocol):
    """See the module docstring."""

    name: str

    def bind(self) -> socket.socket: ...

    def serve(self, sock: socket.socket, worker: Worker) -> None: ...

    def stop(self, timeout: float) -> None: ...


# -- sockets --------------------------------------------------------------------------


#: Seconds the kernel holds a new connection back from ``accept`` until its first
#: bytes arrive (Linux ``TCP_DEFER_ACCEPT``).
DEFER_ACCEPT = 5


def listen_socket(
    host: str = "127.0.0.1",
    port: int = 8088,
    unix_path: str | None = None,
    backlog: int = 2048,
    *,
    nodelay: bool = True,
) -> socket.socket:
    """A bound, listening socket (TCP or Unix), or a socket inherited over a re-exec.

    Raises ``OSError`` with a readable message when the address cannot be bound.
    """
    inherited = os.environ.pop(LISTEN_FD_ENV, None)
    if inherited:
        sock = socket.socket(fileno=int(inherited))
        sock.set_inheritable(False)
        return sock
    if unix_path:
        with contextlib.suppress(FileNotFoundError):
            if _is_socket(unix_path):
                _unlink_stale_unix_socket(unix_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(unix_path)
        except OSError as exc:
            sock.close()
            raise OSError(f"Cannot bind {unix_path}: {exc.strerror}.") from None
    else:
        infos = socket.getaddrinfo(
            host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
        last: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if nodelay:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if hasattr(socket, "TCP_DEFER_ACCEPT"):
                    # Wake the workers for a connection once its request has come,
                    # not at the handshake: they then read it at once, rather than
                    # setting the connection aside and waiting for it a second time
                    # (as nginx's "listen ... deferred"). A client that stays
                    # silent is still accepted after a few seconds.
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_ACCEPT)
                sock.bind(address)
                break
            except OSError as exc:
                sock.close()
                last = exc
        else:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            reason = last.strerror if last else "no address"
            raise OSError(f"Cannot bind {where}: {reason}.")
    sock.listen(backlog)
    return sock


def _is_socket(path: str) -> bool:
    import stat

    return stat.S_ISSOCK(os.stat(path).st_mode)


def _unlink_stale_unix_socket(path: str) -> None:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listening: a leftover
    else:
        raise OSError(f"Cannot bind {path}: another server is listening there.")
    finally:
        probe.close()


_TCP_INFO = getattr(socket, "TCP_INFO", None)


def waiting_connections(sock: socket.socket) -> int:
    """How many connections wait in a TCP listening socket's accept queue (Linux
    reports it as ``tcpi_unacked`` for a listener); 0 when that is not known."""
    if _TCP_INFO is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return 0
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 32)
    except OSError:
        return 0
    return int(struct.unpack_from("I", info, 24)[0]) if len(info) >= 28 else 0


def describe_address(sock: socket.socket, scheme: str = "http") -> str:
    """``http://127.0.0.1:8088/`` (or ``unix:/path``) for the startup message."""
    name = sock.getsockname()
    if isinstance(name, (str, bytes)):
        return f"unix:{os.fsdecode(name)}"
    host, port = name[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}/"


# -- the worker side ------------------------------------------------------------------


class Heartbeat:
    """One slot per worker in anonymous shared memory, written by the worker and read by
    the master and the other workers: the time of its last beat, how many connections
    it holds, and whether it takes new ones (for :meth:`Worker.may_accept`)."""

    _SLOT = struct.Struct("dii")  # beat, open connections, accepting

    def __init__(self, slots: int = _SLOTS) -> None:
        size = self._SLOT.size
        # After the slots: how many slots were ever taken (workers forked earlier
        # read it to find workers forked later).
        self._map = mmap.mmap(-1, size * slots + 8)
        self._high = size * slots
        self._free = list(range(slots - 1, -1, -1))

    def take(self) -> int:
        slot = self._free.pop()
        self._SLOT.pack_into(self._map, slot * self._SLOT.size, 0.0, 0, 0)
        if slot >= self.slots_in_use():
            struct.pack_into("q", self._map, self._high, slot + 1)
        return slot

    def give_back(self, slot: int) -> None:
        self.set_load(slot, 0, accepting=False)
        self._free.append(slot)

    def slots_in_use(self) -> int:
        return struct.unpack_from("q", self._map, self._high)[0]

    def beat(self, slot: int) -> None:
        struct.pack_into("d", self._map, slot * self._SLOT.size, time.monotonic())

    def last(self, slot: int) -> float:
        return struct.unpack_from("d", self._map, slot * self._SLOT.size)[0]

    def set_load(self, slot: int, connections: int, *, accepting: bool) -> None:
        struct.pack_into("ii", self._map, slot * self._SLOT.size + 8, connections, accepting)

    def peers(self, exclude: int, fresh_since: float) -> tuple[int | None, int]:
        """The fewest connections any other accepting worker that beat after
        ``fresh_since`` holds (None when there is no such worker), and how many such
        workers there are."""
        least, count = None, 0
        for slot in range(self.slots_in_use()):
            if slot == exclude:
                continue
            beat, connections, accepting = self._SLOT.unpack_from(self._map, slot * self._SLOT.size)
            if accepting and beat > fresh_since:
                count += 1
                if least is None or connections < least:
                    least = connections
        return least, count


class WarmWakeups:
    """Threads waiting for work under one lock, woken the most recently idle first.

    A shared ``threading.Condition`` wakes the thread that has waited longest, so a
    worker serving one request at a time rotates it over all its threads, each with
    cold caches (measured behind nginx: ten threads served 318 req/s at one request
    at a time, one thread 377). Each waiting thread here has a condition of its own
    on the shared lock, and :meth:`wake_one` takes the last to arrive. Both engines'
    thread pools wait through this.
    """

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._sleepers: list[threading.Condition] = []
        self._own = threading.local()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait (with the lock held, like ``Condition.wait``); False on timeout."""
        mine = getattr(self._own, "condition", None)
        if mine is None:
            mine = self._own.condition = threading.Condition(self._lock)
        self._sleepers.append(mine)
        try:
            return mine.wait(timeout)
        finally:
            if mine in self._sleepers:  # not taken by wake_one(): timed out
                self._sleepers.remove(mine)

    def wake_one(self) -> None:
        """Wake the thread that went idle last (lock held)."""
        if self._sleepers:
            self._sleepers.pop().notify()

    def wake_all(self) -> None:
        for sleeper in self._sleepers:
            sleeper.notify()
        self._sleepers.clear()


def run_queue_wait() -> float:
    """Seconds this process's threads have spent ready to run but waiting for a CPU
    (Linux schedstat, summed over the threads alive now); 0.0 where it cannot be read."""
    total = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0.0
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/schedstat", "rb") as stats:
                total += int(stats.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended meanwhile, or no schedstat here
    return total / 1e9


class Concurrency:
    """How many requests one worker serves at once: up to its threads, fewer while
    the process already uses a whole core.

    Threads of one process share the GIL. Past the point where the process keeps a
    core busy, another request in progress adds no throughput, only GIL hand-offs
    (context switches with cold caches) and a longer, more random wait for every
    request. Measured on the example's page list (a CPU-bound view) behind nginx
    over FastCGI: 10 threads per worker served 10 % fewer requests per second than
    one, with a higher p99 latency.

    So an engine asks :meth:`tick` regularly and serves at most :attr:`limit`
    requests at once. While the process uses more than :attr:`SATURATED` of a core,
    the limit halves per :attr:`WINDOW` (down to one). While requests are waiting
    and every admitted one is running, it rises (up to the thread count): it doubles
    as soon as :attr:`RISE_WINDOW` shows the core :attr:`BLOCKED` (views waiting on a
    slow query, an upstream API, a sleep), so nothing waits long behind a blocked
    request; it rises by one per window while the core is only partly used. Time the
    threads were ready to run but another process had the CPU (a loaded machine)
    counts as used, for rising and for halving (see :meth:`tick`).

    A burst after an idle spell starts at :attr:`START`, not at every thread: the
    requests admitted at once cannot be taken back, and ten CPU-bound ones sharing
    the GIL made the first requests of a 50-connection burst on two workers end
    150 to 200 ms in, where one at a time ended them 104 to 121 ms in (server-side
    timestamps, three runs each). Requests that wait on I/O instead get every
    thread within four rise windows.
    """

    #: Seconds over which the process's CPU use is measured before the limit falls.
    WINDOW = 0.1
    #: The shorter measure after which requests waiting on a blocked core double it.
    RISE_WINDOW = 0.02
    #: The limit a fresh or idle worker starts a burst with (at most its threads).
    START = 1
    #: Fraction of one core above which the process counts as saturated, below
    #: which waiting requests raise the limit by one, and below which they double it.
    SATURATED = 0.9
    IDLE = 0.75
    BLOCKED = 0.25

    def __init__(
        self,
        threads: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
        wait_clock: Callable[[], float] | None = None,
    ) -> None:
        self.threads = max(1, threads)
        self.limit = min(self.START, self.threads)
        # Wall time; this process's CPU time (all threads); and the time its threads
        # were ready to run but waited for a CPU that other processes had.
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._wait_clock = run_queue_wait if wait_clock is None else wait_clock
        self._mark = (clock(), cpu_clock(), self._wait_clock())

    def tick(self, busy: int, waiting: Callable[[], bool]) -> None:
        """Move the limit when a window says so; ``busy`` requests are being served
        and ``waiting()`` says whether more are queued (called only when it matters).

        What the requests in progress want is the CPU they got plus the time they
        were ready but another process had the core: a worker sharing the machine
        with the web server (or with a load generator) gets less than a core even
        when its requests never wait on I/O, and more requests at once would only
        share the GIL. Measured behind nginx (FastCGI, two workers, two cores shared
        with nginx and wrk, c=50, Django's 404 page): counting CPU time alone, 10
        threads per worker served 2,900 requests/s with a p99 of 43 ms; counting the
        wait too, 3,700 and 19 ms, close to one thread per worker (3,770 and 18 ms).
        """
        now = self._clock()
        then, cpu_then, wait_then = self._mark
        elapsed = now - then
        if elapsed < self.RISE_WINDOW:
            return
        cpu = self._cpu_clock()
        used = (cpu - cpu_then) / elapsed
        wait: float | None = None

        def wanted() -> float:  # read only when it decides, and once (a file per thread)
            nonlocal wait
            if wait is None:
                wait = self._wait_clock()
            return used + max(0.0, wait - wait_then) / elapsed  # a thread may have ended

        wants_more = busy >= self.limit and self.limit < self.threads
        if wants_more and used < self.BLOCKED and waiting() and wanted() < self.BLOCKED:
            self.limit = min(self.threads, 2 * self.limit)
        elif elapsed < self.WINDOW:
            return  # keep measuring
        elif used < self.IDLE and busy == 0 and not waiting():
            # Idle: the next burst starts afresh, not with a limit a spike left (the
            # first request's lazy imports halved it to one).
            self.limit = min(self.START, self.threads)
        elif used < self.IDLE and wants_more and waiting() and wanted() < self.IDLE:
            self.limit += 1
        elif used > self.SATURATED or wanted() > self.SATURATED:
            # A whole core used, or wanted with part of it taken by other processes.
            self.limit = max(1, self.limit // 2)
        self._mark = (now, cpu, self._wait_clock() if wait is None else wait)


@dataclass
class Worker:
    """What a worker process runs: the engine, signal handling, health and recycling."""

    engine: Engine
    sock: socket.socket
    log: Callable[[str], None]
    shutdown_timeout: float = 30.0
    timeout: float = 30.0
    max_requests: int = 0
    heartbeat: Heartbeat | None = None
    slot: int = -1
    #: Single-process mode: SIGHUP asks for a re-exec rather than being the master's.
    standalone: bool = False
    reload_requested: bool = False
    requests: int = 0
    #: Connections this worker holds open (counted by the engine, for balancing).
    connections: int = 0
    _in_flight: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopper: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    # -- hooks for the engine --

    def ready(self) -> None:
        """The engine accepts connections: start beating.

        First, what the worker built to get here (Django, the URLconf it loaded,
        the engine) moves out of the garbage collector's sight (``gc.freeze``):
        a full collection walked all of it, a 26 ms pause per worker every few
        seconds on the example's page list, which every request then in flight
        (a fifth of a 50-connection load) waited out. With it, none longer than
        2 ms was seen in a 5 s run.
        """
        gc.collect()
        gc.freeze()
        self._ready.set()
        if self.heartbeat is not None:
            self.heartbeat.beat(self.slot)
            self._publish()

    def connection_opened(self) -> None:
        """The engine accepted a connection (see :meth:`may_accept`)."""
        with self._lock:
            self.connections += 1
            self._publish()

    def connection_closed(self) -> None:
        with self._lock:
            self.connections -= 1
            self._publish()

    def _publish(self) -> None:
        if self.heartbeat is not None:
            accepting = self._ready.is_set() and self._stopper is None
            self.heartbeat.set_load(self.slot, self.connections, accepting=accepting)

    def may_accept(self) -> bool:
        """Whether this worker should take the next connection now, or leave it to a peer.

        Workers share one listening socket and all wake up for a new connection;
        whichever accepts first keeps it, for as long as the client keeps it alive.
        Left alone, one worker can end up with most of the connections while its
        peers idle (seen with 46 of 50 wrk connections on one of two workers): so a
        worker holding more connections than the least busy live peer defers, and
        that peer takes it. The engine bounds how long it defers, so a peer that
        does not accept after all (busy, stuck) only delays a connection a little.

        Four and an eighth more than the peer is still even enough. Deferring on every
        difference made two busy workers take turns at one connection each, every
        turn a wait for the GIL of a thread mid-request: 200 wrk connections took
        0.9 s to be accepted, and their first requests made the whole run's p99.

        And while more connections wait to be accepted than the peers need to catch
        up, this worker takes its share of them at once: taking turns in steps of
        that slack still spread a 50-connection burst's accepts over 30 to 67 ms.
        """
        if self.heartbeat is None or self._stopper is not None:
            return True
        fresh = time.monotonic() - 3 * self._beat_interval()
        least, peers = self.heartbeat.peers(self.slot, fresh)
        if least is None or self.connections <= least + 4 + least // 8:
            return True
        return peers * (self.connections - least) < waiting_connections(self.sock)

    def wrap_wsgi(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """``app`` counted for ``max_requests`` and tracked for the health check."""
        worker = self

        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            key = id(environ)
            with worker._lock:
                worker._in_flight[key] = time.monotonic()
            try:
                result = app(environ, start_response)
            except BaseException:
                worker._finished(key)
                raise
            return Closing(result, lambda: worker._finished(key))

        return counted

    def _finished(self, key: int) -> None:
        with self._lock:
            if self._in_flight.pop(key, None) is None:
                return
            self.requests += 1
            recycle = 0 < self.max_requests <= self.requests
        if recycle and self._stopper is None:
            self.log(f"served {self.requests} requests (max_requests): recycling")
            self.shutdown()

    def healthy(self) -> bool:
        """False when every thread has been stuck in one request for longer than ``timeout``."""
        capacity = getattr(self.engine, "capacity", 0)
        if not capacity or self.timeout <= 0:
            return True
        limit = time.monotonic() - self.timeout
        with self._lock:
            stuck = sum(1 for started in self._in_flight.values() if started < limit)
        return stuck < capacity

    # -- lifecycle --

    def shutdown(self) -> None:
        """Stop gracefully (idempotent; safe from a signal handler: the work runs in a thread)."""
        if self._stopper is not None:
            return
        self._stopper = threading.Thread(
            target=self.engine.stop,
            args=(self.shutdown_timeout,),
            name="graceful-stop",
            daemon=True,
        )
        self._publish()  # peers stop leaving new connections to this worker
        self._stopper.start()

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        self.shutdown()

    def _on_hup(self, signum: int, frame: object) -> None:
        if self.standalone:
            self.reload_requested = True
            self.shutdown()

    def _beat_interval(self) -> float:
        return max(0.05, min(1.0, self.timeout / 4)) if self.timeout > 0 else 1.0

    def _beat_forever(self) -> None:
        assert self.heartbeat is not None
        interval = self._beat_interval()
        while True:
            time.sleep(interval)
            if self._ready.is_set() and self.healthy():
                self.heartbeat.beat(self.slot)

    def run(self) -> int:
        """Serve until stopped; the exit status for the process."""
        # Under Django's autoreloader we run in a thread: its main thread owns the
        # signals (SIGTERM exits, a code change restarts the process).
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_stop_signal)
            signal.signal(signal.SIGINT, self._on_stop_signal)
            signal.signal(signal.SIGHUP, self._on_hup)
            signal.signal(signal.SIGUSR1, self._on_hup)  # flup's purge: a reload here too
            for name in ("SIGTTIN", "SIGTTOU"):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        if self.heartbeat is not None:
            threading.Thread(target=self._beat_forever, name="heartbeat", daemon=True).start()
        # The engine gets its own descriptor to close when it stops; ours stays
        # open for a re-exec (single-process SIGHUP).
        engine_sock = self.sock.dup()  # non-blocking, as run() made the socket
        try:
            self.engine.serve(engine_sock, self)
        except Exception:
            self.log("engine failed:\n" + traceback.format_exc().rstrip())
            return 1 if self._ready.is_set() else WORKER_BOOT_ERROR
        if self._stopper is not None:
            self._stopper.join(self.shutdown_timeout + 5)
        return 0


class Closing:
    """A WSGI response iterable that calls ``done`` once, when closed (PEP 3333)."""

    def __init__(self, result: Iterable[bytes], done: Callable[[], None]) -> None:
        #: The application's own response, for engines that look at it (see
        #: :func:`.fastcgi.whole_response`).
        self.wrapped = result
        self._done = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.wrapped)

    def close(self) -> None:
        try:
            close = getattr(self.wrapped, "close", None)
            if close is not None:
                close()
        finally:
            self._done()


# -- the master -----------------------------------------------------------------------


@dataclass
class _Child:
    pid: int
    slot: int
    started: float
    generation: int
    stopping_since: float | None = None
    booted: bool = False


class Master:
    """Forks, watches and replaces workers; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        sock: socket.socket,
        *,
        workers: int,
        log: Callable[[str], None],
        timeout: float = 30.0,
        shutdown_timeout: float = 30.0,
        max_requests: int = 0,
        max_requests_jitter: int = 0,
    ) -> None:
        self.engine = engine
        self.sock = sock
        self.target = workers
        self.log = log
        self.timeout = timeout
        self.shutdown_timeout = shutdown_timeout
        self.max_requests = max_requests
        self.max_requests_jitter = max_requests_jitter
        self.children: dict[int, _Child] = {}
        self.generation = 0
        self.heartbeat = Heartbeat()
        self.failures = 0
        self.next_spawn = 0.0
        self.stopping = False
        self._signals: list[int] = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)

    # -- signals --

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)

    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in (*_WORKER_SIGNALS, signal.SIGCHLD):
            signal.signal(sig, self._on_signal)

    def _handle_signals(self) -> None:
        while self._signals:
            sig = self._signals.pop(0)
            if sig in (signal.SIGTERM, signal.SIGINT):
                if not self.stopping:
                    self.log(f"{signal.Signals(sig).name}: stopping workers gracefully")
                    self.stopping = True
                    self.stop_deadline = time.monotonic() + self.shutdown_timeout + 5
                    for child in self.children.values():
                        self._terminate(child)
            elif sig in (signal.SIGHUP, signal.SIGUSR1) and not self.stopping:
                # SIGUSR1 is flup's "purge the workers": the same rolling replacement.
                self.generation += 1
                self.log(f"{signal.Signals(sig).name}: rolling reload of {self.target} workers")
            elif sig == signal.SIGTTIN and not self.stopping:
                self.target += 1
                self.log(f"SIGTTIN: {self.target} workers")
            elif sig == signal.SIGTTOU and not self.stopping:
                self.target = max(1, self.target - 1)
                self.log(f"SIGTTOU: {self.target} workers")

    # -- children --

    def _spawn(self) -> None:
        slot = self.heartbeat.take()
        max_requests = self.max_requests
        if max_requests and self.max_requests_jitter:
            max_requests += random.randint(0, self.max_requests_jitter)
        sys.stdout.flush()
        sys.stderr.flush()
        # A signal for the new worker that arrived before Worker.run() installed its
        # handlers would run the master's handler in the child and be lost (a SIGTERM
        # then leaves the worker running until shutdown_timeout): block them across
        # the fork, reset the master's handlers in the child, then unblock.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        if pid == 0:  # the worker
            code = WORKER_BOOT_ERROR
            try:
                for sig in _WORKER_SIGNALS:
                    ignore = sig in (signal.SIGTTIN, signal.SIGTTOU)
                    signal.signal(sig, signal.SIG_IGN if ignore else signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                signal.set_wakeup_fd(-1)
                os.close(self._wake_r)
                os.close(self._wake_w)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                random.seed()
                code = Worker(
                    self.engine,
                    self.sock,
                    self.log,
                    shutdown_timeout=self.shutdown_timeout,
                    timeout=self.timeout,
                    max_requests=max_requests,
                    heartbeat=self.heartbeat,
                    slot=slot,
                ).run()
            except BaseException:
                with contextlib.suppress(Exception):
                    self.log("worker crashed:\n" + traceback.format_exc().rstrip())
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.children[pid] = _Child(pid, slot, time.monotonic(), self.generation)

    def _terminate(self, child: _Child, sig: int = signal.SIGTERM) -> None:
        if child.stopping_since is None or sig == signal.SIGKILL:
            child.stopping_since = child.stopping_since or time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, sig)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            booted = child.booted or self.heartbeat.last(child.slot) > 0
            self.heartbeat.give_back(child.slot)
            code = os.waitstatus_to_exitcode(status)
            if child.stopping_since is not None or self.stopping:
                continue
            if not booted and code != 0:
                self.failures += 1
                delay = min(10.0, 0.1 * 2 ** (self.failures - 1))
                self.next_spawn = time.monotonic() + delay
                self.log(f"worker {pid} failed to start (exit {code}); next start in {delay:.1f}s")
            elif code != 0:
                self.log(f"worker {pid} died (exit {code}); replacing it")
            else:
                self.log(f"worker {pid} exited; replacing it")

    def _check_health(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.stopping_since is not None:
                if now - child.stopping_since > self.shutdown_timeout + 5:
                    self.log(
                        f"worker {child.pid} still running {self.shutdown_timeout:g}s "
                        "after SIGTERM: killing it"
                    )
                    self._terminate(child, signal.SIGKILL)
                continue
            beat = self.heartbeat.last(child.slot)
            if beat and not child.booted:
                child.booted = True
                self.failures = 0
                self.log(f"worker {child.pid} serving")
            last = beat or child.started
            if self.timeout > 0 and now - last > self.timeout:
                self.log(
                    f"worker {child.pid} silent for {now - last:.0f}s (timeout "
                    f"{self.timeout:g}s): killing and replacing it"
                )
                self._terminate(child, signal.SIGKILL)

    def _manage(self) -> None:
        current = [
            c
            for c in self.children.values()
            if c.generation == self.generation and c.stopping_since is None
        ]
        old = [c for c in self.children.values() if c.generation != self.generation]
        # Too many current workers (SIGTTOU): stop the oldest.
        for child in sorted(current, key=lambda c: c.started)[: max(0, len(current) - self.target)]:
            self._terminate(child)
        current = [c for c in current if c.stopping_since is None]
        # Old workers leave as new ones are serving: never fewer than target serving.
        booted_new = sum(1 for c in current if c.booted)
        old_running = sorted((c for c in old if c.stopping_since is None), key=lambda c: c.started)
        allowed_old = max(0, self.target - booted_new)
        for child in old_running[: max(0, len(old_running) - allowed_old)]:
            self._terminate(child)
        # Spawn, at most one beyond target while old workers are still around.
        now = time.monotonic()
        while len(current) < self.target and now >= self.next_spawn:
            if len(current) + len(old) >= self.target + 1 and old:
                break
            self._spawn()
            current = [
                c
                for c in self.children.values()
                if c.generation == self.generation and c.stopping_since is None
            ]
            if self.failures:
                break  # one at a time while they keep failing

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; the exit status."""
        self._install_signals()
        try:
            self._manage()
            while True:
                with contextlib.suppress(InterruptedError):
                    select.select([self._wake_r], [], [], 0.2)
                with contextlib.suppress(OSError):
                    while os.read(self._wake_r, 4096):
                        pass
                self._handle_signals()
                self._reap()
                if self.stopping:
                    if not self.children:
                        return 0
                    if time.monotonic() > self.stop_deadline:
                        for child in self.children.values():
                            self._terminate(child, signal.SIGKILL)
                    continue
                self._check_health()
                self._manage()
        finally:
            signal.set_wakeup_fd(-1)
            for child in self.children.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)


# -- the launcher ---------------------------------------------------------------------


#: Options of every prefork server (runcpserver, runfcgi): processes, pidfile, privileges.
#: A command's OptionSpec includes them; :meth:`ProcessOptions.from_values` reads them back.
PROCESS_OPTIONS: list[o.Option] = [
    o.Option(
        "workers", o.workers, 1, "Worker processes sharing the socket; 1 runs without a master."
    ),
    o.Option(
        "timeout",
        o.seconds,
        30.0,
        "A worker silent this long (frozen, or all threads stuck) is replaced (0: never).",
    ),
    o.Option(
        "shutdown_timeout",
        o.seconds,
        30.0,
        "On SIGTERM/SIGINT/reload, how long in-flight requests may take to finish.",
    ),
    o.Option(
        "max_requests",
        o.non_negative_int,
        0,
        "Recycle a worker after this many requests (0: never). Implies a master process.",
    ),
    o.Option(
        "max_requests_jitter",
        o.non_negative_int,
        0,
        "Add a random 0..N to max_requests per worker, so they do not all recycle at once.",
    ),
    o.Option("daemonize", o.boolean, False, "Detach from the terminal (double fork, setsid)."),
    o.Option("pidfile", o.path, None, "Write the server's process id here (atomically)."),
    o.Option("workdir", o.path, None, "Change to this directory after starting."),
    o.Option(
        "umask", o.octal, None, "File mode mask (022 when daemonized).", default_text="unchanged"
    ),
    o.Option("outlog", o.path, None, "Daemon standard output (default: discarded)."),
    o.Option("errlog", o.path, None, "Daemon standard error (default: discarded)."),
    o.Option(
        "server_user", o.string, None, "Switch to this user after binding (when started as root)."
    ),
    o.Option(
        "server_group", o.string, None, "Switch to this group after binding (when started as root)."
    ),
]


@dataclass
class ProcessOptions:
    """Everything about processes that runcpserver and runfcgi share."""

    workers: int = 1
    timeout: float = 30.0
    shutdown_timeout: float = 30.0
    max_requests: int = 0
    max_requests_jitter: int = 0
    daemonize: bool = False
    pidfile: str | None = None
    workdir: str | None = None
    umask: int | None = None
    outlog: str | None = None
    errlog: str | None = None
    server_user: str | None = None
    server_group: str | None = None

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> ProcessOptions:
        """The process options out of a command's resolved option values."""
        return cls(**{option.name: values[option.name] for option in PROCESS_OPTIONS})

    @property
    def uses_master(self) -> bool:
        """One worker without recycling needs no master (a developer's dev server)."""
        return self.workers > 1 or self.max_requests > 0


def run(
    engine: Engine,
    options: ProcessOptions,
    *,
    stdout: TextIO,
    stderr: TextIO,
    banner: Callable[[socket.socket], str],
) -> int:
    """Bind, (daemonize,) write the pidfile, drop privileges, then serve.

    ``banner(sock)`` is the first line printed (it names the address, which is
    how tests and scripts learn an ephemeral port). Returns the exit status;
    raises :class:`process.ProcessError` or ``OSError`` for start-up problems.
    """
    reexec = os.environ.pop(process.REEXEC_ENV, None) == "1"
    argv = _restart_argv()
    if options.pidfile and not reexec:
        process.check_pidfile(options.pidfile)
    if options.workdir and not os.path.isdir(options.workdir):
        raise process.ProcessError(f"workdir {options.workdir} is not a directory.")
    if options.umask is not None and not options.daemonize:
        os.umask(options.umask)
    sock = engine.bind()
    # Every worker shares this socket's open file description, and with it the
    # O_NONBLOCK flag: a blocking socket object anywhere (socket.dup() copies the
    # original's mode) would clear it under the workers that rely on it, whose next
    # accept() with no connection waiting would then block with requests held.
    sock.setblocking(False)
    try:
        daemon = None
        if options.daemonize and not reexec:
            daemon = process.daemonize(
                workdir=options.workdir,
                umask=options.umask if options.umask is not None else 0o022,
                outlog=options.outlog,
                errlog=options.errlog,
                stdout=stdout,
                stderr=stderr,
            )
        elif options.workdir:
            os.chdir(options.workdir)
        if options.pidfile:
            options.pidfile = os.path.abspath(options.pidfile) if not reexec else options.pidfile
        try:
            if options.pidfile:
                process.write_pidfile(options.pidfile)
            process.drop_privileges(options.server_user, options.server_group)
        except process.ProcessError as exc:
            if daemon is not None:
                daemon.failed(str(exc))
                os._exit(1)
            raise
        log = _logger(stderr)
        text = banner(sock)
        if daemon is not None:
            daemon.ready(f"{text} (daemon pid {os.getpid()})")
        elif not reexec:
            stdout.write(text + "\n")
            stdout.flush()
        else:
            log(f"re-executed: {text}")
        try:
            if options.uses_master:
                return Master(
                    engine,
                    sock,
                    workers=options.workers,
                    log=log,
                    timeout=options.timeout,
                    shutdown_timeout=options.shutdown_timeout,
                    max_requests=options.max_requests,
                    max_requests_jitter=options.max_requests_jitter,
                ).run()
            worker = Worker(
                engine,
                sock,
                log,
                shutdown_timeout=options.shutdown_timeout,
                timeout=options.timeout,
                standalone=True,
            )
            code = worker.run()
            if worker.reload_requested and code == 0:
                _reexec(sock, argv, log)
            return code
        finally:
            if options.pidfile:
                process.remove_pidfile(options.pidfile)
    finally:
        name = sock.getsockname()
        sock.close()
        owned = getattr(engine, "owns_socket", True)  # False: inherited from a web server
        if owned and isinstance(name, str) and name and not os.environ.get(LISTEN_FD_ENV):
            with contextlib.suppress(OSError):
                os.unlink(name)  # our Unix socket (kept across a single-process re-exec)


def run_action(action: str, options: ProcessOptions, *, stdout: TextIO, command: str) -> int:
    """``stop`` or ``status`` of the server named by ``options.pidfile``; the exit status."""
    if not options.pidfile:
        raise ValueError(f"{command} {action} needs pidfile=PATH.")
    if action == "status":
        stdout.write(process.status(options.pidfile) + "\n")
        return 0
    pid = process.stop(
        options.pidfile,
        timeout=options.shutdown_timeout + 5,
        log=lambda text: stdout.write(text + "\n"),
    )
    stdout.write(f"Stopped process {pid}.\n")
    return 0


def _restart_argv() -> list[str]:
    """This process's command line with the script made absolute (workdir may change)."""
    args = list(getattr(sys, "orig_argv", sys.argv))[1:]
    script = sys.argv[0] if sys.argv else ""
    return [
        sys.executable,
        *(os.path.abspath(a) if a == script and os.path.exists(a) else a for a in args),
    ]


def _reexec(sock: socket.socket, argv: list[str], log: Callable[[str], None]) -> None:
    """SIGHUP in single-process mode: the same command line, new code, the same socket."""
    log("SIGHUP: re-executing with the same listening socket")
    sys.stdout.flush()
    sys.stderr.flush()
    sock.set_inheritable(True)
    os.environ[LISTEN_FD_ENV] = str(sock.fileno())
    os.environ[process.REEXEC_ENV] = "1"
    os.execv(argv[0], argv)


def _logger(stream: TextIO) -> Callable[[str], None]:
    lock = threading.Lock()

    def log(message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with lock, contextlib.suppress(Exception):
            stream.write(f"[{stamp}] [{os.getpid()}] {message}\n")
            stream.flush()

    return log
