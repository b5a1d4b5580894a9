"""servers/process.py with real processes: pidfiles, daemonizing, privileges, stop/status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from django_devcommands.servers import process
from tests.server_fixtures import wait_until


@pytest.fixture
def sleeper():
    """A live process that is not ours to be (a stand-in for another server)."""
    procs = []

    def start(ignore_term: bool = False) -> subprocess.Popen:
        code = "import signal, time\n"
        if ignore_term:
            code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        code += "print('ready', flush=True)\ntime.sleep(60)\n"
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    return proc.pid


def test_write_pidfile_creates_and_removes(tmp_path: Path) -> None:
    pidfile = tmp_path / "run" / "server.pid"
    process.write_pidfile(pidfile)
    assert pidfile.read_text() == f"{os.getpid()}\n"
    assert not [p for p in pidfile.parent.iterdir() if p.name != "server.pid"]  # no temp left
    process.remove_pidfile(pidfile, pid=os.getpid() + 1)  # not ours: kept
    assert pidfile.exists()
    process.remove_pidfile(pidfile)
    assert not pidfile.exists()


def test_pidfile_naming_a_live_process_is_refused(tmp_path: Path, sleeper) -> None:
    other = sleeper()
    pidfile = tmp_path / "server.pid"
    pidfile.write_text(f"{other.pid}\n")
    with pytest.raises(process.ProcessError, match=rf"names a running process \({other.pid}\)"):
        process.check_pidfile(pidfile)
    with pytest.raises(process.ProcessError, match="already running"):
        process.write_pidfile(pidfile)
    assert pidfile.read_text() == f"{other.pid}\n"


@pytest.mark.parametrize("content", ["DEAD", "garbage\n", ""])
def test_stale_or_garbage_pidfile_is_replaced(tmp_path: Path, content: str) -> None:
    pidfile = tmp_path / "server.pid"
    pidfile.write_text(f"{dead_pid()}\n" if content == "DEAD" else content)
    process.check_pidfile(pidfile)
    process.write_pidfile(pidfile)
    assert pidfile.read_text() == f"{os.getpid()}\n"


def test_read_pidfile_garbage_is_a_clear_error(tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    pidfile.write_text("hello")
    with pytest.raises(process.ProcessError, match="does not hold a process id"):
        process.read_pidfile(pidfile)
    assert process.read_pidfile(tmp_path / "missing.pid") is None


def test_status_and_stop_messages_for_missing_and_stale(tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    with pytest.raises(process.ProcessError, match="Not running: no pidfile at") as exc:
        process.status(str(pidfile))
    assert exc.value.returncode == 3
    with pytest.raises(process.ProcessError, match=r"No pidfile at .*: is the server running"):
        process.stop(str(pidfile))
    pidfile.write_text(f"{dead_pid()}\n")
    with pytest.raises(process.ProcessError, match="is stale"):
        process.status(str(pidfile))
    with pytest.raises(
        process.ProcessError, match=r"is stale: process \d+ is not running \(pidfile removed\)"
    ):
        process.stop(str(pidfile))
    assert not pidfile.exists()


def test_stop_sends_sigterm(tmp_path: Path, sleeper) -> None:
    proc = sleeper()
    pidfile = tmp_path / "server.pid"
    pidfile.write_text(f"{proc.pid}\n")
    assert process.status(str(pidfile)) == f"Running: process {proc.pid} (pidfile {pidfile})."
    messages: list[str] = []
    assert process.stop(str(pidfile), timeout=10, log=messages.append) == proc.pid
    assert proc.wait(10) == -signal.SIGTERM
    assert not pidfile.exists()
    assert "Sent SIGTERM" in messages[0]


def test_stop_escalates_to_sigkill_after_the_timeout(tmp_path: Path, sleeper) -> None:
    proc = sleeper(ignore_term=True)
    pidfile = tmp_path / "server.pid"
    pidfile.write_text(f"{proc.pid}\n")
    messages: list[str] = []
    process.stop(str(pidfile), timeout=0.5, log=messages.append)
    assert proc.wait(10) == -signal.SIGKILL
    assert any("sending SIGKILL" in m for m in messages)
    assert not pidfile.exists()


def test_pid_alive_says_no_for_a_zombie() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_until(
        lambda: Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z",
        message="a zombie",
    )
    assert not process.pid_alive(proc.pid)
    proc.wait(10)


DAEMON_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from django_devcommands.servers import process
    workdir, pidfile, outlog = sys.argv[1:4]
    daemon = process.daemonize(workdir=workdir, umask=0o027, outlog=outlog, errlog=outlog)
    process.write_pidfile(pidfile)
    print("daemon stdout", flush=True)
    print("daemon stderr", file=sys.stderr, flush=True)
    daemon.ready(f"started {os.getpid()}")
    time.sleep(60)
""")


