"""Every Django-version difference, in one place, each branch commented with its version."""

from __future__ import annotations

from collections import defaultdict
from importlib import import_module
from typing import Any

import django
from django.apps import apps
from django.core.exceptions import AppRegistryNotReady
from django.core.management.commands import shell as django_shell
from django.utils.module_loading import import_string

DJANGO_VERSION: tuple[int, int] = django.VERSION[:2]

# Django 5.2 added automatic model imports to ``shell`` (get_auto_imports,
# get_namespace, --no-imports). On 4.2 we provide the same behaviour ourselves.
HAS_SHELL_AUTO_IMPORTS: bool = DJANGO_VERSION >= (5, 2)


class _AutoImportsMixin:
    """Django 4.2 only: the 5.2 auto-import API, so our shell behaves alike on both."""

    stdout: Any
    style: Any

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)  # type: ignore[misc]
        parser.add_argument(
            "--no-imports", action="store_true", help="Disable automatic imports of models."
        )

    def get_auto_imports(self) -> list[str] | None:
        return [
            f"{model.__module__}.{model.__name__}"
            for model in reversed(apps.get_models())
            if model.__module__
        ]

    def get_namespace(self, **options: Any) -> dict[str, Any]:
        if options.get("no_imports"):
            return {}
        try:
            apps.check_models_ready()
        except AppRegistryNotReady:
            return {}
        paths = self.get_auto_imports()
        if paths is None:
            return {}
        by_module: dict[str | None, list[tuple[str, Any]]] = defaultdict(list)
        failed = []
        for path in paths:
            try:
                obj = import_string(path) if "." in path else import_module(path)
            except ImportError:
                failed.append(path)
                continue
            module, _, name = path.rpartition(".")
            if (name, obj) not in by_module[module or None]:
                by_module[module or None].append((name, obj))
        namespace = {name: obj for items in by_module.values() for name, obj in items}
        verbosity = options.get("verbosity", 0)
        if verbosity >= 1:
            if failed:
                listing = "\n".join(f"  {p}" for p in failed)
                self.stdout.write(
                    f"{len(failed)} object(s) could not be automatically imported:\n\n{listing}",
                    self.style.ERROR,
                    ending="\n\n",
                )
            msg = f"{len(namespace)} objects imported automatically"
            if verbosity >= 2:
                lines = "\n".join(
                    f"  from {module} import {', '.join(n for n, _ in items)}"
                    for module, items in by_module.items()
                    if items
                )
                msg = f"{msg}:\n\n{lines}" if lines else f"{msg}."
            else:
                msg += " (use -v 2 for details)." if namespace else "."
            self.stdout.write(msg, self.style.SUCCESS, ending="\n\n")
        return namespace


if HAS_SHELL_AUTO_IMPORTS:  # Django >= 5.2
    ShellCommand: type = django_shell.Command
else:  # Django 4.2 (and the unsupported 5.0/5.1)

    class ShellCommand(_AutoImportsMixin, django_shell.Command):  # type: ignore[no-redef]
        pass


def shell_exec_globals() -> dict[str, Any]:
    """The globals Django's ``shell -c`` and stdin execution run code in.

    Django (4.2 and 5.2) executes the code in the globals of its own shell module;
    scripts in the wild rely on names such as ``os`` and ``sys`` being there, so we
    keep that quirk rather than break them.
    """
    return dict(vars(django_shell))
