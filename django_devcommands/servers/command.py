"""The one shape of a server command: an option spec and a launcher, nothing else.

``runcpserver`` and ``runfcgi`` differ only in which spec parses their options and which
launcher serves; everything about turning launcher errors into ``CommandError`` and exit
statuses is written here once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, ClassVar, TextIO

from django.core.management.base import BaseCommand, CommandError

from django_devcommands import options as o
from django_devcommands.servers.process import ProcessError

Launcher = Callable[..., int]


class ServerCommand(BaseCommand):
    """Subclasses set :attr:`spec` and :meth:`launch`; ``handle`` is shared."""

    spec: ClassVar[o.OptionSpec]

    def launch(self, resolved: o.Resolved, *, stdout: TextIO, stderr: TextIO) -> int:
        raise NotImplementedError

    def add_arguments(self, parser: Any) -> None:
        self.spec.add_arguments(parser)

    def handle(self, *args: str, **options: Any) -> None:
        resolved = self.spec.resolve(options.pop("args", None) or list(args), options)
        try:
            code = self.launch(resolved, stdout=self.stdout, stderr=self.stderr)
        except ProcessError as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from None
        except (ImportError, ValueError, OSError) as exc:
            # A missing extra, inconsistent options, a port in use: one line, no traceback.
            raise CommandError(str(exc)) from None
        if code:
            sys.exit(code)
