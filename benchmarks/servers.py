"""Side-by-side benchmark of the WSGI servers, all in one run, with ratios.

    python benchmarks/servers.py [--duration 5] [--scenario overhead] [--write-docs]

The page measured is the example project's page list (a few KB of HTML built
from a database query, DEBUG off). Load comes from ``wrk`` (installed with
apt-get when missing and we are root); gunicorn is pip-installed into this
interpreter when missing. Scenarios:

* overhead: ``runcpserver workers=1`` against plain cheroot running the same
  app with the same thread count (what our supervisor and wrappers cost);
* prefork: ``runcpserver workers=2`` against ``gunicorn -w 2`` (sync workers);
* nginx-scgi / nginx-fcgi: through nginx, ``runfcgi workers=2`` (SCGI or FastCGI)
  against ``gunicorn -w 2`` behind nginx ``proxy_pass`` and flup's own prefork
  server (``scgi_fork`` / ``fcgi_fork``) behind nginx (results on the runfcgi page);
* ceiling: the same WSGI app called in-process in a loop, one core.

Competitors are entries in :data:`COMPETITORS` (a name and a command line for a
port), and scenarios name them, so ``runfcgi`` (behind nginx) can add its own.
Results go to ``benchmarks/results/servers-<time>.json``; ``--write-docs``
rewrites the table in ``docs/benchmarks/servers.rst``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example"
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs" / "benchmarks" / "servers.rst"
TABLE_START = ".. table-start (written by benchmarks/servers.py --write-docs)"
TABLE_END = ".. table-end"

WRK_REPORT = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
                 + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'JSON {"requests": %d, "seconds": %f, "errors": %d, "p50_ms": %f, "p99_ms": %f}\\n',
    summary.requests, summary.duration / 1e6, errors,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""

PLAIN_CHEROOT = """
import os, sys
import django
from cheroot import wsgi
from django.core.wsgi import get_wsgi_application
app = get_wsgi_application()
server = wsgi.Server(("127.0.0.1", int(sys.argv[1])), app, numthreads=int(sys.argv[2]),
                     request_queue_size=2048)
try:
    server.safe_start()
except KeyboardInterrupt:
    pass
"""

CEILING = """
import json, sys, time
from io import BytesIO
from django.core.wsgi import get_wsgi_application
app = get_wsgi_application()
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "127.0.0.1",
           "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1",
           "wsgi.url_scheme": "http", "wsgi.input": BytesIO(), "wsgi.errors": sys.stderr,
           "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": False,
           "wsgi.run_once": False, "SCRIPT_NAME": "", "QUERY_STRING": ""}
def start_response(status, headers, exc_info=None):
    assert status.startswith("200"), status
body = b"".join(app(dict(environ), start_response))  # warm up
deadline = time.perf_counter() + float(sys.argv[1])
count, started = 0, time.perf_counter()
while time.perf_counter() < deadline:
    result = app(dict(environ), start_response)
    b"".join(result)
    result.close()
    count += 1
print(json.dumps({"rps": count / (time.perf_counter() - started), "bytes": len(body)}))
"""


FLUP_FORK = """
import logging, sys
from django.core.wsgi import get_wsgi_application
protocol, port = sys.argv[1], int(sys.argv[2])
if protocol == "scgi":
    from flup.server.scgi_fork import WSGIServer
    extra = {"scriptName": None, "loggingLevel": logging.WARNING}
else:
    from flup.server.fcgi_fork import WSGIServer
    extra = {}
# flup's defaults for maxSpare/minSpare/maxChildren (old runfcgi's too).
WSGIServer(get_wsgi_application(), bindAddress=("127.0.0.1", port), maxSpare=5, minSpare=2,
           maxChildren=50, **extra).run()
