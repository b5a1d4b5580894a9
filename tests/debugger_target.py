"""A program for tests/test_debugger.py to run in a real subprocess (a pty or no TTY).

    python tests/debugger_target.py SCENARIO

Scenarios: ``main`` (set_trace in the main thread), ``thread`` (in a worker thread),
``breakpoint`` (the builtin, after ``install_breakpoint_hook``), ``post_mortem``,
``bpdb`` (bpython's own ``bpdb.set_trace``), ``bpdb_class`` (its BPdb, adopted),
``serve`` (a threaded wsgiref server for the example project plus
``tests.debugger_urls``; prints ``PORT n``).
Each prints ``x is <value>`` after the stop, so a test sees what the debugger changed.
"""

from __future__ import annotations

import os
import sys
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.debugger_settings")

import django

django.setup()

from django_devcommands import debugger  # noqa: E402


def stop_here() -> int:
    x = 1
    debugger.set_trace()
    y = x + 1
    print(f"x is {x}, y is {y}", flush=True)
    return x


def caller() -> None:
    v = 1
    stop_here()
    print(f"v is {v}", flush=True)


def two_threads() -> None:
    workers = [threading.Thread(target=stop_here, name=f"worker-{n}") for n in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    print(f"workers alive: {sum(w.is_alive() for w in workers)}", flush=True)


def builtin_breakpoint() -> None:
    x = 1
    breakpoint()
    print(f"x is {x}", flush=True)


def bpdb_here() -> None:
    import bpdb

    x = 1
    bpdb.set_trace()
    print(f"x is {x}", flush=True)


def bpdb_class() -> None:
    from bpdb.debugger import BPdb

    print(f"adopted: {debugger.adopt_bpdb()}", flush=True)
    x = 1
    BPdb().set_trace()
    print(f"x is {x}", flush=True)


def fail() -> None:
    x = 41
    raise ZeroDivisionError(f"x={x}")


def post_mortem() -> None:
    try:
        fail()
    except ZeroDivisionError:
        debugger.post_mortem()
    print("after post-mortem", flush=True)


def in_thread(target) -> None:
    worker = threading.Thread(target=target, name="worker-1")
    worker.start()
    worker.join(120)
    print(f"worker alive: {worker.is_alive()}", flush=True)


def serve() -> None:
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from django.core.wsgi import get_wsgi_application

    if os.environ.get("TARGET_SIGNAL_POST_MORTEM"):
        print(f"post-mortem signal: {debugger.enable_post_mortem()}", flush=True)

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, format, *args):
            sys.stderr.write(f"request {format % args}\n")

    httpd = make_server("127.0.0.1", 0, get_wsgi_application(), Server, Quiet)
    print(f"PORT {httpd.server_address[1]}", flush=True)
    threading.Timer(120, httpd.shutdown).start()  # never outlive a stuck test
    httpd.serve_forever()


SCENARIOS = {
    "main": stop_here,
    "thread": lambda: in_thread(stop_here),
    "up": caller,
    "two_threads": two_threads,
    "breakpoint": lambda: (debugger.install_breakpoint_hook(), builtin_breakpoint()),
    "post_mortem": post_mortem,
    "bpdb": bpdb_here,
    "bpdb_thread": lambda: in_thread(bpdb_here),
    "bpdb_class": bpdb_class,
    "serve": serve,
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]]()
