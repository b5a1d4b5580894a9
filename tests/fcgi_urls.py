"""Views that report the request Django saw, for runfcgi's tests behind real nginx.

``/echo/...`` answers JSON describing ``request``; ``/slow/?s=N`` sleeps; ``/spin/?ms=N``
keeps the CPU busy; ``/stream/?mark=PATH`` streams a chunk, then one more once PATH
exists; and the
WSGI ``application`` raises for ``/__crash__`` before Django sees the request, so
the server's own error page shows (flup's ``error()`` path).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import include, path, re_path, reverse
from django.views.decorators.csrf import csrf_exempt

from tests.spin import spin as spinning


@csrf_exempt
def echo(request: HttpRequest, rest: str = "") -> JsonResponse:
    files = {
        name: {"size": f.size, "sha256": hashlib.sha256(f.read()).hexdigest()}
        for name, f in request.FILES.items()
    }
    return JsonResponse(
        {
            "method": request.method,
            "path": request.path,
            "path_info": request.path_info,
            "script_name": request.META.get("SCRIPT_NAME"),
            "full_path": request.get_full_path(),
            "rest": rest,
            "GET": {k: request.GET.getlist(k) for k in request.GET},
            "POST": {k: request.POST.getlist(k) for k in request.POST},
            "FILES": files,
            "is_secure": request.is_secure(),
            "remote_addr": request.META.get("REMOTE_ADDR"),
            "reverse": reverse("echo-root"),
            "pid": os.getpid(),
        }
    )


def slow(request: HttpRequest) -> HttpResponse:
    time.sleep(float(request.GET.get("s", "1")))
    return HttpResponse(f"slept {os.getpid()}")


_barriers: dict[int, threading.Barrier] = {}
_barriers_lock = threading.Lock()


def barrier(request: HttpRequest) -> HttpResponse:
    """Answers once ``n`` requests are inside this process at the same time (else 503)."""
    n = int(request.GET["n"])
    with _barriers_lock:
        gate = _barriers.setdefault(n, threading.Barrier(n))
    try:
        gate.wait(timeout=float(request.GET.get("timeout", "20")))
    except threading.BrokenBarrierError:
        return HttpResponse("broken", status=503)
    return HttpResponse(f"met {os.getpid()}")


def spin(request: HttpRequest) -> HttpResponse:
    """Keeps the CPU busy for ``ms`` milliseconds (see tests/spin.py)."""
    return HttpResponse(f"inside {spinning(float(request.GET.get('ms', '20')))}")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    """Sends "first", then waits (up to 20 s) for the file ``mark`` before "second"."""
    mark = request.GET["mark"]

    def body():  # type: ignore[no-untyped-def]
        yield b"first\n"
        deadline = time.monotonic() + 20
        while not os.path.exists(mark) and time.monotonic() < deadline:
            time.sleep(0.02)
        yield b"second\n"

    return StreamingHttpResponse(body())


urlpatterns = [
    path("barrier/", barrier),
    path("stream/", stream),
    path("spin/", spin),
    path("echo/", echo, name="echo-root"),
    re_path(r"^echo/(?P<rest>.*)$", echo),
    path("slow/", slow),
    path("", include("exampleproject.urls")),
]

_django = get_wsgi_application()


def application(environ, start_response):  # type: ignore[no-untyped-def]
    if environ.get("PATH_INFO", "").endswith("/__crash__"):
        raise RuntimeError("crash requested by the test: secret-traceback-marker")
    return _django(environ, start_response)
