"""``runcpserver``: serve the project with cheroot, one process or a prefork pool.

Thin by design: the options come from :data:`django_devcommands.servers.http.SPEC`,
the work from :func:`django_devcommands.servers.http.launch`.
"""

from __future__ import annotations

from typing import TextIO

from django_devcommands import options as o
from django_devcommands.servers import http
from django_devcommands.servers.command import ServerCommand


class Command(ServerCommand):
    help = (
        "Serves the project with cheroot (CherryPy's WSGI server): options as key=value or "
        "--key value; 'stop' and 'status' act on the server named by pidfile=."
    )
    spec = http.SPEC

    def launch(self, resolved: o.Resolved, *, stdout: TextIO, stderr: TextIO) -> int:
        return http.launch(resolved, stdout=stdout, stderr=stderr)
