"""Sphinx directive rendering a command's option table from its ``OptionSpec``.

The spec that parses ``key=value`` and ``--flags`` also writes the docs table, so the two
cannot disagree. Usage::

    .. devcommands-options:: django_devcommands.management.commands.runcpserver.Command
"""

from __future__ import annotations

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from django.utils.module_loading import import_string

from django_devcommands.options import OptionSpec


def find_spec(target: object) -> OptionSpec:
    if isinstance(target, OptionSpec):
        return target
    for name in dir(target):
        value = getattr(target, name, None)
        if isinstance(value, OptionSpec):
            return value
    raise ValueError(f"{target!r} has no OptionSpec attribute")


class OptionsDirective(SphinxDirective):
    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        spec = find_spec(import_string(self.arguments[0]))
        container = nodes.container()
        self.state.nested_parse(StringList(spec.rst_table().splitlines()), self.content_offset, container)
        return container.children


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("devcommands-options", OptionsDirective)
    return {"parallel_read_safe": True, "version": "1"}
