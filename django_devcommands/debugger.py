"""Debugger hook: ``set_trace`` / ``post_mortem`` / ``pm`` and a ``breakpoint()`` hook.

Why this exists rather than ``import bpdb; bpdb.set_trace()``:

* it falls back (``DEVCOMMANDS['DEBUGGERS']``, default bpdb, ipdb, pudb, pdb) with
  one line instead of an ``ImportError`` in the middle of a request;
* its pdb (:class:`DevPdb`) opens any REPL on the current frame -- ``B`` bpython,
  ``I`` IPython, ``P`` ptpython, ``S`` the plain interpreter -- through
  :mod:`django_devcommands.shells`, so the REPL list and its fallbacks are the shell's;
* without a terminal (a daemonized server, stdin on /dev/null, CI) it never hangs
  and never lets bpython re-exec the process: it listens on loopback for a bounded
  time (``nc 127.0.0.1 PORT``) or skips with a warning;
* nothing opens when ``DEBUG`` is false unless ``DEVCOMMANDS['DEBUGGER_FORCE']``.

Everything reads settings at call time; messages go to the ``django_devcommands.debugger``
logger (warnings reach stderr even without logging configuration).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pdb
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import IO, Any, TextIO, cast

from django.core.exceptions import (
    BadRequest,
    ImproperlyConfigured,
    MiddlewareNotUsed,
    PermissionDenied,
    SuspiciousOperation,
)
from django.http import Http404, HttpRequest, HttpResponse

from django_devcommands import shells
from django_devcommands.conf import conf
from django_devcommands.net import is_loopback

logger = logging.getLogger("django_devcommands.debugger")

#: Python 3.13 (PEP 667) made ``frame.f_locals`` write-through for every frame.
WRITES_BACK_ANY_FRAME: bool = sys.version_info >= (3, 13)


@dataclass(frozen=True)
class Backend(shells.Installable):
    name: str
    #: Module whose import proves the debugger can start.
    module: str
    #: The pip extra of django-devcommands that installs it (None: always there).
    extra: str | None


BACKENDS: dict[str, Backend] = {
    "bpdb": Backend("bpdb", "bpython", "bpython"),
    "ipdb": Backend("ipdb", "ipdb", "debug"),
    "pudb": Backend("pudb", "pudb", "debug"),
    "pdb": Backend("pdb", "pdb", None),
}
FALLBACK = "pdb"

# Two threads cannot share one terminal: one debugger prompt at a time, the
# other threads that hit a breakpoint wait here (threads that do not are served).
_terminal_lock = threading.RLock()
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


# -- policy -------------------------------------------------------------------------


def debugging_allowed() -> bool:
    """True when a debugger may open: ``DEBUG`` is on or ``DEBUGGER_FORCE`` is set.

    Outside a configured Django project (a plain script using the hook) there is
    no deployment to protect, so it behaves like pdb.
    """
    from django.conf import settings

    try:
        return bool(settings.DEBUG) or _debug_before_tests() or conf.DEBUGGER_FORCE
    except ImproperlyConfigured:
        return True


def _debug_before_tests() -> bool:
    """``DEBUG`` as the project set it, while Django's test environment forces it off.

    ``setup_test_environment()`` (Django's runner, pytest-django) sets ``DEBUG = False``
    and keeps the project's value; a breakpoint in a test follows the project's.
    """
    from django.conf import UserSettingsHolder, settings

    test_utils = sys.modules.get("django.test.utils")
    state = getattr(getattr(test_utils, "_TestState", None), "saved_data", None)
    if state is None:
        return False
    # override_settings(DEBUG=...) inside a test is an explicit choice: it wins, however
    # many other overrides (DEVCOMMANDS=..., nested) sit on top of it.
    holder = getattr(settings, "_wrapped", None)
    while isinstance(holder, UserSettingsHolder):
        if "DEBUG" in vars(holder):
            return False
        holder = holder.default_settings
    return bool(getattr(state, "debug", False))


def has_terminal(stdin: Any = None, stdout: Any = None) -> bool:
    """Both streams (default ``sys.stdin``/``sys.stdout``) are terminals; closed/None are not."""
    streams = (sys.stdin if stdin is None else stdin, sys.stdout if stdout is None else stdout)
    try:
        return all(stream is not None and stream.isatty() for stream in streams)
    except (AttributeError, ValueError, OSError):
        return False


@dataclass
class Choice:
    backend: Backend
    #: One line for the log when the preferred debugger could not be used, else None.
    warning: str | None


def choose_debugger(
    order: list[str] | None = None,
    *,
    is_available: Callable[[Backend], bool] = Backend.available,
) -> Choice:
    """First available debugger of ``order`` (default ``DEVCOMMANDS['DEBUGGERS']``); pdb ends it."""
    names: list[str] = []
    for name in [*(conf.DEBUGGERS if order is None else order), FALLBACK]:
        if name in BACKENDS and name not in names:
            names.append(name)
    for name in names:
        backend = BACKENDS[name]
        if is_available(backend):
            warning = None
            if name != names[0]:
                first = BACKENDS[names[0]]
                hint = f" ({first.install_hint})" if first.install_hint else ""
                warning = f"{first.name} is not installed{hint}; using {name} instead."
            return Choice(backend, warning)
    raise AssertionError("pdb is always available")  # pragma: no cover


# -- the pdb with REPL commands -------------------------------------------------------


class DevPdbMixin:
    """``B``/``I``/``P``/``S``: a REPL on the current frame, falling back like ``shell``.

    Mixed into :class:`pdb.Pdb` (:class:`DevPdb`) and into IPython's debugger for ipdb.
    """

    curframe: FrameType | None
    curframe_locals: Any
    stdin: IO[str]
    stdout: IO[str]
    message: Callable[[str], None]
    error: Callable[[str], None]

    _stopped_frame: FrameType | None = None

    def interaction(self, frame: FrameType | None, tb: Any) -> None:
        self._stopped_frame = frame
        with _terminal_lock:
            super().interaction(frame, tb)  # type: ignore[misc]

    def _repl_on_terminal(self) -> bool:
        return self.stdin is sys.stdin and self.stdout is sys.stdout and has_terminal()

    def _open_repl(self, requested: str) -> None:
        frame = self.curframe
        if frame is None:
            self.error("No frame to open a REPL on.")
            return
        local_ns = self.curframe_locals
        before = dict(local_ns)
        namespace = {**frame.f_globals, **before}
        terminal = self._repl_on_terminal()
        shells.embed(
            requested,
            namespace,
            terminal=terminal,
            stderr=cast(TextIO, self.stdout),
            stdin=None if terminal else cast(TextIO, self.stdin),
            stdout=None if terminal else cast(TextIO, self.stdout),
        )
        changed = [n for n in before if n in namespace and namespace[n] is not before[n]]
        for name in changed:
            local_ns[name] = namespace[name]
        # Before 3.13 only the frame being traced takes changed locals back (as with
        # pdb's own "!x = 1"); bpdb's BPdb (adopted) has no _stopped_frame: its top frame.
        stack = getattr(self, "stack", None)
        stopped = getattr(self, "_stopped_frame", None) or (stack[-1][0] if stack else None)
        kept = WRITES_BACK_ANY_FRAME or frame is stopped
        if changed and not kept:
            self.message(
                f"*** Not kept: {', '.join(changed)} (before Python 3.13 only the frame "
                "where execution stopped takes changed locals)."
            )

    def do_B(self, arg: str) -> None:
        """B(python)
        Open bpython on the current frame (Ctrl-D returns here); falls back when missing."""
        self._open_repl("bpython")

    def do_I(self, arg: str) -> None:
        """I(Python)
        Open IPython on the current frame; falls back when missing."""
        self._open_repl("ipython")

    def do_P(self, arg: str) -> None:
        """P(tpython)
        Open ptpython on the current frame; falls back when missing."""
        self._open_repl("ptpython")

    def do_S(self, arg: str) -> None:
        """S(hell)
        Open the plain Python interpreter on the current frame (Ctrl-D returns here)."""
        self._open_repl("python")

    do_Bpython = do_B
    do_IPython = do_I
    do_Ptpython = do_P
    do_Shell = do_S


class DevPdb(DevPdbMixin, pdb.Pdb):
    """pdb plus ``B``/``I``/``P``/``S``.

    Also usable as ``pytest --pdbcls=django_devcommands.debugger:DevPdb``.
    """

    def __init__(self, *args: Any, prompt: str = "(Pdb) ", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prompt = prompt


class RemotePdb(DevPdb):
    """DevPdb over a connected socket; closing the connection detaches and continues."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        stream = conn.makefile("rw", encoding="utf-8", errors="replace", newline="\n")
        stream.reconfigure(line_buffering=True)
        self._stream = stream
        super().__init__(
            stdin=stream, stdout=stream, nosigint=True, readrc=False, prompt="(Pdb-remote) "
        )
        self.use_rawinput = False

    def interaction(self, frame: FrameType | None, tb: Any) -> None:
        try:
            super().interaction(frame, tb)
        except OSError as exc:  # the client went away mid-prompt
            logger.warning("Remote debugger connection lost (%s); continuing.", exc)
            self._detach()

    def do_EOF(self, arg: str) -> bool:
        """Closing the connection continues the program without breakpoints."""
        self._detach()
        return True

    def _detach(self) -> None:
        self.clear_all_breaks()
        self.set_continue()
        self.close()

    def set_continue(self) -> None:
        super().set_continue()
        if not self.breaks:
            self.close()

    def set_quit(self) -> None:
        super().set_quit()
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        for closer in (self._stream.close, self._conn.close):
            with contextlib.suppress(OSError):
                closer()


# -- local and remote sessions ---------------------------------------------------------

_class_cache: dict[type, type] = {}


def _local_debugger(backend: Backend) -> Any:
    """A debugger instance for ``backend`` on this process's terminal (pudb: its singleton)."""
    if backend.name == "bpdb":
        return DevPdb(prompt="(BPdb) ")
    if backend.name == "ipdb":
        from ipdb.__main__ import _get_debugger_cls, wrap_sys_excepthook

        wrap_sys_excepthook()
        base = _get_debugger_cls()
        if base not in _class_cache:
            _class_cache[base] = type("DevIpdb", (DevPdbMixin, base), {})
        return _class_cache[base]()
    if backend.name == "pudb":
        import pudb

        return pudb._get_debugger()
    return DevPdb()


def _chosen_local_debugger(order: list[str] | None = None) -> tuple[Backend, Any]:
    choice = choose_debugger(order)
    if choice.warning:
        _warn_once(choice.warning)
    return choice.backend, _local_debugger(choice.backend)


def accept_remote(
    host: str | None = None, port: int | None = None, timeout: float | None = None
) -> socket.socket | None:
    """Listen on ``host:port`` and return the first connection, or None after ``timeout``.

    Refuses a non-loopback host unless ``DEBUGGER_REMOTE_ALLOW_NON_LOOPBACK``. A
    configured port that is busy (another thread's session) is retried within the
    same timeout. Logs the ``nc``/``telnet`` line to connect with.
    """
    host = conf.DEBUGGER_REMOTE_HOST if host is None else host
    port = conf.DEBUGGER_REMOTE_PORT if port is None else port
    timeout = conf.DEBUGGER_REMOTE_TIMEOUT if timeout is None else timeout
    if not is_loopback(host) and not conf.DEBUGGER_REMOTE_ALLOW_NON_LOOPBACK:
        logger.error(
            "Remote debugger refused to listen on %s: not a loopback address "
            "(DEVCOMMANDS['DEBUGGER_REMOTE_ALLOW_NON_LOOPBACK'] allows it); continuing.",
            host,
        )
        return None
    deadline = time.monotonic() + timeout
    bare = host.strip().strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    while True:
        try:
            listener = socket.create_server((bare, port), family=family)
            break
        except OSError as exc:
            if port == 0 or time.monotonic() >= deadline:
                logger.error(
                    "Remote debugger could not listen on %s:%s (%s); continuing.", host, port, exc
                )
                return None
            time.sleep(0.2)
    with listener:
        bound = listener.getsockname()[1]
        shown = f"[{bare}]" if family == socket.AF_INET6 else bare
        logger.warning(
            "Remote debugger (thread %s) waiting %gs on %s:%d; connect with: "
            "nc %s %d  (or: telnet %s %d)",
            threading.current_thread().name,
            timeout,
            shown,
            bound,
            bare,
            bound,
            bare,
            bound,
        )
        listener.settimeout(max(0.0, deadline - time.monotonic()))
        try:
            conn, peer = listener.accept()
        except (TimeoutError, OSError):
            logger.warning(
                "No remote debugger connection within %gs on port %d; continuing.", timeout, bound
            )
            return None
    conn.settimeout(None)
    logger.warning("Remote debugger connected from %s:%s.", peer[0], peer[1])
    return conn


def _remote_debugger() -> RemotePdb | None:
    if not conf.DEBUGGER_REMOTE:
        _warn_once(
            "Debugger skipped: no terminal on stdin/stdout and "
            "DEVCOMMANDS['DEBUGGER_REMOTE'] is off."
        )
        return None
    conn = accept_remote()
    return RemotePdb(conn) if conn is not None else None


def _refused() -> bool:
    if debugging_allowed():
        return False
    _warn_once(
        "Debugger not opened: DEBUG is False "
        "(DEVCOMMANDS['DEBUGGER_FORCE'] opens it anyway, never do that in production)."
    )
    return True


# -- the public hooks ----------------------------------------------------------------


def set_trace(
    *args: Any, frame: FrameType | None = None, header: str | None = None, **kwargs: Any
) -> None:
    """Stop in the caller's frame with the preferred debugger; ``sys.breakpointhook``-ready.

    Accepts whatever ``breakpoint(*args, **kws)`` passes: ``header`` (as pdb's) is
    shown, other arguments are ignored.
    """
    frame = frame if frame is not None else sys._getframe(1)
    if _refused():
        return
    pytest_pdb = _pytest_pdb()
    if pytest_pdb is not None:
        # pytest captures stdin/stdout: its own hook suspends the capture first
        # (``--pdbcls=django_devcommands.debugger:DevPdb`` gives B/I/P/S there).
        debugger = pytest_pdb._init_pdb("set_trace", **({"header": header} if header else {}))
        debugger.set_trace(frame)
        return
    if has_terminal():
        backend, debugger = _chosen_local_debugger(kwargs.get("_order"))
        if header is not None and backend.name != "pudb":
            debugger.message(header)
        if backend.name == "pudb":
            debugger.set_trace(frame, paused=True)
        else:
            debugger.set_trace(frame)
        return
    remote = _remote_debugger()
    if remote is None:
        return
    if header is not None:
        remote.message(header)
    remote.set_trace(frame)


def _pytest_pdb() -> Any:
    """pytest's debugging plugin while pytest runs (it owns stdin/stdout then), else None.

    Its debugger suspends output capture first, as ``pytest``'s own ``breakpoint()``
    does; without a terminal it reads end-of-file and the test fails (never hangs).
    """
    module = sys.modules.get("_pytest.debugging")
    plugin = getattr(module, "pytestPDB", None)
    if plugin is None or getattr(plugin, "_config", None) is None:
        return None
    return plugin


#: ``sys.breakpointhook`` / ``PYTHONBREAKPOINT=django_devcommands.debugger.set_trace``.
breakpointhook = set_trace


def _traceback_of(
    tb: TracebackType | BaseException | None,
) -> tuple[TracebackType, BaseException | None]:
    if isinstance(tb, BaseException):
        if tb.__traceback__ is None:
            raise ValueError("The exception has no traceback.")
        return tb.__traceback__, tb
    if tb is None:
        exc = sys.exc_info()[1]
        if exc is None or exc.__traceback__ is None:
            raise ValueError("A valid traceback must be passed if no exception is being handled.")
        return exc.__traceback__, exc
    current = sys.exc_info()[1]
    return tb, current if current is not None and current.__traceback__ is tb else None


def post_mortem(tb: TracebackType | BaseException | None = None) -> None:
    """Debug a finished exception: a traceback, an exception, or the one being handled."""
    traceback, exc = _traceback_of(tb)
    if _refused():
        return
    if has_terminal():
        backend, debugger = _chosen_local_debugger()
        if backend.name == "pudb":
            import pudb

            value = exc if exc is not None else RuntimeError("post-mortem")
            pudb.post_mortem(traceback, type(value), value)
            return
        debugger.reset()
        debugger.interaction(None, traceback)
        return
    remote = _remote_debugger()
    if remote is None:
        return
    try:
        remote.reset()
        remote.interaction(None, traceback)
    finally:
        remote.close()


def pm() -> None:
    """Post-mortem of the last uncaught exception (``sys.last_traceback``)."""
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_traceback", None)
    if last is None:
        raise ValueError("No exception to debug: sys.last_traceback is not set.")
    post_mortem(last)


def install_breakpoint_hook() -> bool:
    """Make ``breakpoint()`` call :func:`set_trace`; False (and untouched) when refused.

    An explicit ``PYTHONBREAKPOINT`` wins: ``breakpoint()`` keeps honouring it.
    """
    if os.environ.get("PYTHONBREAKPOINT") or not debugging_allowed():
        return False
    sys.breakpointhook = set_trace
    return True


def adopt_bpdb() -> bool:
    """Route bpython's own ``bpdb.set_trace()``/``post_mortem()``/``pm()`` through this module.

    What it fixes for ``import bpdb; bpdb.set_trace()`` in a Django project: no
    terminal (daemonized servers, workers on /dev/null) opens the remote debugger
    instead of reading EOF and raising ``BdbQuit`` into the request; its ``B``
    command no longer lets bpython ``os.execv()`` a fresh interpreter over the
    server when stdin is not a terminal (it falls back to the plain console), and
    changed locals are written back; the ``DEBUG`` gate applies. bpdb stays first
    in the order. False when bpython is not installed or debugging is refused.
    """
    if not debugging_allowed():
        return False
    try:
        import bpdb
        from bpdb.debugger import BPdb
    except ImportError:
        return False
    if getattr(bpdb, "_devcommands_adopted", False):
        return True

    def bpdb_set_trace() -> None:
        set_trace(frame=sys._getframe(1), _order=["bpdb", *conf.DEBUGGERS])

    bpdb.set_trace = bpdb_set_trace
    bpdb.post_mortem = post_mortem
    bpdb.pm = pm
    for name in ("do_B", "do_Bpython", "_open_repl", "_repl_on_terminal"):
        setattr(BPdb, name, getattr(DevPdbMixin, name))
    bpdb._devcommands_adopted = True
    return True


# -- post-mortem on request errors ---------------------------------------------------

#: Exceptions Django turns into 4xx responses: not bugs, no debugger.
CLIENT_ERRORS: tuple[type[BaseException], ...] = (
    Http404,
    PermissionDenied,
    BadRequest,
    SuspiciousOperation,
)
_SEEN = "_devcommands_post_mortem_done"


def _post_mortem_once(exc: BaseException) -> None:
    # The middleware and the signal may both be on: one session per exception.
    if getattr(exc, _SEEN, False):
        return
    with contextlib.suppress(AttributeError):  # exceptions with __slots__
        setattr(exc, _SEEN, True)
    logger.warning("Post-mortem debugger for %s: %s", type(exc).__name__, exc)
    post_mortem(exc)


class PostMortemMiddleware:
    """Opens :func:`post_mortem` on an unhandled view exception; the 500 follows as usual.

    ``MiddlewareNotUsed`` when ``DEBUG`` is false (unless ``DEBUGGER_FORCE``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not debugging_allowed():
            raise MiddlewareNotUsed("PostMortemMiddleware is off: DEBUG is False.")
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if not isinstance(exception, CLIENT_ERRORS):
            _post_mortem_once(exception)
        return None


def _on_request_exception(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    exc = sys.exc_info()[1]
    if exc is not None and not isinstance(exc, CLIENT_ERRORS):
        _post_mortem_once(exc)


_DISPATCH_UID = "django_devcommands.debugger.post_mortem"


def enable_post_mortem() -> bool:
    """Post-mortem on every request exception that becomes a 500 (``got_request_exception``).

    For servers (``runcpserver pdb=1``) rather than settings. False, and nothing
    connected, when debugging is not allowed. Calling it twice connects once.
    """
    from django.core.signals import got_request_exception

    if not debugging_allowed():
        return False
    got_request_exception.connect(_on_request_exception, dispatch_uid=_DISPATCH_UID)
    return True


def disable_post_mortem() -> None:
    """Undo :func:`enable_post_mortem`."""
    from django.core.signals import got_request_exception

    got_request_exception.disconnect(dispatch_uid=_DISPATCH_UID)
