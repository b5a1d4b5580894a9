"""``runcpserver``: serve the project with cheroot, one process or a prefork pool.

Thin by design: the options come from :data:`django_devcommands.servers.http.SPEC`,
the work from :func:`django_devcommands.servers.http.launch`.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_devcommands.servers import http
from django_devcommands.servers.process import ProcessError


class Command(BaseCommand):
    help = (
        "Serves the project with cheroot (CherryPy's WSGI server): options as key=value or "
        "--key value; 'stop' and 'status' act on the server named by pidfile=."
    )
    spec = http.SPEC

    def add_arguments(self, parser: Any) -> None:
        self.spec.add_arguments(parser)

    def handle(self, *args: str, **options: Any) -> None:
        resolved = self.spec.resolve(options.pop("args", None) or list(args), options)
        try:
            code = http.launch(resolved, stdout=self.stdout, stderr=self.stderr)
        except ProcessError as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from None
        except (ImportError, ValueError, OSError) as exc:
            raise CommandError(str(exc)) from None
        if code:
            sys.exit(code)
