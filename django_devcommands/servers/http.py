"""The cheroot engine for :mod:`.supervisor`, and ``runcpserver``'s option spec.

cheroot (CherryPy's WSGI server) runs inside each worker process on the
listening socket the supervisor bound once: a pool of ``threads`` threads per
worker, TLS through cheroot's builtin ``ssl`` adapter, and (optionally) static
files through Django's ``StaticFilesHandler`` (DEBUG) or WhiteNoise
(STATIC_ROOT), and an access log in the combined format.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlparse

from django_devcommands import options as o
from django_devcommands.servers import supervisor
from django_devcommands.servers.accesslog import AccessLog, open_access_log

CHEROOT_MISSING = 'runcpserver needs cheroot: pip install "django-devcommands[cherrypy]"'
WHITENOISE_MISSING = (
    "static=true with DEBUG off serves STATIC_ROOT with WhiteNoise: "
    'pip install "django-devcommands[cherrypy]"'
)

SPEC = o.OptionSpec(
    [
        o.Option("host", o.string, "127.0.0.1", "Address to bind (IPv4 or IPv6)."),
        o.Option("port", o.port, 8088, "TCP port (0: any free port, printed at start-up)."),
        o.Option("socket", o.path, None, "Unix socket path to bind instead of host and port."),
        o.Option("server_name", o.string, "localhost", "SERVER_NAME and the Server header."),
        o.Option("threads", o.positive_int, 10, "Request threads per worker process."),
        o.Option("backlog", o.positive_int, 2048, "Listen queue length of the socket."),
        *supervisor.PROCESS_OPTIONS,
        o.Option(
            "max_request_header_size",
            o.non_negative_int,
            65536,
            "Largest request line plus headers in bytes, else 413 (0: no limit).",
        ),
        o.Option(
            "max_request_body_size",
            o.non_negative_int,
            0,
            "Largest request body in bytes, else 413 (0: no limit).",
        ),
        o.Option("ssl_certificate", o.path, None, "PEM certificate: serve HTTPS."),
        o.Option("ssl_private_key", o.path, None, "PEM private key of ssl_certificate."),
        o.Option("ssl_certificate_chain", o.path, None, "PEM intermediate certificates."),
        o.Option(
            "autoreload",
            o.boolean,
            None,
            "Restart when Python code changes (Django's autoreloader).",
            default_text="on when DEBUG, workers=1, not daemonized, no pidfile",
        ),
        o.Option(
            "static",
            o.boolean,
            None,
            "Serve STATIC_URL: from the finders when DEBUG, else from STATIC_ROOT (WhiteNoise).",
            default_text="DEBUG",
        ),
        o.Option(
            "access_log", o.path, None, "Access log in combined format; '-' is standard output."
        ),
        o.Option(
            "pdb",
            o.boolean,
            False,
            "Open the post-mortem debugger on unhandled view exceptions; the 500 still goes "
            "out. Only when DEBUG (or DEVCOMMANDS['DEBUGGER_FORCE']); remote without a terminal.",
            aliases=("pm",),
        ),
    ],
    actions=["stop", "status"],
)


def require_cheroot() -> None:
    """Raise ``ImportError`` with the install hint when cheroot is missing."""
    try:
        import cheroot.wsgi  # noqa: F401
    except ImportError:
        raise ImportError(CHEROOT_MISSING) from None


@dataclass
class CherootEngine:
    """cheroot in a worker; see :class:`.supervisor.Engine` for the protocol."""

    host: str = "127.0.0.1"
    port: int = 8088
    unix_socket: str | None = None
    backlog: int = 2048
    threads: int = 10
    server_name: str | None = "localhost"
    max_request_header_size: int = 65536
    max_request_body_size: int = 0
    ssl_certificate: str | None = None
    ssl_private_key: str | None = None
    ssl_certificate_chain: str | None = None
    static: bool = False
    access_log: str | None = None
    stdout: TextIO | None = None
    #: Builds the WSGI application in the worker (default: Django's WSGI_APPLICATION).
    app_factory: Callable[[], Callable[..., Any]] | None = None
    name: str = "cheroot"

    def __post_init__(self) -> None:
        self._server: Any = None
        self._gate: _Gate | None = None
        self._stop_requested = threading.Event()

    @property
    def capacity(self) -> int:
        return self.threads

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_certificate else "http"

    # -- in the first process --

    def bind(self) -> socket.socket:
        return supervisor.listen_socket(self.host, self.port, self.unix_socket, self.backlog)

    def check(self) -> None:
        """Fail early (before binding) on what would make every worker fail."""
        require_cheroot()
        if bool(self.ssl_certificate) != bool(self.ssl_private_key):
            raise ValueError("ssl_certificate and ssl_private_key go together: give both.")
        for path in (self.ssl_certificate, self.ssl_private_key, self.ssl_certificate_chain):
            if path and not os.path.isfile(path):
                raise ValueError(f"TLS file {path} does not exist.")
        if self.access_log and self.access_log != "-":
            try:  # every worker opens it: say a bad path once, before binding
                with open(self.access_log, "a"):
                    pass
            except OSError as exc:
                raise ValueError(f"Cannot write access_log {self.access_log}: {exc}") from None
        if self.ssl_certificate:
            try:
                self._ssl_adapter()  # a bad certificate or key: said now, not by every worker
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise ValueError(
                    f"Cannot use ssl_certificate {self.ssl_certificate} with ssl_private_key "
                    f"{self.ssl_private_key}: {exc}"
                ) from None
        if self.static:
            from django.conf import settings

            if not settings.DEBUG:
                try:
                    import whitenoise  # noqa: F401
                except ImportError:
                    raise ImportError(WHITENOISE_MISSING) from None
                if not settings.STATIC_ROOT:
                    raise ValueError(
                        "static=true with DEBUG off needs STATIC_ROOT (and collectstatic)."
                    )

    # -- in a worker --

    def application(self) -> Callable[..., Any]:
        """The WSGI app with static files and the access log around it."""
        if self.app_factory is not None:
            app = self.app_factory()
        else:
            from django.core.servers.basehttp import get_internal_wsgi_application

            app = get_internal_wsgi_application()
        if self.static:
            app = static_files(app)
        if self.access_log:
            app = AccessLog(app, open_access_log(self.access_log, self.stdout or sys.stdout))
        return app

    def _ssl_adapter(self) -> Any:
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        return BuiltinSSLAdapter(
            self.ssl_certificate, self.ssl_private_key, self.ssl_certificate_chain
        )

    def serve(self, sock: socket.socket, worker: supervisor.Worker) -> None:
        from cheroot import server as server_module
        from cheroot import wsgi

        def dispatch(conn: Any) -> None:
            wsgi.Server.process_conn(server, conn)

        stopping = self._stop_requested

        def pull() -> None:
            # Called by a thread whose request ended with nothing held for it: it
            # accepts the next new connection itself, so a client that reconnects
            # for every request (gunicorn's sync worker makes them) costs no wake-up
            # of the selector thread. Not while stopping, nor when a peer should
            # take it (see Worker.may_accept).
            if stopping.is_set() or not server.ready or not _has_input(sock):
                return
            cheroot_server._connections.accept_more(1)

        gate = _Gate(self.threads, dispatch, pull)
        self._gate = gate

        class Server(wsgi.Server):
            """cheroot on a socket bound before forking (shared by every worker)."""

            def bind(self, family: int, type: int, proto: int = 0) -> socket.socket:
                self.socket = sock
                return sock

            def bind_unix_socket(self, bind_addr: Any) -> socket.socket:
                self.socket = sock
                return sock

            @property
            def can_add_keepalive_connection(self) -> bool:
                # cheroot counts its idle connections under the selector's lock after
                # every response: with ten threads sharing the GIL, that lock convoys
                # (13% of a busy worker's GIL time, py-spy). The worker's lock-free
                # count of its open connections bounds the idle ones.
                return bool(self.ready) and worker.connections <= self.keep_alive_conn_limit

            def process_conn(self, conn: Any) -> None:
                # cheroot hands a new connection straight to a thread, which then
                # waits (up to its 10 s socket timeout) for a request that may never
                # come: a few hundred silent connections would occupy every thread.
                # Park a new connection in the selector until it has something to
                # read, like an idle keep-alive one (expired after the same timeout).
                # (Not with TLS: the handshake already ran in cheroot's accept, and
                # data OpenSSL buffered meanwhile would not wake the selector.)
                # (Checked once per connection: cheroot's requests_seen only counts
                # with statistics on, and a poll per request gave the GIL away.)
                if conn.__dict__.pop("_new", False) and self.ssl_adapter is None:
                    had_input = conn.__dict__.pop("_had_input", None)
                    if not (_has_input(conn.socket) if had_input is None else had_input):
                        self._connections.put(conn)  # type: ignore[attr-defined]
                        return
                gate.admit(conn)

            def put_conn(self, conn: Any) -> None:
                gate.done(conn)  # its request is served: the next may start
                super().put_conn(conn)

        class Gateway(wsgi.Gateway_10):
            """Sends the status line and headers in one write with the first body chunk.

            cheroot writes them separately; a worker killed between the two leaves a
            proxy holding headers without a body, which it cannot retry elsewhere.
            """

            def write(self, chunk: bytes) -> None:
                if self.req.sent_headers or not chunk:
                    return super().write(chunk)
                conn = self.req.conn
                real, parts = conn.wfile, list[bytes]()
                conn.wfile = _Collect(parts)
                try:
                    super().write(chunk)
                finally:
                    conn.wfile = real
                real.write(b"".join(parts))
                return None

        class Connection(server_module.HTTPConnection):
            """Counted while open: the worker's load, for :meth:`~.Worker.may_accept`."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self._new = True  # not yet handed to a thread (see process_conn)
                self.no_request_yet = True  # (see CherootEngine.stop)
                self._counted = True
                worker.connection_opened()

            def communicate(self) -> Any:
                self.no_request_yet = False
                return super().communicate()

            def close(self) -> None:
                try:
                    super().close()
                finally:
                    gate.done(self)
                    if getattr(self, "_counted", False):
                        self._counted = False
                        worker.connection_closed()

        address = sock.getsockname()
        server = Server(
            address if isinstance(address, str) else address[:2],
            worker.wrap_wsgi(self.application()),
            numthreads=self.threads,
            server_name=self.server_name,
            request_queue_size=self.backlog,
            shutdown_timeout=worker.shutdown_timeout,  # type: ignore[arg-type]  # float is fine
        )
        # cheroot keeps at most 10 idle keep-alive connections and closes the rest
        # after their response; behind no proxy (or many clients) that means
        # reconnecting all the time. Idle connections cost a descriptor in the
        # selector, not a thread: allow up to half the descriptors we may open.
        server.keep_alive_conn_limit = keepalive_limit()
        server.gateway = Gateway
        server.ConnectionClass = Connection
        server.max_request_header_size = self.max_request_header_size
        server.max_request_body_size = self.max_request_body_size
        if self.ssl_certificate:
            server.ssl_adapter = self._ssl_adapter()
        _warm_thread_pool(server.requests)  # before prepare() starts the threads
        server.prepare()
        cheroot_server: Any = server  # the stubs leave out the connection manager
        unbalanced = cheroot_server._connections
        cheroot_server._connections = _balanced_manager(server, worker, gate)
        unbalanced._selector.close()
        # Every worker wakes up for each new connection and one wins: the others
        # must not wait in accept() (cheroot's 1 s timeout) with keep-alive
        # connections ready to be read.
        sock.settimeout(0)
        self._server = server
        if self._stop_requested.is_set():
            server.stop()
            gate.close()
            return
        worker.ready()
        try:
            server.serve()
        finally:
            gate.close()

    def stop(self, timeout: float) -> None:
        """Stop accepting; serve what was accepted; then let cheroot stop.

        cheroot's own ``stop()`` closes every connection in its selector, including
        ones accepted a moment ago whose request has not been read yet: under load
        those would fail. So first this worker leaves the shared socket to the
        others, and waits (briefly) until each connection it holds has had a request.
        An idle keep-alive connection (a browser's) has had one: it is not waited
        for (it held every stop for 5 s when this read cheroot's ``requests_seen``,
        which only counts with statistics on).
        """
        self._stop_requested.set()
        if self._gate is not None:
            self._gate.stop_gating()  # requests held back are served, not dropped
        server = self._server
        if server is None or not server.ready:
            return
        server.shutdown_timeout = timeout
        manager = server._connections
        with contextlib.suppress(KeyError, ValueError, OSError):
            manager._selector.unregister(server.socket.fileno())
        deadline = time.monotonic() + min(timeout, 5.0)
        while time.monotonic() < deadline:
            fresh = [
                conn
                for _, conn in list(manager._selector.connections)
                if conn is not server and getattr(conn, "no_request_yet", False)
            ]
            if not fresh:
                break
            time.sleep(0.02)
        server.stop()


