"""Interactive interpreters: detect, order, fall back, start.

The one rule that matters: an interface is skipped only when *importing it* fails.
Once a REPL has started, an ``ImportError`` from the user's startup file or from
code typed at the prompt belongs to the user and must surface; catching it around
the whole REPL (as Django's ``shell`` and the 2009 recipe this descends from do)
silently throws the session away and starts another shell.
"""

from __future__ import annotations

import builtins
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

Namespace = dict[str, Any]


class Installable:
    """Something an optional dependency provides: importable or not, and how to get it."""

    #: Module whose import proves it can start.
    module: str
    #: The pip extra of django-devcommands that installs it (None: always there).
    extra: str | None

    def available(self) -> bool:
        try:
            importlib.import_module(self.module)
        except ImportError:
            return False
        return True

    @property
    def install_hint(self) -> str:
        return f'pip install "django-devcommands[{self.extra}]"' if self.extra else ""


@dataclass(frozen=True)
class Interface(Installable):
    name: str
    label: str
    #: Module whose import proves the interface can start.
    module: str
    #: The pip extra of django-devcommands that installs it (None: always there).
    extra: str | None
    #: Full-screen REPLs need a terminal on both stdin and stdout.
    needs_tty: bool


INTERFACES: dict[str, Interface] = {
    "bpython": Interface("bpython", "bpython", "bpython.curtsies", "bpython", True),
    "ipython": Interface("ipython", "IPython", "IPython", "ipython", True),
    "ptpython": Interface("ptpython", "ptpython", "ptpython.repl", "ptpython", True),
    "python": Interface("python", "the plain Python shell", "code", None, False),
}
ALIASES = {"plain": "python"}
FALLBACK = "python"


def canonical_name(name: object) -> str | None:
    """Map a user's spelling (``plain``, ``IPython``) to an interface name, or None."""
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in INTERFACES else None


@dataclass
class Choice:
    interface: Interface
    #: One line for stderr when the user's choice could not be honoured, else None.
    warning: str | None


def choose(
    requested: str | None,
    configured: Sequence[str],
    *,
    terminal: bool,
    is_available: Callable[[Interface], bool] = Interface.available,
) -> Choice:
    """Pick the interface to start.

    ``requested`` is an explicit ``--bpython``/``-i`` choice: if it cannot start,
    the result carries a one-line warning naming the extra to install. The
    configured order (``DEVCOMMANDS['SHELL_INTERFACES']``) is tried silently after
    it, and the plain interpreter always ends the list, so this never fails.
    """
    order: list[str] = []
    for name in [requested, *configured, FALLBACK]:
        canonical = canonical_name(name) if name else None
        if canonical and canonical not in order:
            order.append(canonical)
    skipped: list[tuple[Interface, str]] = []
    for name in order:
        interface = INTERFACES[name]
        if interface.needs_tty and not terminal:
            skipped.append((interface, "needs a terminal on stdin and stdout"))
            continue
        if not is_available(interface):
            hint = f" ({interface.install_hint})" if interface.install_hint else ""
            skipped.append((interface, f"is not installed{hint}"))
            continue
        warning = None
        wanted = canonical_name(requested) if requested else None
        if wanted and wanted != name:
            first = next(reason for iface, reason in skipped if iface.name == wanted)
            warning = f"{INTERFACES[wanted].label} {first}; starting {interface.label} instead."
        return Choice(interface, warning)
    raise AssertionError("the plain interpreter is always available")  # pragma: no cover


def start(interface: Interface, namespace: Namespace, *, no_startup: bool, stderr: TextIO) -> None:
    """Start ``interface`` on ``namespace``; nothing here catches the user's errors."""
    STARTERS[interface.name](namespace, no_startup=no_startup, stderr=stderr)


def _start_bpython(namespace: Namespace, **_: Any) -> None:
    from bpython import embed

    # Only reached with a terminal on stdin and stdout: without one bpython's
    # argument parser os.execv()s a fresh interpreter, losing the project.
    embed(locals_=namespace)


def _start_ipython(namespace: Namespace, **_: Any) -> None:
    from IPython import start_ipython

    start_ipython(argv=[], user_ns=namespace)


def _start_ptpython(namespace: Namespace, **_: Any) -> None:
    from ptpython.repl import embed

    history = os.path.join(os.path.expanduser("~"), ".ptpython_history")
    embed(globals=namespace, locals=namespace, history_filename=history)


def _start_python(namespace: Namespace, *, no_startup: bool, stderr: TextIO, **_: Any) -> None:
    import code

    if not no_startup:
        run_startup_files(namespace, stderr=stderr)
    # Like CPython's own REPL: set up readline history and completion, and a
    # broken hook prints its traceback without stopping the shell.
    hook = getattr(sys, "__interactivehook__", None)
    if hook is not None:
        try:
            hook()
        except Exception:
            stderr.write("Failed calling sys.__interactivehook__\n")
            traceback.print_exc(file=stderr)
    try:
        import readline
        import rlcompleter
    except ImportError:  # pragma: no cover - platforms without readline
        pass
    else:
        # Completion over the auto-imports and whatever the startup files defined.
        readline.set_completer(rlcompleter.Completer(namespace).complete)
        readline.parse_and_bind("tab: complete")
    code.interact(local=namespace)


