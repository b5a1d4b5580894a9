"""A local Solr for development and tests: an installed one, or one assembled from Maven.

Without ``DEVCOMMANDS['SOLR_INSTALL']`` the Solr comes from Maven Central: a generated
pom resolves ``org.apache.solr:solr-test-framework`` (real Solr plus an embedded
ZooKeeper) into the Maven cache once, ``SolrLauncher.java`` is compiled once, and
``java`` runs it: standalone (one node) or a SolrCloud of N nodes, each on
127.0.0.1 and an ephemeral port. Only Java 17+ and Maven are needed on the machine.

:func:`start` returns a :class:`LocalSolr` handle (used by tests, which stop it when
done); ``detach=True`` leaves it running and records its pid and URLs in a state
file, which :func:`status` and :func:`stop` read. ``auth=(user, password)`` secures a
standalone Solr with Basic authentication (a ``security.json`` in its home).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TextIO

from django_devcommands.servers import process
from django_devcommands.solr.errors import LocalSolrError, MissingDependency

LAUNCHER = "SolrLauncher"
MODES = ("standalone", "cloud")


def cache_dir(local_dir: str | None = None) -> Path:
    """Where the launcher, its classpath and the local Solr's data live."""
    if local_dir:
        return Path(local_dir).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "django-devcommands" / "solr"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise MissingDependency(
            f"The local Solr needs `{name}` on PATH (Java 17+ and Maven): install them, "
            "or set DEVCOMMANDS['SOLR_URL'] to a running Solr."
        )
    return found


def _java_source() -> str:
    return (
        resources.files("django_devcommands.solr")
        .joinpath(f"java/{LAUNCHER}.java")
        .read_text(encoding="utf-8")
    )


def _pom(version: str) -> str:
    text = (
        resources.files("django_devcommands.solr")
        .joinpath("java/pom.xml")
        .read_text(encoding="utf-8")
    )
    return text.replace(
        "<solr.version>9.10.1</solr.version>", f"<solr.version>{version}</solr.version>"
    )


def classpath(
    version: str, local_dir: str | None = None, log: TextIO | None = None, timeout: float = 900
) -> str:
    """The Java classpath of Solr ``version``, resolved by Maven on first use, then cached."""
    home = cache_dir(local_dir) / f"launcher-{version}"
    cp_file = home / "classpath.txt"
    if cp_file.exists():
        cp = cp_file.read_text().strip()
        if cp and all(os.path.exists(p) for p in cp.split(os.pathsep)):
            return cp
    mvn = _tool("mvn")
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_pom(version), encoding="utf-8")
    if log is not None:
        log.write(
            f"Resolving Solr {version} from Maven Central into the Maven cache "
            "(first use only)...\n"
        )
        log.flush()
    try:
        done = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(home / "pom.xml"),
                "dependency:build-classpath",
                f"-Dmdep.outputFile={cp_file}",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise LocalSolrError(f"Maven did not resolve Solr {version} within {timeout:g}s.") from None
    if done.returncode != 0 or not cp_file.exists():
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        raise LocalSolrError(f"Maven could not resolve Solr {version}: " + " | ".join(tail))
    return cp_file.read_text().strip()