class _Gate:
    """Connections with a request to serve wait here, in order of arrival, while the
    worker already serves as many requests as :class:`.supervisor.Concurrency` allows
    (all its threads while they wait on I/O, fewer while the process uses a whole
    core). Without it, ten threads share the GIL on CPU-bound pages: 3 % more CPU
    per request than four, and a p99 latency twice the p50."""

    def __init__(
        self,
        threads: int,
        dispatch: Callable[[Any], None],
        pull: Callable[[], None] | None = None,
    ) -> None:
        self.concurrency = supervisor.Concurrency(threads)
        self.window = self.concurrency.WINDOW
        self._dispatch = dispatch
        self._pull = pull
        self._lock = threading.Lock()
        self._held: collections.deque[Any] = collections.deque()
        self._gating = threads > 1
        self.in_service = 0
        # wait_for_room() sleeps in poll() on this pipe (and the listening socket);
        # release() writes a byte when the last held request starts.
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sleeping = False

    def waiting(self) -> bool:
        return bool(self._held)

    def admit(self, conn: Any) -> None:
        with self._lock:
            self.concurrency.tick(self.in_service, self.waiting)
            if self._gating and (self._held or self.in_service >= self.concurrency.limit):
                self._held.append(conn)
                return
            self.in_service += 1
            conn._in_service = True
        self._dispatch(conn)

    def done(self, conn: Any) -> None:
        """``conn``'s request is answered (kept alive or closed)."""
        with self._lock:
            if not getattr(conn, "_in_service", False):
                return
            conn._in_service = False
            self.in_service -= 1
        self.release()
        if self._pull is not None and not self._held and self.in_service < self.concurrency.limit:
            self._pull()  # nothing held: a new connection may be waiting

    def release(self) -> None:
        """Start the held requests the limit allows now."""
        ready = []
        with self._lock:
            self.concurrency.tick(self.in_service, self.waiting)
            while self._held and (not self._gating or self.in_service < self.concurrency.limit):
                conn = self._held.popleft()
                conn._in_service = True
                self.in_service += 1
                ready.append(conn)
            if ready and not self._held and self._sleeping:
                self._sleeping = False
                with contextlib.suppress(BlockingIOError):  # a byte is there already
                    os.write(self._wake_w, b"!")
        for conn in ready:
            self._dispatch(conn)

    def wait_for_room(self, timeout: float, listener: int | None = None) -> bool:
        """Keep the selector thread asleep while requests are held: until the last
        held request starts, a new connection waits on ``listener``, or ``timeout``.

        Keep-alive connections that become readable meanwhile could only join the
        held ones: they wait in the kernel instead, and the selector collects them
        all in one wake-up once the held ones have started. Waking for each, in the
        middle of another request, took the GIL from it: 3.8 context switches per
        request in the selector thread alone, against about 2 per request for a
        whole gunicorn sync worker. New connections still wake it (the caller passes
        ``listener`` at most every ``ACCEPT_EVERY`` seconds), so that a burst of them
        is accepted without waiting for a batch. True when ``listener`` woke it.
        """
        with self._lock:
            if not (self._held and self._gating):
                return False
            self._sleeping = True
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        if listener is not None:
            poller.register(listener, select.POLLIN)
        try:
            return any(fd == listener for fd, _ in poller.poll(timeout * 1000))
        finally:
            with self._lock:
                self._sleeping = False
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 64)

    def stop_gating(self) -> None:
        with self._lock:
            self._gating = False
        self.release()  # starts every held request, which wakes wait_for_room()

    def close(self) -> None:
        """Once the selector thread is done (threads finishing requests never write
        to the pipe then: nobody sleeps on it)."""
        with self._lock:
            self._sleeping = False
            os.close(self._wake_r)
            os.close(self._wake_w)


