"""``runfcgi``: serve the project over FastCGI, SCGI or AJP to a front web server (nginx).

Thin by design: the options come from :data:`django_devcommands.servers.fastcgi.SPEC`,
the work from :func:`django_devcommands.servers.fastcgi.launch`.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_devcommands.servers import fastcgi
from django_devcommands.servers.process import ProcessError


class Command(BaseCommand):
    help = (
        "Serves the project over FastCGI, SCGI or AJP (flup) to a web server such as nginx: "
        "options as key=value or --key value; 'stop' and 'status' act on the server named "
        "by pidfile=; 'nginx' prints an nginx server block for the given options."
    )
    spec = fastcgi.SPEC

    def add_arguments(self, parser: Any) -> None:
        self.spec.add_arguments(parser)

    def handle(self, *args: str, **options: Any) -> None:
        resolved = self.spec.resolve(options.pop("args", None) or list(args), options)
        try:
            code = fastcgi.launch(resolved, stdout=self.stdout, stderr=self.stderr)
        except ProcessError as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from None
        except (ImportError, ValueError, OSError) as exc:
            raise CommandError(str(exc)) from None
        if code:
            sys.exit(code)
