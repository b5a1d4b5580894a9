"""Process plumbing shared by the server commands: pidfiles, daemonizing,
dropping privileges, and the ``stop``/``status`` actions.

Nothing here knows about HTTP or FastCGI; :mod:`.supervisor` and the commands
call these functions. Errors are raised as :class:`ProcessError` with a message
meant for the user; the commands turn them into ``CommandError``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

#: Set in the environment of a re-executed single-process server (SIGHUP reload):
#: it is already daemonized and its pidfile already names it.
REEXEC_ENV = "DEVCOMMANDS_REEXEC"


class ProcessError(Exception):
    """A problem with pidfiles, daemonizing or privileges, worded for the user."""

    def __init__(self, message: str, returncode: int = 1) -> None:
        super().__init__(message)
        self.returncode = returncode


# -- liveness -------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process.

    ``kill(pid, 0)`` alone says yes for a zombie, which is what a daemon becomes
    when nothing reaps it (containers whose PID 1 is not an init), so the state in
    ``/proc`` is checked too.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill()
    state = stat.rpartition(")")[2].split()[0]
    return state not in {"Z", "X"}


# -- pidfiles -------------------------------------------------------------------------


def started_after(pid: int, path: str | os.PathLike[str]) -> bool:
    """Whether process ``pid`` started after the pidfile ``path`` was written.

    Then the pid has been reused by another process (after a reboot, or a server
    killed without cleaning up) and the pidfile is stale: signalling that process
    would hit an innocent one. False when it cannot be told (no ``/proc``).
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        written = Path(path).stat().st_mtime
        started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
    except (OSError, StopIteration, ValueError, IndexError):
        return False
    return started > written + 2.0  # btime has a resolution of one second


def _names_live_process(pid: int, path: str | os.PathLike[str]) -> bool:
    return pid_alive(pid) and not started_after(pid, path)


def read_pidfile(path: str | os.PathLike[str]) -> int | None:
    """The pid in ``path``, or ``None`` when the file is missing.

    A file that does not hold a number raises :class:`ProcessError`.
    """
    try:
        text = Path(path).read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ProcessError(f"Cannot read pidfile {path}: {exc.strerror}.") from None
    try:
        pid = int(text.split()[0]) if text else 0
    except ValueError:
        pid = 0
    if pid <= 0:
        raise ProcessError(f"Pidfile {path} does not hold a process id ({text[:40]!r}).")
    return pid


def check_pidfile(path: str | os.PathLike[str]) -> None:
    """Refuse to start when ``path`` names another live process (before binding anything)."""
    try:
        pid = read_pidfile(path)
    except ProcessError:
        return  # garbage: write_pidfile() will replace it
    if pid is not None and pid != os.getpid() and _names_live_process(pid, path):
        raise ProcessError(
            f"Pidfile {path} names a running process ({pid}): is the server already running? "
            f"Stop it first (runcpserver stop pidfile={path})."
        )