def startup_files() -> list[str]:
    """``$PYTHONSTARTUP`` then ``~/.pythonrc.py``, each once, those that exist."""
    found: list[str] = []
    for candidate in (os.environ.get("PYTHONSTARTUP"), os.path.expanduser("~/.pythonrc.py")):
        if candidate and os.path.isfile(candidate) and candidate not in found:
            found.append(candidate)
    return found


def run_startup_files(namespace: Namespace, *, stderr: TextIO) -> None:
    """Run the user's startup files; an error is printed and the shell still starts."""
    for filename in startup_files():
        with open(filename) as handle:
            source = handle.read()
        try:
            exec(compile(source, filename, "exec"), namespace)
        except Exception:
            traceback.print_exc(file=stderr)


def run_source(source: str, namespace: Namespace, filename: str = "<string>") -> None:
    """Execute ``-c`` code or piped stdin, as Django's shell does, and return."""
    namespace.setdefault("__builtins__", builtins)
    exec(compile(source, filename, "exec"), namespace)


def embed(
    requested: str,
    namespace: Namespace,
    *,
    terminal: bool,
    stderr: TextIO,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> Interface:
    """Start a REPL on a namespace taken from a running program (a debugger's frame).

    Unlike :func:`start`, it is called many times in one process, from any thread,
    and never runs startup files. ``requested`` falls back like ``shell --bpython``
    with a one-line message on ``stderr``. ``stdin``/``stdout`` (a remote debugger's
    socket) can only drive the plain interpreter, so pass ``terminal=False`` with them.
    Returns the interface that ran; the REPL's assignments are left in ``namespace``.
    """
    choice = choose(requested, [], terminal=terminal)
    if choice.warning:
        stderr.write(choice.warning + "\n")
    name = choice.interface.name
    if name == "python":
        _embed_python(namespace, stdin=stdin, stdout=stdout)
    else:
        EMBEDDERS.get(name, STARTERS[name])(namespace, no_startup=True, stderr=stderr)
    return choice.interface


def _embed_ipython(namespace: Namespace, **_: Any) -> None:
    # start_ipython() sets up a process-wide application meant to run once; a
    # debugger opens IPython again and again, which is what the embed shell is for.
    from IPython.terminal.embed import InteractiveShellEmbed

    try:  # IPython >= 9
        from IPython.core.interactiveshell import make_main_module_type

        module: Any = make_main_module_type(namespace)()
    except ImportError:  # IPython 8
        from IPython.core.interactiveshell import DummyMod  # type: ignore[attr-defined]

        module = DummyMod()
        module.__dict__ = namespace
    shell = InteractiveShellEmbed(banner1="", exit_msg="")
    # The module's dict *is* the namespace, so assignments come back to the caller.
    shell(local_ns=namespace, module=module, compile_flags=0)


class _LeaveConsole:
    """``exit``/``quit`` for an embedded console: end the console, not the program.

    Python's own (from ``site``, before 3.13) close ``sys.stdin`` and raise
    ``SystemExit`` through the debugger into the program.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Use {self.name}() or Ctrl-D to leave this console."

    def __call__(self, code: object = None) -> None:
        raise SystemExit(code)


def _embed_python(
    namespace: Namespace, *, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> None:
    import code
    import contextlib

    for name in ("exit", "quit"):
        namespace.setdefault(name, _LeaveConsole(name))
    if stdin is None or stdout is None:
        console = code.InteractiveConsole(locals=namespace)
        with contextlib.suppress(SystemExit):
            console.interact(banner="", exitmsg="")
        return
    out, source = stdout, stdin

    class StreamConsole(code.InteractiveConsole):
        def raw_input(self, prompt: str = "") -> str:
            out.write(prompt)
            out.flush()
            line = source.readline()
            if not line:
                raise EOFError
            return line.rstrip("\r\n")

        def write(self, data: str) -> None:
            out.write(data)
            out.flush()

    # Results and print() of the typed code go to the same stream as the prompt
    # (sys.stdout is process-wide: other threads' prints land there meanwhile).
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        StreamConsole(locals=namespace).interact(banner="", exitmsg="")


EMBEDDERS: dict[str, Callable[..., None]] = {
    "ipython": _embed_ipython,
}

STARTERS: dict[str, Callable[..., None]] = {
    "bpython": _start_bpython,
    "ipython": _start_ipython,
    "ptpython": _start_ptpython,
    "python": _start_python,
}