"""

NGINX_CONF = """\
{user}worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    scgi_temp_path {tmp}/scgi;
    uwsgi_temp_path {tmp}/uwsgi;
    upstream app {{
        server 127.0.0.1:{backend};
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
{location}
        }}
    }}
}}
"""

NGINX_LOCATIONS = {
    "http": "            proxy_pass http://app;\n            proxy_set_header Host $http_host;",
    "scgi": "            include {params}/scgi_params;\n            scgi_pass app;",
    "fcgi": "            include {params}/fastcgi_params;\n            fastcgi_pass app;",
}


@dataclass
class Competitor:
    """A server to measure: ``command(port)`` starts it in the foreground.

    With ``front`` ("http", "scgi" or "fcgi"), the server gets another port and nginx
    listens on the measured one, passing requests with ``proxy_pass``, ``scgi_pass``
    or ``fastcgi_pass`` (and the params files nginx ships).
    """

    name: str
    command: Callable[[int], list[str]]
    workers: int = 1
    note: str = ""
    front: str | None = None
    #: Seconds to wait after SIGTERM before killing the process group.
    stop_timeout: float = 30.0


def _manage(*args: str) -> Callable[[int], list[str]]:
    return lambda port: [sys.executable, str(EXAMPLE / "manage.py"), *args, f"port={port}"]


def _gunicorn(port: int) -> list[str]:
    """gunicorn with 2 sync workers on the example project (the peer, direct or behind nginx)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        "2",
        "-k",
        "sync",
        "-b",
        f"127.0.0.1:{port}",
        "--backlog",
        "2048",
        "exampleproject.wsgi:application",
    ]


COMPETITORS: dict[str, Competitor] = {
    c.name: c
    for c in [
        Competitor(
            "runcpserver workers=1",
            _manage("runcpserver", "workers=1", "threads=10", "autoreload=false"),
            note="one process, no master, 10 threads",
        ),
        Competitor(
            "plain cheroot",
            lambda port: [sys.executable, "-c", PLAIN_CHEROOT, str(port), "10"],
            note="cheroot.wsgi.Server, 10 threads, same app",
        ),
        Competitor(
            "runcpserver workers=2",
            _manage("runcpserver", "workers=2", "threads=10", "autoreload=false"),
            workers=2,
            note="master + 2 workers x 10 threads",
        ),
        Competitor(
            "gunicorn -w 2 (sync)",
            _gunicorn,
            workers=2,
            note="gunicorn sync workers (no keep-alive)",
        ),
        *(
            entry
            for protocol in ("scgi", "fcgi")
            for entry in (
                Competitor(
                    f"nginx + runfcgi {protocol} workers=2",
                    _manage("runfcgi", f"protocol={protocol}", "workers=2"),
                    workers=2,
                    note=f"runfcgi prefork, 2 workers x 10 threads, nginx {protocol}_pass",
                    front=protocol,
                ),
                Competitor(
                    f"nginx + flup {protocol}_fork",
                    lambda port, protocol=protocol: [
                        sys.executable,
                        "-c",
                        FLUP_FORK,
                        protocol,
                        str(port),
                    ],
                    workers=2,
                    note=f"flup.server.{protocol}_fork, maxSpare=5 maxChildren=50",
                    front=protocol,
                    # its parent ignores SIGTERM until the next request (a flup bug)
                    stop_timeout=3.0,
                ),
            )
        ),
        Competitor(
            "nginx + gunicorn -w 2",
            _gunicorn,
            workers=2,
            note="gunicorn sync workers behind nginx proxy_pass",
            front="http",
        ),
    ]
}


@dataclass
class Scenario:
    name: str
    title: str
    competitors: list[str]
    concurrency: list[int]
    #: The competitor the others are divided by in the ratio column.
    baseline: str
    headers: list[str] = field(default_factory=list)
    #: The docs page (docs/benchmarks/<page>.rst) whose table shows this scenario.
    page: str = "servers"