def compiled_launcher(version: str, cp: str, local_dir: str | None = None) -> Path:
    """The directory holding the compiled launcher (compiled again only when it changes)."""
    source = _java_source()
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    out = cache_dir(local_dir) / f"launcher-{version}" / f"classes-{digest}"
    if (out / f"{LAUNCHER}.class").exists():
        return out
    javac = _tool("javac")
    src_dir = out.with_name(out.name + ".src")
    src_dir.mkdir(parents=True, exist_ok=True)
    src = src_dir / f"{LAUNCHER}.java"
    src.write_text(source, encoding="utf-8")
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    done = subprocess.run(
        [javac, "-nowarn", "-d", str(tmp), "-cp", cp, str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise LocalSolrError("Could not compile the Solr launcher: " + done.stderr[-500:])
    try:
        tmp.rename(out)
    except OSError:  # another process compiled it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return out


@dataclass
class LocalSolr:
    """A running local Solr started by :func:`start`."""

    mode: str
    pid: int
    urls: list[str]
    home: str
    zk_host: str | None = None
    log: str = ""
    started: float = field(default_factory=time.time)

    @property
    def url(self) -> str:
        return self.urls[0]

    def alive(self) -> bool:
        return _alive(self.pid)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, wait for a clean shutdown, SIGKILL if it does not come."""
        _terminate(self.pid, timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return waited == 0


def _terminate(pid: int, timeout: float) -> None:
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    _alive(pid)


def password_hash(password: str, salt: bytes | None = None) -> str:
    """A credential as Solr's ``Sha256AuthenticationProvider`` stores it in security.json.

    ``base64(sha256(sha256(salt + password))) + " " + base64(salt)``, computed here so no
    ``bin/solr auth`` (or a Solr install) is needed to secure the local Solr.
    """
    salt = os.urandom(32) if salt is None else salt
    digest = hashlib.sha256(hashlib.sha256(salt + password.encode("utf-8")).digest()).digest()
    return f"{base64.b64encode(digest).decode()} {base64.b64encode(salt).decode()}"


def security_config(user: str, password: str) -> dict:
    """security.json for Basic authentication: ``user`` is admin, anonymous gets nothing."""
    return {
        "authentication": {
            "class": "solr.BasicAuthPlugin",
            "blockUnknown": True,
            "credentials": {user: password_hash(password)},
        },
        "authorization": {
            "class": "solr.RuleBasedAuthorizationPlugin",
            "user-role": {user: ["admin"]},
            "permissions": [{"name": "all", "role": "admin"}],
        },
    }


def write_security(home: str | Path, user: str, password: str) -> Path:
    """Write ``security.json`` into a standalone solr home (read by Solr when it starts)."""
    path = Path(home) / "security.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(security_config(user, password), indent=2), encoding="utf-8")
    path.chmod(0o600)
    return path


def state_file(mode: str, local_dir: str | None = None) -> Path:
    return cache_dir(local_dir) / mode / "state.json"


def start(
    mode: str = "standalone",
    *,
    home: str | Path | None = None,
    port: int = 0,
    nodes: int = 2,
    version: str = "9.10.1",
    local_dir: str | None = None,
    detach: bool = False,
    heap: str = "512m",
    timeout: float = 180,
    log: TextIO | None = None,
    auth: tuple[str, str] | None = None,
) -> LocalSolr:
    """Start Solr; return once every node answers (or raise :class:`LocalSolrError`).

    Not detached, the child watches its standard input and stops when the pipe closes,
    so a crashed parent (a test run killed halfway) never leaves a Solr behind.
    ``auth=(user, password)`` (standalone only) requires Basic authentication.
    """
    if mode not in MODES:
        raise LocalSolrError(f"Unknown Solr mode {mode!r}: expected standalone or cloud.")
    if auth is not None and mode != "standalone":
        raise LocalSolrError(
            "A secured local Solr (auth=...) is standalone only: SolrCloud keeps "
            "security.json in ZooKeeper."
        )
    java = _tool("java")
    cp = classpath(version, local_dir, log=log)
    classes = compiled_launcher(version, cp, local_dir)
    root = Path(home) if home else cache_dir(local_dir) / mode / "home"
    root.mkdir(parents=True, exist_ok=True)
    if auth is not None:
        write_security(root, *auth)
    out_path = root / "launcher.out"
    log_path = root / "solr.log"
    args = [mode, str(root), str(port) if mode == "standalone" else str(nodes)]
    command = [
        java,
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",
        "-Xss1m",
        "-Djava.awt.headless=true",
        f"-Ddevcommands.stdinWatch={'false' if detach else 'true'}",
        "-Dsolr.log.muteconsole=true",
        "-Dlog4j2.level=WARN",
        "-Dsolr.disable.shardsWhitelist=true",
        "-cp",
        os.pathsep.join([str(classes), cp]),
        LAUNCHER,
        *args,
    ]
    with open(out_path, "wb") as out, open(log_path, "ab") as err:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL if detach else subprocess.PIPE,
            start_new_session=detach,
            cwd=str(root),
        )
    urls: list[str] = []
    zk: str | None = None
    deadline = time.monotonic() + timeout
    while True:
        text = out_path.read_text(errors="replace")
        if "\nREADY" in "\n" + text:
            for line in text.splitlines():
                if line.startswith("SOLR_URL "):
                    urls.append(line.split(None, 1)[1].strip().rstrip("/"))
                elif line.startswith("ZK_HOST "):
                    zk = line.split(None, 1)[1].strip()
            break
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise LocalSolrError(
                f"The local Solr exited with status {proc.returncode} while "
                f"starting; log {log_path}: " + " | ".join(tail)
            )
        if time.monotonic() > deadline:
            _terminate(proc.pid, 10)
            raise LocalSolrError(
                f"The local Solr did not start within {timeout:g}s; log {log_path}."
            )
        time.sleep(0.1)
    solr = LocalSolr(
        mode=mode, pid=proc.pid, urls=urls, home=str(root), zk_host=zk, log=str(log_path)
    )
    solr._popen = proc  # type: ignore[attr-defined]  # keeps the stdin pipe open
    if detach:
        path = state_file(mode, local_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(solr)), encoding="utf-8")
    return solr


def running(mode: str, local_dir: str | None = None) -> LocalSolr | None:
    """The detached local Solr of ``mode`` when its process is alive, else None."""
    path = state_file(mode, local_dir)
    try:
        solr = LocalSolr(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if not solr.alive() or process.started_after(solr.pid, path):
        # Gone, or its pid now belongs to a program started after this file was
        # written (a reboot): nothing of ours to stop.
        path.unlink(missing_ok=True)
        return None
    return solr


def stop(mode: str, local_dir: str | None = None, timeout: float = 30) -> LocalSolr | None:
    """Stop the detached local Solr of ``mode``; returns what was stopped (None: nothing)."""
    solr = running(mode, local_dir)
    if solr is None:
        return None
    solr.stop(timeout)
    state_file(mode, local_dir).unlink(missing_ok=True)
    return solr


# -- an installed Solr (bin/solr) ---------------------------------------------------------


def installed_state_file(mode: str, local_dir: str | None = None) -> Path:
    return cache_dir(local_dir) / mode / "installed.json"


def remember_installed(mode: str, local_dir: str | None, install: str, url: str) -> None:
    """Record where ``--start`` ran an installed Solr, for the actions that follow."""
    path = installed_state_file(mode, local_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"install": install, "url": url}), encoding="utf-8")


def installed_url(mode: str, local_dir: str | None, install: str) -> str | None:
    """The URL ``--start`` recorded for this install and mode, if it did."""
    try:
        state = json.loads(installed_state_file(mode, local_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("install") != install:
        return None
    url = state.get("url")
    return url if isinstance(url, str) else None


def forget_installed(mode: str, local_dir: str | None) -> None:
    installed_state_file(mode, local_dir).unlink(missing_ok=True)


def installed_command(install: str) -> str:
    script = Path(install) / "bin" / "solr"
    if not script.exists():
        raise LocalSolrError(f"DEVCOMMANDS['SOLR_INSTALL'] = {install!r} has no bin/solr.")
    return str(script)


def start_installed(install: str, mode: str, port: int, home: Path, timeout: float = 180) -> str:
    """``bin/solr start`` (``-c`` for cloud) on 127.0.0.1; returns the base URL."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "solr.xml").exists():
        shutil.copy(Path(install) / "server" / "solr" / "solr.xml", home / "solr.xml")
    port = port or 8983
    args = [
        installed_command(install),
        "start",
        "-p",
        str(port),
        "-s",
        str(home),
        "-Dsolr.jetty.host=127.0.0.1",
    ]
    if mode == "cloud":
        args.insert(2, "-c")
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise LocalSolrError("bin/solr start failed: " + (done.stdout + done.stderr)[-400:])
    return f"http://127.0.0.1:{port}/solr"


def stop_installed(install: str, port: int, timeout: float = 60) -> None:
    done = subprocess.run(
        [installed_command(install), "stop", "-p", str(port or 8983)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise LocalSolrError("bin/solr stop failed: " + (done.stdout + done.stderr)[-400:])
