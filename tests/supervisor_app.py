"""A tiny WSGI app served by the real supervisor and cheroot engine, without Django,
so supervisor tests can see which worker answered and make workers misbehave.

Usage: python tests/supervisor_app.py '{"workers": 2, ...}'  (ProcessOptions fields,
plus "threads", "fail_flag": a path that, while it exists, makes workers fail to boot,
and "slow_flag": a path that, while it exists, holds a booting worker in its app's start)

  /            -> "pid <worker pid>"
  /sleep?s=N&mark=PATH -> touches PATH, sleeps N seconds, answers the pid
  /spin?ms=N   -> keeps the CPU busy N ms, answers "inside K" (requests in the app then)
  /exit        -> the worker exits at once (crash)
  /hang        -> blocks forever (a stuck thread)

With "engine": "line", a non-HTTP engine answers each connection with "pid N".
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django_devcommands.servers import supervisor
from django_devcommands.servers.http import CherootEngine
from tests.spin import spin as spinning


def spin(query, start_response):
    """Keeps the CPU busy for ``ms`` ms (see tests/spin.py)."""
    body = f"inside {spinning(float(query.get('ms', ['20'])[0]))}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def make_app(fail_flag: str | None, slow_flag: str | None = None):
    if fail_flag and os.path.exists(fail_flag):
        raise RuntimeError("boot failure requested by the test")
    if slow_flag and os.path.exists(slow_flag):  # a slow boot, until the test says
        Path(slow_flag + ".booting").write_text(str(os.getpid()))
        deadline = time.monotonic() + 30
        while os.path.exists(slow_flag) and time.monotonic() < deadline:
            time.sleep(0.02)

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if path == "/sleep":
            if "mark" in query:
                Path(query["mark"][0]).touch()
            time.sleep(float(query["s"][0]))
        elif path == "/spin":
            return spin(query, start_response)
        elif path == "/exit":
            os._exit(1)
        elif path == "/hang":
            time.sleep(3600)
        body = f"pid {os.getpid()}".encode()
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


class LineEngine:
    """Not HTTP at all: answers each connection with one line, "pid N".

    Shows the supervisor is engine-agnostic (runfcgi runs flup the same way).
    """

    name = "line"

    def __init__(self) -> None:
        self._stop = threading.Event()

    def bind(self) -> socket.socket:
        return supervisor.listen_socket("127.0.0.1", 0)

    def serve(self, sock: socket.socket, worker: supervisor.Worker) -> None:
        sock.settimeout(0.1)
        worker.ready()
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, BlockingIOError):
                continue
            with conn:
                conn.sendall(f"pid {os.getpid()}\n".encode())
        sock.close()

    def stop(self, timeout: float) -> None:
        self._stop.set()


def main() -> int:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    threads = config.pop("threads", 4)
    fail_flag = config.pop("fail_flag", None)
    slow_flag = config.pop("slow_flag", None)
    engine: CherootEngine | LineEngine
    if config.pop("engine", "cheroot") == "line":
        engine = LineEngine()
    else:
        engine = CherootEngine(
            host="127.0.0.1",
            port=0,
            threads=threads,
            app_factory=lambda: make_app(fail_flag, slow_flag),
        )
    scheme = "line" if isinstance(engine, LineEngine) else "http"
    options = supervisor.ProcessOptions(**config)
    return supervisor.run(
        engine,
        options,
        stdout=sys.stdout,
        stderr=sys.stderr,
        banner=lambda sock: f"test app serving on {supervisor.describe_address(sock, scheme)}",
    )


if __name__ == "__main__":
    sys.exit(main())