SCENARIOS = [
    Scenario(
        "overhead",
        "runcpserver workers=1 vs plain cheroot (keep-alive)",
        ["runcpserver workers=1", "plain cheroot"],
        [10, 50],
        baseline="plain cheroot",
    ),
    Scenario(
        "prefork",
        "runcpserver workers=2 vs gunicorn -w 2 (keep-alive requested)",
        ["runcpserver workers=2", "gunicorn -w 2 (sync)"],
        [50, 200],
        baseline="gunicorn -w 2 (sync)",
    ),
    Scenario(
        "prefork-close",
        "runcpserver workers=2 vs gunicorn -w 2 (Connection: close)",
        ["runcpserver workers=2", "gunicorn -w 2 (sync)"],
        [50, 200],
        baseline="gunicorn -w 2 (sync)",
        headers=["Connection: close"],
    ),
    *(
        Scenario(
            f"nginx-{protocol}",
            f"through nginx: runfcgi {protocol} vs gunicorn (proxy_pass) vs flup {protocol}_fork",
            [
                f"nginx + runfcgi {protocol} workers=2",
                "nginx + gunicorn -w 2",
                f"nginx + flup {protocol}_fork",
            ],
            [50, 200],
            baseline="nginx + gunicorn -w 2",
            page="runfcgi",
        )
        for protocol in ("scgi", "fcgi")
    ),
]


# -- tools ------------------------------------------------------------------------------


def ensure_tools(need_gunicorn: bool) -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        if os.geteuid() != 0:
            sys.exit("wrk is missing: apt-get install wrk (or run this script as root)")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        wrk = shutil.which("wrk") or "/usr/bin/wrk"
    if need_gunicorn:
        try:
            import gunicorn  # noqa: F401
        except ImportError:
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "gunicorn"], check=True
            )
    return wrk