def write_pidfile(path: str | os.PathLike[str], pid: int | None = None) -> None:
    """Write ``pid`` (default: this process) to ``path`` atomically.

    The pid goes to a temporary file in the same directory which is then
    hard-linked into place, so two servers racing for one pidfile cannot both
    win, and a reader never sees a half-written file. A pidfile naming a live
    process is refused; a stale one (dead process, garbage) is replaced.
    """
    pid = os.getpid() if pid is None else pid
    target = Path(path).absolute()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProcessError(
            f"Cannot create the directory of pidfile {target}: {exc.strerror}."
        ) from None
    tmp = target.with_name(f".{target.name}.{pid}.tmp")
    try:
        tmp.write_text(f"{pid}\n")
        for _ in range(3):
            try:
                os.link(tmp, target)
                return
            except FileExistsError:
                try:
                    old = read_pidfile(target)
                except ProcessError:
                    old = None
                if old is not None and old != pid and _names_live_process(old, target):
                    raise ProcessError(
                        f"Pidfile {target} names a running process ({old}): "
                        "is the server already running?"
                    ) from None
                # Stale (or ours, after a re-exec): replace it atomically.
                os.replace(tmp, target)
                return
    except OSError as exc:
        raise ProcessError(f"Cannot write pidfile {target}: {exc.strerror}.") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def remove_pidfile(path: str | os.PathLike[str], pid: int | None = None) -> None:
    """Remove ``path`` if it still names ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    try:
        if read_pidfile(path) == pid:
            Path(path).unlink()
    except (OSError, ProcessError):
        pass


# -- daemonizing ----------------------------------------------------------------------


@dataclass
class Daemon:
    """Handle held by the daemonized process to report back to the one that started it."""

    _fd: int | None

    def ready(self, message: str = "") -> None:
        """Tell the waiting foreground process we are up (it prints ``message`` and exits 0)."""
        self._send("ok " + message)

    def failed(self, message: str) -> None:
        """Tell the waiting foreground process we could not start (it exits 1)."""
        self._send("error " + message)

    def _send(self, text: str) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.write(fd, text.encode("utf-8", "replace")[:4000])
        except OSError:
            pass
        finally:
            os.close(fd)


def daemonize(
    *,
    workdir: str | None = None,
    umask: int | None = 0o022,
    outlog: str | None = None,
    errlog: str | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    ready_timeout: float = 60.0,
) -> Daemon:
    """Detach from the terminal: double fork, ``setsid``, stdio to the log files.

    Only the grandchild returns (with a :class:`Daemon` handle). The original
    process waits until the grandchild calls ``ready()`` or ``failed()`` (or dies),
    writes the message to ``stdout`` and exits with 0 or 1, so a start-up error
    in the daemon still reaches the user's terminal and exit status.
    Log files are opened (and the working directory checked) before forking, so
    mistakes there are reported in the foreground too.
    """
    out_fd = _open_log(outlog)
    err_fd = _open_log(errlog) if errlog != outlog else out_fd
    if workdir is not None and not os.path.isdir(workdir):
        raise ProcessError(f"workdir {workdir} is not a directory.")
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child > 0:
        os.close(write_fd)
        _wait_for_daemon(read_fd, child, stdout or sys.stdout, stderr or sys.stderr, ready_timeout)
    os.close(read_fd)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    if workdir is not None:
        os.chdir(workdir)
    if umask is not None:
        os.umask(umask)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(out_fd if out_fd is not None else null, 1)
    os.dup2(err_fd if err_fd is not None else null, 2)
    for fd in {null, out_fd, err_fd} - {None, 0, 1, 2}:
        os.close(fd)  # type: ignore[arg-type]
    return Daemon(write_fd)


def _open_log(path: str | None) -> int | None:
    if not path:
        return None
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    except OSError as exc:
        raise ProcessError(f"Cannot open log file {path}: {exc.strerror}.") from None


def _wait_for_daemon(fd: int, child: int, stdout: TextIO, stderr: TextIO, timeout: float) -> None:
    import select

    deadline = time.monotonic() + timeout
    chunks = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.waitpid(child, 0)  # the intermediate child exits at once
    text = b"".join(chunks).decode("utf-8", "replace")
    status, _, message = text.partition(" ")
    if status == "ok":
        if message:
            stdout.write(message.rstrip("\n") + "\n")
        stdout.flush()
        os._exit(0)
    stderr.write(
        (message or "The daemon exited before it was ready; see its errlog.").rstrip("\n") + "\n"
    )
    stderr.flush()
    os._exit(1)


# -- privileges -----------------------------------------------------------------------


def drop_privileges(user: str | None, group: str | None) -> None:
    """Switch to ``user``/``group`` (names or numeric ids) when running as root.

    Called after the listening socket is bound (so ports below 1024 work) and
    the pidfile is written. Not root and asked for a different user: an error,
    rather than silently serving as the wrong user.
    """
    if not user and not group:
        return
    import grp
    import pwd

    try:
        pw = (
            pwd.getpwnam(user)
            if user and not user.isdigit()
            else (pwd.getpwuid(int(user)) if user else None)
        )
    except KeyError:
        raise ProcessError(f"server_user {user!r} does not exist.") from None
    try:
        gid = (
            grp.getgrnam(group).gr_gid
            if group and not group.isdigit()
            else int(group)
            if group
            else (pw.pw_gid if pw else None)
        )
    except KeyError:
        raise ProcessError(f"server_group {group!r} does not exist.") from None
    uid = pw.pw_uid if pw else None
    if os.geteuid() != 0:
        if (uid is None or uid == os.geteuid()) and (gid is None or gid == os.getegid()):
            return
        raise ProcessError(
            "server_user/server_group need the server to be started as root "
            f"(running as uid {os.geteuid()})."
        )
    if gid is not None:
        os.setgroups([gid] if pw is None else os.getgrouplist(pw.pw_name, gid))
        os.setgid(gid)
    if uid is not None:
        os.setuid(uid)
        os.environ["HOME"] = pw.pw_dir if pw else os.environ.get("HOME", "/")


# -- stop / status --------------------------------------------------------------------


def status(pidfile: str) -> str:
    """A one-line status for ``pidfile``; :class:`ProcessError` (exit 3) when not running."""
    pid = read_pidfile(pidfile)
    if pid is None:
        raise ProcessError(f"Not running: no pidfile at {pidfile}.", returncode=3)
    if not pid_alive(pid):
        raise ProcessError(
            f"Not running: pidfile {pidfile} is stale (process {pid} is gone).", returncode=3
        )
    if started_after(pid, pidfile):
        raise ProcessError(
            f"Not running: pidfile {pidfile} is stale (process {pid} started after it was "
            "written: another program reuses that pid).",
            returncode=3,
        )
    return f"Running: process {pid} (pidfile {pidfile})."


def stop(
    pidfile: str,
    *,
    timeout: float = 30.0,
    log: Callable[[str], object] | None = None,
) -> int:
    """Stop the server named by ``pidfile``: SIGTERM, wait up to ``timeout``, then SIGKILL.

    Returns the pid stopped. A missing pidfile or one naming a dead process is a
    :class:`ProcessError` with a clear message (a stale file is removed).
    """
    say = log or (lambda text: None)
    pid = read_pidfile(pidfile)
    if pid is None:
        raise ProcessError(f"No pidfile at {pidfile}: is the server running?")
    if not pid_alive(pid):
        with contextlib.suppress(OSError):
            Path(pidfile).unlink()
        raise ProcessError(
            f"Pidfile {pidfile} is stale: process {pid} is not running (pidfile removed)."
        )
    if started_after(pid, pidfile):
        with contextlib.suppress(OSError):
            Path(pidfile).unlink()
        raise ProcessError(
            f"Pidfile {pidfile} is stale: process {pid} started after it was written, so "
            "another program reuses that pid; not signalling it (pidfile removed)."
        )
    try:
        os.kill(pid, signal.SIGTERM)
    except PermissionError:
        raise ProcessError(
            f"Not allowed to signal process {pid} (started by another user?)."
        ) from None
    say(f"Sent SIGTERM to {pid}; waiting up to {timeout:g}s for it to finish its requests.")
    if not _wait_gone(pid, timeout):
        say(f"Process {pid} still running after {timeout:g}s: sending SIGKILL.")
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        if not _wait_gone(pid, 10.0):
            raise ProcessError(f"Process {pid} did not die after SIGKILL.")
    # A killed server could not remove its own pidfile.
    remove_pidfile(pidfile, pid)
    return pid


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)
