"""The example project's URLs plus views that fail or stop (debugger tests)."""

from django.http import HttpResponse
from django.urls import include, path


def boom(request):
    answer = 41
    raise ZeroDivisionError(f"answer={answer}")


def stop(request):
    from django_devcommands import debugger

    answer = 41
    debugger.set_trace()
    return HttpResponse(f"answer={answer}")


def bpdb_stop(request):
    import bpdb

    answer = 41
    bpdb.set_trace()
    return HttpResponse(f"answer={answer}")


def ok(request):
    return HttpResponse("ok")


urlpatterns = [
    path("boom/", boom),
    path("stop/", stop),
    path("bpdb/", bpdb_stop),
    path("ok/", ok),
    path("", include("exampleproject.urls")),
]
