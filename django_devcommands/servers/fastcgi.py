"""The flup engine for :mod:`.supervisor`: SCGI, FastCGI and AJP, and ``runfcgi``'s option spec.

flup 1.0.3 speaks the three protocols well, but its own servers are not fit for
Python 3: its prefork pool never grows past ``maxSpare`` (a bytes/str
comparison), ignores SIGTERM until the next request arrives and crashes on the
SIGUSR1 purge; its threaded server closes a connection outright when no thread
is free (a 502 at the web server); its ``debug`` page imports ``cgitb``
(removed in Python 3.13); and it hands Django a still percent-encoded
``PATH_INFO`` under SCGI. So we use only flup's protocol classes (its
``Connection`` objects and WSGI ``handler``), and supply the rest:

* the listening socket, bound once by the supervisor and shared by every worker;
* an accept loop that takes a connection only when a thread is free to serve it
  (the rest wait in the kernel's backlog for this or another worker: none is
  refused);
* a thread pool with flup's ``minspare``/``maxspare``/``maxchildren`` meaning;
* :class:`RequestFixer`, the WSGI wrapper that rebuilds ``SCRIPT_NAME`` and
  ``PATH_INFO`` from ``REQUEST_URI`` the way runserver does;
* one-line handling of malformed input: a bad netstring or record closes that
  connection only.
"""

from __future__ import annotations

import collections
import contextlib
import html
import logging
import os
import select
import socket
import stat
import struct
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TextIO
from urllib.parse import unquote_to_bytes

from django_devcommands import options as o
from django_devcommands.servers import supervisor
from django_devcommands.servers.supervisor import PROCESS_OPTIONS

FLUP_MISSING = 'runfcgi needs flup: pip install "django-devcommands[fcgi]"'
PROTOCOLS = ("fcgi", "scgi", "ajp")
#: Largest SCGI header netstring or FastCGI parameter block we read (nginx sends a few KB).
MAX_HEADER_BYTES = 1 << 20
#: Threads per prefork worker unless given (runcpserver's default), capped by maxchildren.
DEFAULT_THREADS = 10
#: Seconds a web server connection may stay silent between requests/records.
IDLE_TIMEOUT = 60.0


def _process_option(name: str, **changes: Any) -> o.Option:
    (option,) = (opt for opt in PROCESS_OPTIONS if opt.name == name)
    return replace(option, **changes) if changes else option


SPEC = o.OptionSpec(
    [
        o.Option("protocol", o.choice(*PROTOCOLS), "fcgi", "Protocol spoken to the web server."),
        o.Option(
            "host",
            o.string,
            None,
            "Address to bind (IPv4 or IPv6).",
            default_text="127.0.0.1 when port is given",
        ),
        o.Option(
            "port",
            o.port,
            None,
            "TCP port (0: any free port, printed at start-up).",
            default_text="unset: the socket passed as fd 0",
        ),
        o.Option(
            "socket",
            o.path,
            None,
            "Unix socket path to bind instead of host and port (umask applies).",
        ),
        o.Option(
            "method",
            o.choice("prefork", "threaded", aliases={"fork": "prefork", "thread": "threaded"}),
            "prefork",
            "prefork: worker processes with threads each; threaded: one process.",
        ),
        _process_option(
            "workers",
            default=None,
            default_text="minspare (prefork), 1 (threaded)",
        ),
        o.Option(
            "threads",
            o.positive_int,
            None,
            "Request threads per worker process.",
            default_text="10 (prefork, at most maxchildren / workers); maxchildren (threaded)",
        ),
        o.Option(
            "maxchildren",
            o.positive_int,
            50,
            "Most requests served at once over all processes (old runfcgi; caps threads).",
        ),
        o.Option("maxspare", o.positive_int, 5, "Most idle threads a worker keeps."),
        o.Option(
            "minspare",
            o.positive_int,
            2,
            "Fewest idle threads a worker keeps; with prefork, the default number of workers.",
        ),
        o.Option(
            "maxrequests",
            o.non_negative_int,
            0,
            "Recycle a worker after this many requests (0: never). Implies a master process.",
        ),
        *(opt for opt in PROCESS_OPTIONS if opt.name not in {"workers", "max_requests"}),
        o.Option("backlog", o.positive_int, 2048, "Listen queue length of the socket."),
        o.Option(
            "script_name",
            o.string,
            None,
            "URL prefix the application is mounted under (SCRIPT_NAME), such as /app.",
        ),
        o.Option(
            "allowed_servers",
            o.string,
            None,
            "Comma-separated IP addresses allowed to connect (flup's allowedServers).",
            default_text="any; FastCGI: $FCGI_WEB_SERVER_ADDRS",
        ),
        o.Option(
            "debug",
            o.boolean,
            False,
            "Show a traceback page when an error escapes the application (never flup's cgitb).",
        ),
        o.Option(
            "listen",
            o.string,
            "80",
            "For 'runfcgi nginx': the nginx listen address of the printed server block.",
        ),
        o.Option(
            "server_name",
            o.string,
            "_",
            "For 'runfcgi nginx': the nginx server_name of the printed server block.",
        ),
    ],
    actions=["stop", "status", "nginx"],
)


