"""``shell`` with ``--bpython/--ipython/--ptpython/--plain`` and graceful fallback.

Subclasses Django's own ``shell`` (through :mod:`django_devcommands.compat`) so
``-c``, ``--no-startup``, ``--no-imports`` and the automatic model imports keep
their meaning; the choosing and starting lives in :mod:`django_devcommands.shells`.
"""

from __future__ import annotations

import sys
from typing import Any

from django_devcommands import shells
from django_devcommands.compat import ShellCommand, shell_exec_globals
from django_devcommands.conf import conf


class Command(ShellCommand):
    help = (
        "Runs a Python interactive interpreter: bpython, IPython, ptpython or plain "
        "Python, in the order of DEVCOMMANDS['SHELL_INTERFACES'], falling back with a "
        "one-line warning when one is missing. Standard input that is not a terminal "
        "is executed as code."
    )
    # Django builds the -i/--interface choices from this list.
    shells = [*shells.INTERFACES, *shells.ALIASES]

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        for action in parser._actions:
            if action.dest == "interface":
                action.help = f"Interface to start: {', '.join(self.shells)}."
        for flag, name in (
            ("--bpython", "bpython"),
            ("--ipython", "ipython"),
            ("--ptpython", "ptpython"),
            ("--plain", "python"),
        ):
            parser.add_argument(
                flag,
                dest="interface",
                action="store_const",
                const=name,
                help=f"Start {shells.INTERFACES[name].label} (same as -i {name}).",
            )

    def handle(self, **options: Any) -> None:
        if options["command"]:
            return self.execute_source(options["command"], options)
        # Not a terminal: run what is piped in, as Django does. Never hand a pipe
        # to bpython, whose embed() would re-exec the interpreter and lose the project.
        if not sys.stdin.isatty():
            return self.execute_source(sys.stdin.read(), options, filename="<stdin>")
        choice = shells.choose(
            options.get("interface"),
            conf.SHELL_INTERFACES,
            terminal=sys.stdout.isatty(),
        )
        if choice.warning:
            self.stderr.write(choice.warning, self.style.WARNING)
        shells.start(
            choice.interface,
            self.get_namespace(**options),
            no_startup=options["no_startup"],
            stderr=self.stderr,
        )

    def execute_source(
        self, source: str, options: dict[str, Any], filename: str = "<command>"
    ) -> None:
        shells.run_source(
            source, {**shell_exec_globals(), **self.get_namespace(**options)}, filename
        )