class _WarmQueue:
    """cheroot's request queue, handing each connection to the thread idle most
    recently (see :class:`.supervisor.WarmWakeups`); items still come out in order
    of arrival.

    A connection put by a pool thread (the gate starting a held request as this
    thread's own one ends) stays with that thread, which takes it on its next
    ``get()``: waking another thread for it while this one goes idle cost 3.6 % of a
    saturated worker's GIL time in ``Condition.notify`` alone (py-spy), plus a
    context switch per request.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: collections.deque[Any] = collections.deque()
        self._idle = supervisor.WarmWakeups(self._lock)
        self._own = threading.local()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        own = self._own
        if getattr(own, "pool", False) and own.next is None:
            own.next = item
            return
        with self._lock:
            self._items.append(item)
            self._idle.wake_one()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        own = self._own
        if getattr(own, "pool", False):
            item, own.next = own.next, None
            if item is not None:
                return item
        else:
            own.pool, own.next = True, None
        with self._lock:
            while not self._items:
                self._idle.wait()
            return self._items.popleft()

    def qsize(self) -> int:
        return len(self._items)


def _warm_thread_pool(pool: Any) -> None:
    """Give cheroot's thread pool a :class:`_WarmQueue` (if it still looks as expected)."""
    if hasattr(pool, "_queue") and hasattr(pool, "get") and not pool._queue.qsize():
        queue = _WarmQueue()
        pool._queue = queue
        pool.get = queue.get