def require_flup() -> None:
    """Raise ``ImportError`` with the install hint when flup is missing."""
    try:
        import flup.server.fcgi_base  # noqa: F401
    except ImportError:
        raise ImportError(FLUP_MISSING) from None


# -- the WSGI side --------------------------------------------------------------------


#: Set in a request's environ once the application returned a response whose body is
#: all there: the FastCGI engine then sends it with the end of the request.
WHOLE_RESPONSE = "devcommands.whole_response"


def whole_response(result: Any) -> bool:
    """Whether a WSGI response's body is all there: a list or tuple, or a Django
    response that does not stream."""
    inner = result.wrapped if isinstance(result, supervisor.Closing) else result
    return isinstance(inner, (list, tuple)) or getattr(inner, "streaming", None) is False


class RequestFixer:
    """Give the application the request runserver would give it.

    The web server's ``REQUEST_URI`` is the raw request target. WSGI wants
    ``PATH_INFO`` percent-decoded, as the latin-1 string of the raw bytes
    (PEP 3333; Django then decodes UTF-8). flup copies the still-encoded path
    under SCGI and AJP, and nginx's stock ``fastcgi_params`` send the whole path
    as ``SCRIPT_NAME``: both are rebuilt here, with ``script_name`` as the mount.
    """

    def __init__(self, app: Callable[..., Any], script_name: str | None = None) -> None:
        self.app = app
        self.script_name = (script_name or "").rstrip("/")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.fix(environ)
        result = self.app(environ, start_response)
        if whole_response(result):
            environ[WHOLE_RESPONSE] = True  # (flup's environ is its request's params)
        return result

    def fix(self, environ: dict[str, Any]) -> None:
        uri = environ.get("REQUEST_URI")
        if uri is not None:
            target, _, query = uri.partition("?")
            if not target.startswith("/") and "://" in target:  # absolute-form target
                slash = target.find("/", target.find("://") + 3)
                target = target[slash:] if slash >= 0 else "/"
            # The web server's strings are latin-1 decoded bytes: back to bytes, unquote.
            path = unquote_to_bytes(target.encode("latin-1")).decode("latin-1")
            if not environ.get("QUERY_STRING"):
                environ["QUERY_STRING"] = query
        else:
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        prefix = self.script_name
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            path = path[len(prefix) :]
        environ["SCRIPT_NAME"] = prefix
        environ["PATH_INFO"] = path
        if environ.get("REQUEST_SCHEME", "").lower() == "https" or str(
            environ.get("HTTPS", "")
        ).lower() in {"on", "1"}:
            environ["wsgi.url_scheme"] = "https"


def error_page(debug: bool, exc_info: Any) -> bytes:
    """Our 500 page for an error that escaped the application: a traceback only when ``debug``."""
    if debug:
        text = "".join(traceback.format_exception(*exc_info))
        body = (
            "<!DOCTYPE html><html><head><title>Unhandled exception</title></head><body>"
            "<h1>Unhandled exception</h1><p>runfcgi debug=true: the traceback follows.</p>"
            f"<pre>{html.escape(text)}</pre></body></html>\n"
        )
    else:
        body = (
            "<!DOCTYPE html><html><head><title>Server error</title></head><body>"
            "<h1>Server error</h1><p>The application failed to answer this request.</p>"
            "</body></html>\n"
        )
    return (
        b"Status: 500 Internal Server Error\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + body.encode("utf-8")
    )


# -- the thread pool ------------------------------------------------------------------