def test_daemonize_detaches_and_reports_back(tmp_path: Path) -> None:
    pidfile, outlog, workdir = tmp_path / "d.pid", tmp_path / "out.log", tmp_path / "work"
    workdir.mkdir()
    script = tmp_path / "daemon.py"
    script.write_text(DAEMON_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, str(script), str(workdir), str(pidfile), str(outlog)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    pid = int(pidfile.read_text())
    try:
        assert done.stdout == f"started {pid}\n"
        assert process.pid_alive(pid)
        # A new session (setsid in the first child), and the daemon is not its
        # leader (second fork), so it can never acquire a controlling terminal.
        assert os.getsid(pid) not in (os.getsid(0), pid)
        assert os.readlink(f"/proc/{pid}/cwd") == str(workdir)
        umask_line = [
            ln
            for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
            if ln.startswith("Umask:")
        ]
        assert umask_line == ["Umask:\t0027"]
        assert outlog.read_text() == "daemon stdout\ndaemon stderr\n"
    finally:
        process.stop(str(pidfile), timeout=10)
    assert not process.pid_alive(pid)


def test_daemonize_failure_reaches_the_foreground(tmp_path: Path) -> None:
    script = tmp_path / "fail.py"
    script.write_text(
        textwrap.dedent("""
        from django_devcommands.servers import process
        daemon = process.daemonize()
        daemon.failed("could not bind: address in use")
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert done.stderr == "could not bind: address in use\n"


def test_daemonize_bad_log_path_is_reported_before_forking(tmp_path: Path) -> None:
    with pytest.raises(process.ProcessError, match="Cannot open log file"):
        process.daemonize(outlog=str(tmp_path / "missing" / "dir" / "out.log"))


def test_drop_privileges_unknown_user() -> None:
    with pytest.raises(process.ProcessError, match="server_user 'no-such-user-xyz' does not exist"):
        process.drop_privileges("no-such-user-xyz", None)
    with pytest.raises(
        process.ProcessError, match="server_group 'no-such-group-xyz' does not exist"
    ):
        process.drop_privileges(None, "no-such-group-xyz")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_drop_privileges_as_root_in_a_child() -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            process.drop_privileges("nobody", "nogroup")
            os.write(
                write_fd, f"{os.getuid()} {os.geteuid()} {os.getgid()} {os.getgroups()}".encode()
            )
        finally:
            os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    import grp
    import pwd

    text = os.read(read_fd, 1000).decode()
    os.close(read_fd)
    uid, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    assert text.startswith(f"{uid} {uid} {gid} ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may switch users")
def test_drop_privileges_without_root_is_refused() -> None:
    with pytest.raises(process.ProcessError, match="need the server to be started as root"):
        process.drop_privileges("root", None)


def test_a_pidfile_older_than_its_process_is_stale_and_the_process_is_left_alone(
    tmp_path: Path,
) -> None:
    # After a reboot (or a server killed without cleaning up) the pid in a pidfile can
    # belong to another program: it started after the pidfile was written.
    innocent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pidfile = tmp_path / "server.pid"
        pidfile.write_text(f"{innocent.pid}\n")
        assert process.status(str(pidfile)).startswith("Running")  # written after it started
        long_ago = time.time() - 3600
        os.utime(pidfile, (long_ago, long_ago))
        assert process.started_after(innocent.pid, pidfile)
        with pytest.raises(process.ProcessError, match="another program reuses that pid") as exc:
            process.status(str(pidfile))
        assert exc.value.returncode == 3
        process.check_pidfile(pidfile)  # a server may start over it
        with pytest.raises(process.ProcessError, match="not signalling it"):
            process.stop(str(pidfile), timeout=1)
        assert innocent.poll() is None  # still running: nothing was sent to it
        assert not pidfile.exists()
    finally:
        innocent.kill()
        innocent.wait(10)