#: Seconds a worker leaves a new connection to a less busy peer before looking again,
#: and the longest it keeps doing so before it accepts the connection itself.
DEFER_SECONDS = 0.002
#: Longer than ``ACCEPT_EVERY`` plus a wait for the GIL: a peer serving requests looks
#: at the listening socket that rarely (with 20 ms, a CI run once saw 38 of 60
#: connections on one of two workers, accepted past a peer that was only busy).
MAX_DEFER_SECONDS = 0.05
#: Most connections a worker accepts per wake-up of its selector.
ACCEPT_BATCH = 64
#: While requests are held, the selector thread wakes for new connections at most
#: this often (each wake takes the GIL from a request); threads finishing a
#: request accept the next connection themselves meanwhile.
ACCEPT_EVERY = 0.02


def _balanced_manager(server: Any, worker: supervisor.Worker, gate: _Gate) -> Any:
    """cheroot's connection manager, leaving new connections to less busy workers.

    When :meth:`~.Worker.may_accept` says a peer holds fewer connections, the
    listening socket leaves this worker's selector for ``DEFER_SECONDS`` (rather
    than being reported readable again at once), so the peer accepts. After
    ``MAX_DEFER_SECONDS`` of deferring, the worker accepts anyway: a peer that
    looked idle but does not accept costs a connection that much delay at most.
    """
    from cheroot import connections

    base: Any = connections.ConnectionManager  # the stubs leave out what is overridden

    class BalancedManager(base):
        def __init__(self, server: Any) -> None:
            super().__init__(server)
            inner: Any = self.__dict__["_selector"]
            self._selector = _PausableListener(inner, server.socket.fileno(), server, gate)
            self._deferring_since: float | None = None
            self._last_defer = 0.0

        def _from_server_socket(self, server_socket: socket.socket) -> Any:
            now = time.monotonic()
            if now - self._last_defer > 2 * DEFER_SECONDS + 0.01:
                self._deferring_since = None  # the last deferral was for another wave
            since = self._deferring_since
            if (since is None or now - since < MAX_DEFER_SECONDS) and not worker.may_accept():
                self._deferring_since = now if since is None else since
                self._last_defer = now
                self._selector.pause(DEFER_SECONDS)
                return None
            self._deferring_since = None
            conn = super()._from_server_socket(server_socket)
            if conn is not None:
                # More connections may be waiting (a burst of clients connecting):
                # take those this worker should have now, rather than one per
                # wake-up, where each could wait for a batch of held requests to start.
                self._hand_over([conn, *self._accept_waiting(ACCEPT_BATCH - 1)])
            return None  # handed to the server already

        def accept_more(self, most: int) -> None:
            """Accept up to ``most`` waiting connections, while this worker should take
            them (no deferring here), and hand them to the server."""
            self._hand_over(self._accept_waiting(most))

        def _accept_waiting(self, most: int) -> list[Any]:
            conns: list[Any] = []
            while len(conns) < most and worker.may_accept():
                conn = super()._from_server_socket(self.server.socket)
                if conn is None:
                    break
                conns.append(conn)
            return conns

        def _hand_over(self, conns: list[Any]) -> None:
            """Every system call first, then every hand-over to a thread.

            A system call releases the GIL; once a thread has been handed a request,
            it takes the GIL then, and this thread gets it back only when the switch
            interval (5 ms) forces the busy one to let go: accepting a burst one
            connection at a time, between hand-overs, cost up to 5 ms per connection.
            """
            if self.server.ssl_adapter is None:
                for conn in conns:
                    conn._had_input = _has_input(conn.socket)
            for conn in conns:
                self.server.process_conn(conn)

    return BalancedManager(server)