def ensure_nginx() -> None:
    if shutil.which("nginx") or os.path.exists("/usr/sbin/nginx"):
        return
    if os.geteuid() != 0:
        sys.exit("nginx is missing: apt-get install nginx (or run this script as root)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_quiet(servers: list[Running], limit: float = 10.0) -> None:
    """Wait (at most ``limit`` s) until no server uses CPU: when wrk stops, a server still
    has up to one request per connection queued and serves it for nobody. Measured: the
    previous server took 0.8 to 1.2 cores for the first second of the next server's run,
    whose first requests (every connection's, a run's p99) then went at half speed."""
    pids = [pid for server in servers for pid in server.pids()]
    deadline = time.monotonic() + limit
    before = sum(cpu_seconds(pid) for pid in pids)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        after = sum(cpu_seconds(pid) for pid in pids)
        if after - before < 0.01:  # under 5 % of a core over 0.2 s
            return
        before = after


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    url: str
    #: nginx in front, if any (stopped after the server), and its directory.
    front: subprocess.Popen[bytes] | None = None
    stop_timeout: float = 30.0
    front_dir: Path | None = None

    def worker_pids(self) -> list[int]:
        return children(self.proc.pid) or [self.proc.pid]

    def pids(self) -> list[int]:
        """The server's processes and its nginx's, if any."""
        roots = [self.proc.pid] + ([self.front.pid] if self.front is not None else [])
        return [pid for root in roots for pid in [root, *children(root)]]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.front is not None and self.front.poll() is None:
            self.front.send_signal(signal.SIGQUIT)
            try:
                self.front.wait(10)
            except subprocess.TimeoutExpired:
                self.front.kill()
                self.front.wait(10)
        if self.front_dir is not None:
            shutil.rmtree(self.front_dir, ignore_errors=True)


def nginx_params_dir() -> str:
    """Where nginx's scgi_params / fastcgi_params live (its configuration directory)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    info = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10).stderr
    for word in info.split():
        if word.startswith("--conf-path="):
            return str(Path(word.partition("=")[2]).parent)
    return "/etc/nginx"


def start_nginx(front: str, port: int, backend: int, tmp: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        sys.exit("nginx is missing: apt-get install nginx")
    conf = tmp / "nginx.conf"
    location = NGINX_LOCATIONS[front].format(params=nginx_params_dir())
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        NGINX_CONF.format(user=user, tmp=tmp, port=port, backend=backend, location=location)
    )
    return subprocess.Popen(
        [
            binary,
            "-p",
            str(tmp),
            "-c",
            str(conf),
            "-e",
            str(tmp / "error.log"),
            "-g",
            "daemon off;",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def start(competitor: Competitor, env: dict[str, str]) -> Running:
    port = free_port()
    front = front_dir = None
    backend = port
    if competitor.front:
        backend = free_port()
        front_dir = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
        front = start_nginx(competitor.front, port, backend, front_dir)
    proc = subprocess.Popen(
        competitor.command(backend),
        env=env,
        cwd=EXAMPLE,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    running = Running(proc, url, front, competitor.stop_timeout, front_dir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            running.stop()  # its nginx, which would otherwise outlive the run
            sys.exit(f"{competitor.name} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return running
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    running.stop()
    sys.exit(f"{competitor.name} did not start")


def run_wrk(
    wrk: str, url: str, concurrency: int, duration: float, headers: list[str], script: Path
) -> dict[str, float]:
    threads = min(2, concurrency)
    args = [
        wrk,
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
    ]
    for header in headers:
        args += ["-H", header]
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("JSON ")), None)
    if line is None:
        sys.exit(f"wrk failed: {done.stdout}\n{done.stderr}")
    data = json.loads(line[5:])
    data["rps"] = data["requests"] / data["seconds"]
    return data


# -- the run ----------------------------------------------------------------------------


def prepare_project(tmp: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "EXAMPLE_DB": str(tmp / "bench.sqlite3"),
        "EXAMPLE_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "exampleproject.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLE)]),
    }
    subprocess.run(
        [sys.executable, str(EXAMPLE / "manage.py"), "demo", "--no-serve", "--pages", "200", "-v0"],
        env=env,
        cwd=EXAMPLE,
        check=True,
    )
    return env


def measure_ceiling(env: dict[str, str], duration: float) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CEILING, str(duration)],
        env=env,
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="wrk runs per server and concurrency, alternating; the median counts",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[s.name for s in SCENARIOS],
        help="run only these scenarios (repeatable)",
    )
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the table in {DOCS}")
    parser.add_argument(
        "--docs-from",
        type=Path,
        metavar="RESULTS_JSON",
        help="write the docs' tables from a saved run (benchmarks/results/...) instead of running",
    )
    args = parser.parse_args(argv)
    if args.docs_from:
        saved = json.loads(args.docs_from.read_text())
        write_pages(saved["rows"], saved["ceiling"], saved["duration"], saved["repeat"], True)
        return 0
    scenarios = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    wrk = ensure_tools(any("gunicorn" in n for s in scenarios for n in s.competitors))
    if any(COMPETITORS[n].front for s in scenarios for n in s.competitors):
        ensure_nginx()

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        env = prepare_project(tmp)
        script = tmp / "report.lua"
        script.write_text(WRK_REPORT)
        ceiling = measure_ceiling(env, args.duration)
        print(
            f"ceiling: the app in-process, one core: {ceiling['rps']:.0f} req/s "
            f"({ceiling['bytes']} bytes per page)"
        )
        for scenario in scenarios:
            # All competitors of a scenario run at once (idle ones cost nothing) and the
            # wrk runs alternate between them, so a burst of load from elsewhere on a
            # shared machine hits all of them rather than one.
            running: dict[str, Running] = {}
            try:
                for name in scenario.competitors:
                    running[name] = start(COMPETITORS[name], env)
                for concurrency in scenario.concurrency:
                    runs: dict[str, list[dict[str, float]]] = {name: [] for name in running}
                    for server in running.values():  # warm-up
                        run_wrk(wrk, server.url, concurrency, 1.0, scenario.headers, script)
                    for _ in range(args.repeat):
                        for name, server in running.items():
                            wait_until_quiet(list(running.values()))
                            runs[name].append(
                                run_wrk(
                                    wrk,
                                    server.url,
                                    concurrency,
                                    args.duration,
                                    scenario.headers,
                                    script,
                                )
                            )
                    results = {}
                    for name, server in running.items():
                        ordered = sorted(runs[name], key=lambda r: r["rps"])
                        data = dict(ordered[len(ordered) // 2])  # the median run
                        # ...and each latency the median of its own: the run with the
                        # median requests/s can hold the slowest p99 (a single pause).
                        for key in ("p50_ms", "p99_ms"):
                            data[key] = statistics.median(r[key] for r in runs[name])
                        data["errors"] = sum(r["errors"] for r in runs[name])
                        data["runs_rps"] = [round(r["rps"], 1) for r in runs[name]]
                        data["runs_p99_ms"] = [round(r["p99_ms"], 1) for r in runs[name]]
                        pids = server.worker_pids()
                        data["rss_mb"] = sum(rss_mb(p) for p in pids) / len(pids)
                        results[name] = data
                    base = results[scenario.baseline]["rps"]
                    for name, data in results.items():
                        cores = min(COMPETITORS[name].workers, os.cpu_count() or 1)
                        rows.append(
                            {
                                "scenario": scenario.name,
                                "title": scenario.title,
                                "server": name,
                                "concurrency": concurrency,
                                **data,
                                "ratio": data["rps"] / base if base else 0.0,
                                "of_ceiling": data["rps"] / (ceiling["rps"] * cores),
                            }
                        )
                        print(_format_row(rows[-1]), flush=True)
            finally:
                for server in running.values():
                    server.stop()

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report = {
        "when": stamp,
        "duration": args.duration,
        "repeat": args.repeat,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "ceiling": ceiling,
        "rows": rows,
        "competitors": {n: asdict(c) | {"command": None} for n, c in COMPETITORS.items()},
    }
    out = RESULTS / f"servers-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nresults: {out}")
    write_pages(rows, ceiling, args.duration, args.repeat, args.write_docs)
    return 0


def write_pages(
    rows: list[dict[str, object]],
    ceiling: dict[str, float],
    duration: float,
    repeat: int,
    write: bool,
) -> None:
    """Print each docs page's table, and with ``write`` put it (and its chart) in the docs."""
    pages = {s.name: s.page for s in SCENARIOS}
    for page in dict.fromkeys(pages[str(row["scenario"])] for row in rows):
        page_rows = [row for row in rows if pages[str(row["scenario"])] == page]
        table = rst_table(page_rows, ceiling, duration, repeat)
        print("\n" + table)
        if write:
            write_docs(table, DOCS.parent / f"{page}.rst")
            svg = DOCS.parent / f"{page}.svg"
            svg.write_text(svg_chart(page_rows))
            print(f"wrote {svg}")


def _format_row(row: dict[str, object]) -> str:
    return (
        f"{row['scenario']:<14} c={row['concurrency']:<4} {row['server']:<24} "
        f"{row['rps']:8.0f} req/s  p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  "
        f"errors {row['errors']:<5} RSS/worker {row['rss_mb']:5.0f} MB  "
        f"x{row['ratio']:.2f}  {100 * row['of_ceiling']:.0f}% of ceiling"
    )


def rst_table(
    rows: list[dict[str, object]], ceiling: dict[str, float], duration: float, repeat: int
) -> str:
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - Scenario",
        "     - c",
        "     - Server",
        "     - req/s",
        "     - p50 ms",
        "     - p99 ms",
        "     - errors",
        "     - RSS/worker MB",
        "     - ratio",
        "     - of ceiling",
    ]
    for row in rows:
        lines += [
            f"   * - {row['scenario']}",
            f"     - {row['concurrency']}",
            f"     - {row['server']}",
            f"     - {row['rps']:.0f}",
            f"     - {row['p50_ms']:.1f}",
            f"     - {row['p99_ms']:.1f}",
            f"     - {row['errors']}",
            f"     - {row['rss_mb']:.0f}",
            f"     - {row['ratio']:.2f}",
            f"     - {100 * row['of_ceiling']:.0f}%",
        ]
    lines += [
        "",
        f"Ceiling (the app called in-process in a loop, one core): {ceiling['rps']:.0f} req/s "
        f"for a {ceiling['bytes']}-byte page. Each figure is the median of {repeat} wrk runs of "
        f"{duration:g} s (after a 1 s warm-up), alternating between the servers compared; "
        f"errors are summed over the runs. {os.cpu_count()} cores, with wrk (and nginx) on "
        "the same machine.",
    ]
    return "\n".join(lines) + "\n"