class ThreadPool:
    """At most ``max_threads`` threads, ``min_spare``..``max_spare`` of them idle.

    :meth:`free` says whether a job would start at once: the accept loop asks it
    before accepting, so a connection is never taken that no thread can serve.
    Idle threads beyond ``max_spare`` leave after ``retire_after`` idle seconds
    (not at once: a busy server would otherwise start a thread per request).
    """

    def __init__(
        self,
        max_threads: int,
        min_spare: int = 1,
        max_spare: int = 5,
        log: Callable[[str], None] | None = None,
        retire_after: float = 5.0,
    ) -> None:
        self.max_threads = max(1, max_threads)
        self.min_spare = max(1, min(min_spare, self.max_threads))
        self.max_spare = max(self.min_spare, max_spare)
        self.retire_after = retire_after
        self.log = log or (lambda text: None)
        self._lock = lock = threading.Lock()
        self._idle = supervisor.WarmWakeups(lock)  # idle threads wait here
        self._has_room = threading.Condition(lock)  # the accept loop and drain() wait here
        self._jobs: collections.deque[Any] = collections.deque()
        self.threads = 0
        self.idle = 0
        self.busy = 0
        self._stopping = False
        #: Set by the engine: a non-blocking accept giving the next job or None, and
        #: how many jobs may run at once (see :meth:`_follow`).
        self.take_next: Callable[[], Any] | None = None
        self.limit: Callable[[], int] = lambda: self.max_threads
        with lock:
            self._grow()

    def _start_thread(self) -> None:
        self.threads += 1
        self.idle += 1
        threading.Thread(target=self._work, name="fcgi-request", daemon=True).start()

    def _grow(self) -> None:
        """Start threads until ``min_spare`` are idle beyond the queued jobs (lock held)."""
        while self.idle - len(self._jobs) < self.min_spare and self.threads < self.max_threads:
            self._start_thread()

    def free(self, timeout: float, limit: int | None = None) -> bool:
        """Wait up to ``timeout`` for a thread to be free for one more job (and, with
        ``limit``, for fewer than ``limit`` jobs to be queued or running)."""
        with self._has_room:
            return (
                self._has_room.wait_for(
                    lambda: (
                        self._stopping
                        or (
                            (self.idle > len(self._jobs) or self.threads < self.max_threads)
                            and (limit is None or self.busy + len(self._jobs) < limit)
                        )
                    ),
                    timeout,
                )
                and not self._stopping
            )

    def submit(self, job: Any) -> None:
        with self._lock:
            self._jobs.append(job)
            if self.idle < len(self._jobs) and self.threads < self.max_threads:
                self._start_thread()
            self._grow()
            self._idle.wake_one()

    def _work(self) -> None:
        job = None
        while True:
            if job is None:
                with self._lock:
                    while not self._jobs and not self._stopping:
                        woken = self._idle.wait(self.retire_after)
                        if not woken and not self._jobs and self.idle > self.max_spare:
                            self.idle -= 1
                            self.threads -= 1
                            return
                    if not self._jobs:  # stopping
                        self.threads -= 1
                        self.idle -= 1
                        return
                    job = self._jobs.popleft()
                    self.idle -= 1
                    self.busy += 1
            try:
                job.run()
            except Exception:
                self.log("connection failed:\n" + traceback.format_exc().rstrip())
            job = self._follow()

    def _follow(self) -> Any:
        """After a job: the next connection, taken by this thread (busy stays), or
        None with this thread idle again and the accept loop told.

        Handing each connection from the accept loop to a pool thread costs two
        wake-ups per request, and between them neither thread serves: under a
        steady load the thread that just finished takes the next connection itself,
        as a one-thread server would, while the limit allows it and nothing is queued.
        """
        take = self.take_next
        job = None
        with self._has_room:
            follow = not self._stopping and not self._jobs and self.busy <= self.limit()
        if take is not None and follow:
            try:
                job = take()
            except Exception:
                self.log("accept failed:\n" + traceback.format_exc().rstrip())
        if job is None:
            with self._has_room:
                self.busy -= 1
                self.idle += 1
                self._has_room.notify_all()
        return job

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for queued and running jobs to finish, then stop the threads."""
        with self._has_room:
            done = self._has_room.wait_for(lambda: not self._jobs and self.busy == 0, timeout)
            self._stopping = True
            self._has_room.notify_all()
            self._idle.wake_all()
        return done


# -- flup's protocol classes, made robust ---------------------------------------------


def _peer(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return "unix socket"


def _close(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.close()


class _Replay:
    """A socket whose first ``recv`` calls return ``prefix`` again (bytes we already read)."""

    def __init__(self, sock: socket.socket, prefix: bytes = b"") -> None:
        self._sock = sock
        self._buffer = prefix

    def recv(self, size: int, *flags: int) -> bytes:
        if self._buffer:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
            return data
        return self._refill(size, flags)

    def _refill(self, size: int, flags: tuple[int, ...]) -> bytes:
        return self._sock.recv(size, *flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _BufferedReads(_Replay):
    """A socket whose small reads are served from one large ``recv``.

    flup reads a FastCGI record in two or three ``recv`` calls (header, content,
    padding) and a request is four records or more: each call is a system call that
    releases and re-takes the GIL, which other threads of the worker are waiting
    for. nginx sends a request's records together, so one ``recv`` usually gets them
    all. Only for FastCGI, where every read goes through ``recv`` (SCGI hands the
    raw socket to ``makefile`` for the body, so it must not read ahead).
    """

    @property
    def pending(self) -> int:
        return len(self._buffer)

    @property
    def buffered(self) -> bytes:
        return self._buffer

    def _refill(self, size: int, flags: tuple[int, ...]) -> bytes:
        if flags:
            return self._sock.recv(size, *flags)
        data = self._sock.recv(max(size, 65536))
        if len(data) > size:
            data, self._buffer = data[:size], data[size:]
        return data


def _only_input_end(data: bytes, request_id: int) -> bool:
    """Whether ``data`` is nothing but the rest of a request's input (FastCGI STDIN
    records), ending with the empty record that closes it."""
    from flup.server import fcgi_base as base

    position = 0
    while len(data) - position >= base.FCGI_HEADER_LEN:
        _, kind, rid, length, padding = struct.unpack_from(base.FCGI_Header, data, position)
        if kind != base.FCGI_STDIN or rid != request_id:
            return False
        position += base.FCGI_HEADER_LEN + length + padding
        if length == 0:
            return position == len(data)
    return False


def _scgi_length_prefix(sock: socket.socket, limit: int) -> bytes:
    """Read an SCGI request's netstring length (``123:``), refusing huge or endless ones.

    flup reads the digits one byte at a time with no limit and then asks ``recv``
    for that many bytes at once: a huge length would cost that much memory. The
    bytes read are returned, to be replayed to flup.
    """
    prefix = b""
    while not prefix.endswith(b":"):
        byte = sock.recv(1)
        if not byte:
            raise EOFError
        prefix += byte
        if len(prefix) > len(str(limit)) + 1:
            raise ValueError("netstring length too long")
    digits = prefix[:-1]
    if not digits.isdigit() or int(digits) > limit:
        raise ValueError(f"bad netstring length {digits[:20]!r}")
    return prefix


def _wait_readable(
    sock: Any, stopping: threading.Event, between_requests: Callable[[], bool]
) -> bool:
    """Wait for the web server's next bytes on a kept-alive connection.

    False when it stayed silent for ``IDLE_TIMEOUT``, or when the worker is
    stopping and the connection sits between two requests: a kept-alive
    connection (FastCGI ``fastcgi_keep_conn``, every AJP pool) must not hold a
    stopping worker for ``shutdown_timeout``.
    """
    if getattr(sock, "pending", 0):
        return True  # already read from the socket
    waited = 0.0
    while waited < IDLE_TIMEOUT:
        if stopping.is_set() and between_requests():
            return False
        readable, _, _ = select.select([sock], [], [], 0.5)
        if readable:
            return True
        waited += 0.5
    return False


def _flup_classes(
    protocol: str, log: Callable[[str], None], stopping: threading.Event
) -> tuple[type, type]:
    """(server class, connection class) for ``protocol``, subclassed for robustness."""
    if protocol == "scgi":
        from flup.server import scgi_base as base

        class SCGIConnection(base.Connection):
            def run(self) -> None:
                try:
                    sock: Any = self.__dict__["_sock"]  # set by flup's __init__
                    sock.settimeout(IDLE_TIMEOUT)
                    prefix = _scgi_length_prefix(sock, MAX_HEADER_BYTES)
                    self._sock = _Replay(sock, prefix)
                    self.processInput()
                except EOFError:
                    pass
                except Exception as exc:
                    log(
                        f"scgi: {_peer(self._addr)}: {type(exc).__name__}: {exc}: connection closed"
                    )
                finally:
                    _close(self._sock)

        class SCGIServer(base.BaseSCGIServer):
            def error(self, request: Any) -> None:
                request.stdout.write(error_page(self.debug, sys.exc_info()))

        return SCGIServer, SCGIConnection

    if protocol == "fcgi":
        from flup.server import fcgi_base as base

        class FCGIConnection(base.Connection):
            _params_bytes = 0
            _begun = False
            _input_done = False  # the last request's input all arrived (end_request)

            _out: list[bytes]
            _out_bytes = 0
            _handlers: dict[int, Callable[[Any], None]]

            def run(self) -> None:
                try:
                    sock: Any = self.__dict__["_sock"]  # set by flup's __init__
                    sock.settimeout(IDLE_TIMEOUT)
                    self._sock = _BufferedReads(sock)
                    self._out = []
                    self._handlers = {  # the record types of the FastCGI spec
                        base.FCGI_GET_VALUES: self._do_get_values,
                        base.FCGI_BEGIN_REQUEST: self._do_begin_request,
                        base.FCGI_ABORT_REQUEST: self._do_abort_request,
                        base.FCGI_PARAMS: self._do_params,
                        base.FCGI_STDIN: self._do_stdin,
                        base.FCGI_DATA: self._do_data,
                    }
                    super().run()
                except Exception as exc:
                    log(
                        f"fcgi: {_peer(self._addr)}: {type(exc).__name__}: {exc}: connection closed"
                    )
                finally:
                    _close(self._sock)

            def _between_requests(self) -> bool:
                return self._begun and not self._requests

            def process_input(self) -> None:
                if not _wait_readable(self._sock, stopping, self._between_requests):
                    raise EOFError  # silent too long, or stopping between requests
                # flup's own process_input() first waits in select() for the socket,
                # which never wakes for records already in our read buffer: read and
                # dispatch the record here.
                record = base.Record()
                record.read(self._sock)
                handler = self._handlers.get(record.type)
                if handler is not None:
                    handler(record)
                elif record.requestId == base.FCGI_NULL_REQUEST_ID:
                    self._do_unknown_type(record)  # a management record we do not know

            def _do_params(self, inrec: Any) -> None:
                self._params_bytes += inrec.contentLength
                if self._params_bytes > MAX_HEADER_BYTES:
                    raise ValueError("FastCGI parameters too large")
                super()._do_params(inrec)

            def _do_begin_request(self, inrec: Any) -> None:
                if inrec.contentLength != 8:
                    raise ValueError("bad FCGI_BEGIN_REQUEST body")
                self._params_bytes = 0
                self._begun = True  # served at least one request: may close between two
                super()._do_begin_request(inrec)

            def writeRecord(self, rec: Any) -> None:
                # flup sends each record in two or three send() calls, and a response
                # is four records or more. Here records wait in a list until the
                # response's data is flushed (the handler flushes after each chunk
                # the application yields) or the request ends, and go out in one send.
                rec.paddingLength = -rec.contentLength & 7
                self._out.append(
                    struct.pack(
                        base.FCGI_Header,
                        rec.version,
                        rec.type,
                        rec.requestId,
                        rec.contentLength,
                        rec.paddingLength,
                    )
                )
                if rec.contentLength:
                    self._out.append(rec.contentData)
                if rec.paddingLength:
                    self._out.append(bytes(rec.paddingLength))
                self._out_bytes += 8 + rec.contentLength + rec.paddingLength
                streams = (base.FCGI_STDOUT, base.FCGI_STDERR)
                if rec.type not in streams or self._out_bytes >= 65536:
                    self.flush_output()

            def flush_output(self) -> None:
                if self._out:
                    data = b"".join(self._out)
                    self._out.clear()
                    self._out_bytes = 0
                    self._sock.sendall(data)

            def end_request(self, req: Any, *args: Any, **kwargs: Any) -> None:
                # flup starts the application when the parameters end: the records
                # that end the input are usually still in our read buffer, unread.
                self._input_done = getattr(req.stdin, "_eof", False) or _only_input_end(
                    self._sock.buffered, req.requestId
                )
                super().end_request(req, *args, **kwargs)

            def _cleanupSocket(self) -> None:
                # Closing a socket with unread bytes resets the connection, which can
                # cost the web server the response just sent. So unless the request's
                # input was read to its end and nothing more came, wait (flup waits
                # without a time limit) for the web server to close first; when it
                # was, close now rather than wait one more wake-up of the web server.
                if self._sock.fileno() < 0:
                    return  # closed already (flup calls this again when its loop ends)
                if self._input_done and not select.select([self._sock], [], [], 0)[0]:
                    _close(self._sock)
                    return
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_WR)
                    self._sock.settimeout(2.0)
                    while self._sock.recv(4096):
                        pass
                _close(self._sock)

        class FlushingOutput(base.OutputStream):
            def flush(self) -> None:
                # flup's handler flushes after every chunk of the body (WSGI: no
                # chunk may wait for the next). A body that is all there goes out
                # with the end of the request instead, in the same send(): one
                # system call and one wake-up of the web server fewer per request.
                super().flush()
                if not self._req.params.get(WHOLE_RESPONSE):
                    self._conn.flush_output()

        class FCGIRequest(base.Request):
            def __init__(self, conn: Any, input_stream_class: Any, timeout: Any) -> None:
                super().__init__(conn, input_stream_class, timeout)
                self.stdout = FlushingOutput(conn, self, base.FCGI_STDOUT)

        class FCGIServer(base.BaseFCGIServer):
            request_class = FCGIRequest

            def error(self, req: Any) -> None:
                req.stdout.write(error_page(self.debug, sys.exc_info()))

        return FCGIServer, FCGIConnection

    from flup.server import ajp_base as base

    class AJPConnection(base.Connection):
        _served = False

        def _between_requests(self) -> bool:
            return self._served and self._request is None

        def run(self) -> None:
            try:
                while True:  # AJP connections are persistent
                    if not _wait_readable(self._sock, stopping, self._between_requests):
                        break
                    self.processInput()
                    self._served = self._served or self._request is None
            except EOFError:
                pass
            except Exception as exc:
                log(f"ajp: {_peer(self._addr)}: {type(exc).__name__}: {exc}: connection closed")
            finally:
                _close(self._sock)

    class AJPServer(base.BaseAJPServer):
        def error(self, request: Any) -> None:
            request.write(error_page(self.debug, sys.exc_info()).split(b"\r\n\r\n", 1)[1])

    return AJPServer, AJPConnection


# -- the engine -----------------------------------------------------------------------


def inherited_listener() -> socket.socket:
    """The listening socket a web server passed as fd 0 (FastCGI's spawned mode)."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        mode = 0
    if not stat.S_ISSOCK(mode):
        raise ValueError(
            "No host/port or socket given, and standard input is not a socket passed by a "
            "web server: give port=PORT (and host=) or socket=PATH."
        )
    sock = socket.socket(fileno=os.dup(0))
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise ValueError("Standard input is a socket, but not a listening one.")
    sock.set_inheritable(False)
    return sock


@dataclass
class FlupEngine:
    """flup's protocol code in a worker; see :class:`.supervisor.Engine` for the protocol."""

    protocol: str = "fcgi"
    host: str | None = "127.0.0.1"
    port: int | None = 8000
    unix_socket: str | None = None
    backlog: int = 2048
    threads: int = 10
    min_spare: int = 2
    max_spare: int = 5
    script_name: str | None = None
    allowed_servers: list[str] | None = None
    debug: bool = False
    umask: int | None = None
    #: Builds the WSGI application in the worker (default: Django's WSGI_APPLICATION).
    app_factory: Callable[[], Callable[..., Any]] | None = None
    stderr: TextIO | None = None
    #: Shown in log lines; ``flup-<protocol>`` unless given.
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"flup-{self.protocol}"
        self._stopping = threading.Event()
        self._pool: ThreadPool | None = None
        self._wake: tuple[int, int] | None = None

    @property
    def capacity(self) -> int:
        return self.threads

    @property
    def from_fd0(self) -> bool:
        return self.port is None and not self.unix_socket

    @property
    def owns_socket(self) -> bool:
        """False for the web server's socket (fd 0): never unlinked by the supervisor."""
        return not self.from_fd0

    # -- in the first process --

    def bind(self) -> socket.socket:
        if self.from_fd0 and not os.environ.get(supervisor.LISTEN_FD_ENV):
            return inherited_listener()
        old = os.umask(self.umask) if self.unix_socket and self.umask is not None else None
        try:
            return supervisor.listen_socket(
                self.host or "127.0.0.1", self.port or 0, self.unix_socket, self.backlog
            )
        finally:
            if old is not None:
                os.umask(old)

    # -- in a worker --

    def application(self) -> Callable[..., Any]:
        if self.app_factory is not None:
            app = self.app_factory()
        else:
            from django.core.servers.basehttp import get_internal_wsgi_application

            app = get_internal_wsgi_application()
        return app

    def _make_server(self, app: Callable[..., Any], log: Callable[[str], None]) -> tuple[Any, type]:
        server_class, connection_class = _flup_classes(self.protocol, log, self._stopping)
        kwargs: dict[str, Any] = {
            "environ": {},
            "multithreaded": True,
            "multiprocess": True,
            "bindAddress": ("127.0.0.1", 0),  # never bound: we feed our own socket
            "debug": self.debug,
        }
        if self.protocol == "scgi":
            kwargs.update(
                scriptName=None, allowedServers=self.allowed_servers, loggingLevel=logging.CRITICAL
            )
        elif self.protocol == "ajp":
            kwargs.update(
                scriptName="", allowedServers=self.allowed_servers, loggingLevel=logging.CRITICAL
            )
        server = server_class(RequestFixer(app, self.script_name), **kwargs)
        if self.protocol == "fcgi":
            server._connectionClass = connection_class
            addrs = self.allowed_servers
            if addrs is None and os.environ.get("FCGI_WEB_SERVER_ADDRS"):
                addrs = [a.strip() for a in os.environ["FCGI_WEB_SERVER_ADDRS"].split(",")]
            server._web_server_addrs = addrs
        return server, connection_class

    def _allowed(self, server: Any, addr: Any) -> bool:
        if not isinstance(addr, tuple) or len(addr) < 2:
            return True  # Unix socket: the file's permissions decide
        allowed = server._web_server_addrs if self.protocol == "fcgi" else server._allowedServers
        return allowed is None or addr[0] in allowed

    def serve(self, sock: socket.socket, worker: supervisor.Worker) -> None:
        app = worker.wrap_wsgi(self.application())
        server, connection_class = self._make_server(app, worker.log)
        pool = self._pool = ThreadPool(self.threads, self.min_spare, self.max_spare, worker.log)
        wake_r, wake_w = self._wake = os.pipe()
        os.set_blocking(wake_w, False)
        # Every worker wakes for a new connection and one wins: the others must
        # get EAGAIN from accept(), not block in it.
        sock.setblocking(False)
        if not self._stopping.is_set():
            worker.ready()
        concurrency = supervisor.Concurrency(self.threads)

        def accept() -> Any:
            """The next connection as a job for the pool, or None (none waiting,
            refused, or accept failed: the loop goes on)."""
            if self._stopping.is_set():
                return None
            try:
                client, addr = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return None
            except OSError as exc:  # EMFILE and friends: back off, keep serving
                worker.log(f"accept failed: {exc}")
                self._stopping.wait(0.1)
                return None
            client.setblocking(True)
            if not self._allowed(server, addr):
                worker.log(f"{self.protocol}: connection from {addr[0]} refused (allowed_servers)")
                _close(client)
                return None
            return connection_class(client, addr, server, None)

        pool.take_next = accept
        pool.limit = lambda: concurrency.limit
        listening = select.poll()
        listening.register(sock.fileno(), select.POLLIN)
        try:
            while not self._stopping.is_set():
                concurrency.tick(pool.busy, lambda: bool(listening.poll(0)))
                if not pool.free(concurrency.WINDOW, concurrency.limit):
                    continue
                try:
                    readable, _, _ = select.select([sock.fileno(), wake_r], [], [], 1.0)
                except InterruptedError:
                    continue
                if sock.fileno() not in readable:
                    continue
                job = accept()
                if job is not None:
                    pool.submit(job)
        finally:
            pool.drain(worker.shutdown_timeout)
            for fd in (wake_r, wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            _close(sock)  # this worker's descriptor only (the supervisor keeps its own)

    def stop(self, timeout: float) -> None:
        """Stop accepting; :meth:`serve` lets in-flight requests finish (up to ``timeout``)."""
        self._stopping.set()
        if self._wake is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake[1], b"x")


def parse_allowed(text: str | None) -> list[str] | None:
    """``"127.0.0.1, ::1"`` -> a list; ``"*"`` or unset -> ``None`` (anyone)."""
    if not text or text.strip() == "*":
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


# -- the launcher runfcgi calls -------------------------------------------------------

_PROCESS_NAMES = (
    "timeout",
    "shutdown_timeout",
    "max_requests_jitter",
    "daemonize",
    "pidfile",
    "workdir",
    "umask",
    "outlog",
    "errlog",
    "server_user",
    "server_group",
)
_PASS = {"fcgi": ("fastcgi_pass", "fastcgi_params"), "scgi": ("scgi_pass", "scgi_params")}


def resolve_values(resolved: o.Resolved) -> dict[str, Any]:
    """The command line over ``DEVCOMMANDS['RUNFCGI']``, checked for consistency."""
    from django_devcommands.conf import conf

    resolved = SPEC.with_project_defaults(
        resolved, conf.RUNFCGI, exclusive=(("socket",), ("host", "port"))
    )
    values = dict(resolved.values)
    given = resolved.given
    if values["socket"] and ({"host", "port"} & given):
        raise ValueError("Give socket= or host=/port=, not both.")
    if values["host"] and values["port"] is None and not values["socket"]:
        raise ValueError(f"host={values['host']} needs port=PORT too.")
    if values["port"] is not None and not values["host"]:
        values["host"] = "127.0.0.1"
    if values["method"] == "threaded":
        if values["workers"] not in (None, 1):
            raise ValueError(
                "method=threaded runs one process: drop workers=, or use method=prefork."
            )
        values["workers"] = 1
        values["threads"] = values["threads"] or values["maxchildren"]
    else:
        values["workers"] = values["workers"] or values["minspare"]
        # runcpserver's 10 threads, within maxchildren requests at once over all workers.
        share = max(1, -(-values["maxchildren"] // values["workers"]))
        values["threads"] = values["threads"] or min(DEFAULT_THREADS, share)
    if values["script_name"]:
        name = "/" + values["script_name"].strip("/")
        values["script_name"] = "" if name == "/" else name
    for name in ("pidfile", "outlog", "errlog", "socket", "workdir"):
        if values[name]:
            values[name] = os.path.abspath(values[name])
    return values


def nginx_server_block(values: dict[str, Any]) -> str:
    """An nginx ``upstream`` and ``server`` block that passes requests to this server."""
    from django.conf import settings

    protocol = values["protocol"]
    if protocol == "ajp":
        raise ValueError(
            "nginx does not speak AJP: use protocol=scgi or protocol=fcgi with nginx "
            "(AJP is for Apache's mod_proxy_ajp)."
        )
    if values["socket"]:
        target = f"unix:{values['socket']}"
    elif values["port"] is not None:
        host = values["host"]
        target = f"[{host}]:{values['port']}" if ":" in host else f"{host}:{values['port']}"
    else:
        raise ValueError("runfcgi nginx needs the address nginx connects to: port= or socket=.")
    directive, params = _PASS[protocol]
    params_path = os.path.join("/etc/nginx", params)
    include = params_path if os.path.exists(params_path) else params
    prefix = values["script_name"] or ""
    upstream = "django_" + "".join(c if c.isalnum() else "_" for c in target)
    lines = [
        f"# nginx config for: runfcgi protocol={protocol} "
        + (
            f"socket={values['socket']}"
            if values["socket"]
            else f"host={values['host']} port={values['port']}"
        )
        + (f" script_name={prefix}" if prefix else ""),
        "# Put it in nginx's http {} context (e.g. /etc/nginx/conf.d/);"
        " then: nginx -t && nginx -s reload",
        f"upstream {upstream} {{",
        f"    server {target};",
        "}",
        "",
        "server {",
        f"    listen {values['listen']};",
        f"    server_name {values['server_name']};",
        "    client_max_body_size 100m;",
    ]
    static_url = str(settings.STATIC_URL or "")
    if settings.STATIC_ROOT and static_url and "://" not in static_url:
        location = prefix + "/" + static_url.strip("/") + "/"
        lines += [
            "",
            f"    location {location} {{",
            f"        alias {str(settings.STATIC_ROOT).rstrip('/')}/;",
            "    }",
        ]
    lines += [
        "",
        f"    location {prefix or '/'} {{",
        f"        include {include};",
        f"        {directive} {upstream};",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _process_options(values: dict[str, Any]) -> supervisor.ProcessOptions:
    return supervisor.ProcessOptions(
        workers=values["workers"],
        max_requests=values["maxrequests"],
        **{name: values[name] for name in _PROCESS_NAMES},
    )


def launch(resolved: o.Resolved, *, stdout: TextIO, stderr: TextIO) -> int:
    """``runfcgi``: ``stop``/``status``/``nginx`` or serve; the exit status.

    Raises ``process.ProcessError``, ``ImportError`` (missing extra), ``ValueError``
    (inconsistent options) or ``OSError`` (cannot bind) with a message for the user.
    """
    values = resolve_values(resolved)
    action = resolved.actions[0] if resolved.actions else None
    if action == "nginx":
        stdout.write(nginx_server_block(values))
        return 0
    if action:
        return supervisor.run_action(
            action, _process_options(values), stdout=stdout, command="runfcgi"
        )

    require_flup()
    from django_devcommands.net import is_loopback

    if values["host"] and not is_loopback(values["host"]):
        stderr.write(
            f"Warning: runfcgi binds {values['host']}, reachable from other machines: anyone "
            "who can connect can send requests with any REMOTE_ADDR and HTTPS value. "
            "Set allowed_servers= to your web server's address.\n"
        )
    engine = FlupEngine(
        protocol=values["protocol"],
        host=values["host"],
        port=values["port"],
        unix_socket=values["socket"],
        backlog=values["backlog"],
        threads=values["threads"],
        min_spare=values["minspare"],
        max_spare=values["maxspare"],
        script_name=values["script_name"],
        allowed_servers=parse_allowed(values["allowed_servers"]),
        debug=values["debug"],
        umask=values["umask"],
        stderr=stderr,
    )
    proc = _process_options(values)

    def banner(sock: socket.socket) -> str:
        mode = (
            f"{values['method']}: {proc.workers} workers x {engine.threads} threads"
            if proc.uses_master
            else f"{values['method']}: 1 process x {engine.threads} threads"
        )
        where = supervisor.describe_address(sock, values["protocol"])
        return f"runfcgi: serving on {where} (flup {values['protocol']}, {mode}; pid {os.getpid()})"

    return supervisor.run(engine, proc, stdout=stdout, stderr=stderr, banner=banner)