class _PausableListener:
    """cheroot's selector, with the listening socket taken out of it for a moment."""

    def __init__(self, selector: Any, fd: int, data: Any, gate: _Gate | None = None) -> None:
        self._selector = selector
        self._fd = fd
        self._data = data
        self._gate = gate
        self._lock = threading.Lock()
        self._resume_at: float | None = None
        self._closed = False
        self._listener_woke = 0.0

    def pause(self, seconds: float) -> None:
        with self._lock:
            if self._resume_at is None and not self._closed:
                self._selector.unregister(self._fd)
                self._resume_at = time.monotonic() + seconds

    def select(self, timeout: float | None = None) -> Any:
        gate = self._gate
        if gate is not None and gate.waiting():
            # Held requests: the limit may have to rise while nothing else happens.
            gate.release()
            now = time.monotonic()
            with self._lock:
                listening = self._resume_at is None and not self._closed
                wait = gate.window if self._resume_at is None else self._resume_at - now
            quiet = ACCEPT_EVERY - (now - self._listener_woke)
            if listening and quiet > 0:
                listening, wait = False, min(wait, quiet)
            if wait > 0 and gate.wait_for_room(
                min(wait, gate.window), self._fd if listening else None
            ):
                self._listener_woke = time.monotonic()
            if gate.waiting():
                timeout = 0  # collect what is ready, and back to sleep
        with self._lock:
            if self._resume_at is not None:
                left = self._resume_at - time.monotonic()
                if left <= 0:
                    self._selector.register(self._fd, selectors.EVENT_READ, data=self._data)
                    self._resume_at = None
                elif timeout is None or left < timeout:
                    timeout = left
        return self._selector.select(timeout)

    def unregister(self, fileobj: Any) -> Any:
        with self._lock:
            if fileobj == self._fd:
                # The engine stops accepting: never put the listening socket back.
                self._closed = True
                if self._resume_at is not None:
                    self._resume_at = None
                    return None
        return self._selector.unregister(fileobj)

    def __len__(self) -> int:
        # cheroot counts its connections as len(selector) - 1 (the listening socket).
        return len(self._selector) + (self._resume_at is not None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


def _has_input(sock: socket.socket) -> bool:
    """Whether a read on ``sock`` would not block (data, or the peer closed).

    ``poll`` rather than ``recv(MSG_DONTWAIT)``: a socket with a timeout would
    turn the latter into a wait of that timeout.
    """
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class _Collect:
    """Stands in for a connection's write file while a response's head is assembled."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))


def keepalive_limit() -> int:
    """Idle keep-alive connections one worker keeps: half its file descriptor limit."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10000
    return max(10, min(10000, soft // 2))


def static_files(app: Callable[..., Any]) -> Callable[..., Any]:
    """Static files in front of ``app``: the finders when DEBUG, STATIC_ROOT otherwise."""
    from django.conf import settings

    if settings.DEBUG:
        from django.contrib.staticfiles.handlers import StaticFilesHandler

        return StaticFilesHandler(app)
    from whitenoise import WhiteNoise

    return WhiteNoise(app, root=settings.STATIC_ROOT, prefix=urlparse(settings.STATIC_URL).path)


# -- the launcher runcpserver calls ---------------------------------------------------


def launch(resolved: o.Resolved, *, stdout: TextIO, stderr: TextIO) -> int:
    """``runcpserver``: ``stop``/``status`` or serve; the exit status.

    Raises ``process.ProcessError``, ``ImportError`` (missing extra), ``ValueError``
    (inconsistent options) or ``OSError`` (cannot bind) with a message for the user.
    """
    from django.conf import settings

    from django_devcommands.conf import conf
    from django_devcommands.net import is_loopback
    from django_devcommands.servers import process

    resolved = SPEC.with_project_defaults(
        resolved, conf.RUNCPSERVER, exclusive=(("socket",), ("host", "port"))
    )
    values = dict(resolved.values)

    if resolved.actions:
        return supervisor.run_action(
            resolved.actions[0],
            supervisor.ProcessOptions.from_values(values),
            stdout=stdout,
            command="runcpserver",
        )

    if values["socket"] and {"host", "port"} & resolved.given:
        raise ValueError("Give socket= or host=/port=, not both.")
    for name in ("pidfile", "outlog", "errlog", "access_log", "socket"):
        if values[name] and values[name] != "-":
            values[name] = os.path.abspath(values[name])
    autoreload = values["autoreload"]
    if autoreload is None:
        autoreload = (
            bool(settings.DEBUG)
            and values["workers"] == 1
            and not (values["daemonize"] or values["pidfile"] or values["max_requests"])
        )
    elif autoreload and (
        values["workers"] > 1 or values["daemonize"] or values["max_requests"] or values["pidfile"]
    ):
        raise ValueError(
            "autoreload works with one worker in the foreground: "
            "drop workers/max_requests/daemonize/pidfile, or set autoreload=false."
        )
    static = settings.DEBUG if values["static"] is None else values["static"]
    if settings.DEBUG and not values["socket"] and not is_loopback(values["host"]):
        stderr.write(
            f"Warning: DEBUG is on and the server binds {values['host']}, reachable from other "
            "machines: DEBUG pages show settings and source code.\n"
        )
    engine = CherootEngine(
        host=values["host"],
        port=values["port"],
        unix_socket=values["socket"],
        backlog=values["backlog"],
        threads=values["threads"],
        server_name=values["server_name"],
        max_request_header_size=values["max_request_header_size"],
        max_request_body_size=values["max_request_body_size"],
        ssl_certificate=values["ssl_certificate"],
        ssl_private_key=values["ssl_private_key"],
        ssl_certificate_chain=values["ssl_certificate_chain"],
        static=bool(static),
        access_log=values["access_log"],
        stdout=stdout,
    )
    engine.check()
    if values["pdb"]:
        from django_devcommands.debugger import enable_post_mortem

        # Connected before the workers fork, so every worker has it.
        if not enable_post_mortem():
            stderr.write(
                "Warning: pdb=true ignored: DEBUG is False "
                "(DEVCOMMANDS['DEBUGGER_FORCE'] opens debuggers anyway).\n"
            )
    proc = supervisor.ProcessOptions.from_values(values)

    def banner(sock: socket.socket) -> str:
        mode = f"{proc.workers} workers" if proc.uses_master else "1 process"
        return (
            f"runcpserver: serving on {supervisor.describe_address(sock, engine.scheme)} "
            f"(cheroot, {mode} x {engine.threads} threads; pid {os.getpid()})"
        )

    def serve() -> int:
        return supervisor.run(engine, proc, stdout=stdout, stderr=stderr, banner=banner)

    # Workers are forked from this process: none may inherit its database
    # connections (checks may have opened one).
    from django.db import connections

    connections.close_all()
    if autoreload:
        from django.utils import autoreload as django_autoreload

        def serve_in_reloader() -> None:
            # This runs in a thread of the reloader's child: an exception would only
            # end the thread and leave the reloader waiting. Say it and exit, as
            # runserver does when it cannot bind.
            try:
                code = serve()
            except (process.ProcessError, ImportError, ValueError, OSError) as exc:
                stderr.write(f"CommandError: {exc}\n")
                code = 1
            except BaseException:
                import traceback

                stderr.write(traceback.format_exc())
                code = 1
            stderr.flush()
            os._exit(code)

        django_autoreload.run_with_reloader(serve_in_reloader)
        return 0
    return serve()