def svg_chart(rows: list[dict[str, object]]) -> str:
    """A bar chart (requests/s, p99 written on each bar) as standalone SVG: no plotting library."""
    groups: dict[tuple[str, object], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault((str(row["scenario"]), row["concurrency"]), []).append(row)
    servers = list(dict.fromkeys(str(row["server"]) for row in rows))
    colors = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#c53030", "#718096"]
    top = max(float(row["rps"]) for row in rows) * 1.15 or 1.0  # type: ignore[arg-type]
    bar, gap, height, left, base = 26, 30, 260, 60, 300
    width = left + len(groups) * (len(servers) * bar + gap) + 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{base + 90}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="16" font-size="13">requests/s (higher is better); '
        "p99 ms on each bar</text>",
        f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#333"/>',
    ]
    for tick in range(5):
        value = top * tick / 4
        y = base - height * tick / 4
        out.append(f'<text x="{left - 6}" y="{y + 4:.0f}" text-anchor="end">{value:.0f}</text>')
        out.append(f'<line x1="{left}" y1="{y:.0f}" x2="{width - 10}" y2="{y:.0f}" stroke="#ddd"/>')
    x = left + gap / 2
    for (scenario, concurrency), items in groups.items():
        for row in items:
            index = servers.index(str(row["server"]))
            h = height * float(row["rps"]) / top  # type: ignore[arg-type]
            bx = x + index * bar
            out.append(
                f'<rect x="{bx:.0f}" y="{base - h:.0f}" width="{bar - 4}" height="{h:.0f}" '
                f'fill="{colors[index % len(colors)]}"><title>{row["server"]}: '
                f"{float(row['rps']):.0f} req/s, p99 {float(row['p99_ms']):.0f} ms</title></rect>"  # type: ignore[arg-type]
            )
            out.append(
                f'<text x="{bx + (bar - 4) / 2:.0f}" y="{base - h - 4:.0f}" '
                f'text-anchor="middle" font-size="9">{float(row["p99_ms"]):.0f}</text>'  # type: ignore[arg-type]
            )
        middle = x + len(servers) * bar / 2
        out.append(
            f'<text x="{middle:.0f}" y="{base + 16}" text-anchor="middle">'
            f"{scenario} c={concurrency}</text>"
        )
        x += len(servers) * bar + gap
    for index, name in enumerate(servers):
        y = base + 36 + 14 * (index // 2)
        lx = left + (index % 2) * 300
        out.append(
            f'<rect x="{lx}" y="{y - 9}" width="10" height="10" '
            f'fill="{colors[index % len(colors)]}"/>'
        )
        out.append(f'<text x="{lx + 14}" y="{y}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_docs(table: str, page: Path = DOCS) -> None:
    """Replace the table between the markers of ``page`` (a docs/benchmarks/*.rst)."""
    text = page.read_text()
    head, _, rest = text.partition(TABLE_START)
    _, _, tail = rest.partition(TABLE_END)
    page.write_text(f"{head}{TABLE_START}\n\n{table}\n{TABLE_END}{tail}")
    print(f"wrote {page}")


if __name__ == "__main__":
    sys.exit(main())
