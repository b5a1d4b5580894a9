"""``runfcgi``: serve the project over FastCGI, SCGI or AJP to a front web server (nginx).

Thin by design: the options come from :data:`django_devcommands.servers.fastcgi.SPEC`,
the work from :func:`django_devcommands.servers.fastcgi.launch`.
"""

from __future__ import annotations

from typing import TextIO

from django_devcommands import options as o
from django_devcommands.servers import fastcgi
from django_devcommands.servers.command import ServerCommand


class Command(ServerCommand):
    help = (
        "Serves the project over FastCGI, SCGI or AJP (flup) to a web server such as nginx: "
        "options as key=value or --key value; 'stop' and 'status' act on the server named "
        "by pidfile=; 'nginx' prints an nginx server block for the given options."
    )
    spec = fastcgi.SPEC

    def launch(self, resolved: o.Resolved, *, stdout: TextIO, stderr: TextIO) -> int:
        return fastcgi.launch(resolved, stdout=stdout, stderr=stderr)
