"""Option specs shared by the server commands.

One :class:`OptionSpec` per command drives everything a user sees of its options:
``key=value`` positional arguments (the django-cpserver / old ``runfcgi`` style),
the equivalent ``--key value`` flags, the ``--help`` text and the table in the docs.
Keeping them in one list means they cannot drift apart.

Everything here is a pure function of its input, so it is tested with
parametrize tables rather than by running commands.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.management import CommandError

TRUE_WORDS = frozenset({"true", "yes", "on", "1", "y", "t"})
FALSE_WORDS = frozenset({"false", "no", "off", "0", "n", "f"})


@dataclass(frozen=True)
class ValueType:
    """A parser from the text a user typed to a typed value.

    ``description`` completes the sentence "expected ..." in error messages and
    names the type in ``--help`` and in the docs.
    """

    description: str
    parse: Callable[[str], Any]

    def __call__(self, raw: Any) -> Any:
        if raw is None:
            return None
        # call_command() may hand us Python values (port=0, daemonize=False):
        # they go through the same parser as typed text, so the rules are one.
        return self.parse(str(raw).strip())


def _parse_bool(text: str) -> bool:
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(text)


def _int_in(low: int | None, high: int | None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text, 10)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(text)
        return value

    return parse


def _parse_float(text: str) -> float:
    value = float(text)
    if value < 0 or value != value or value == float("inf"):
        raise ValueError(text)
    return value


def _parse_octal(text: str) -> int:
    value = int(text.removeprefix("0o"), 8)
    if not 0 <= value <= 0o777:
        raise ValueError(text)
    return value


def _parse_string(text: str) -> str:
    if not text:
        raise ValueError(text)
    return text


def _parse_workers(text: str) -> int:
    if text.lower() == "auto":
        return os.cpu_count() or 1
    return _int_in(1, 1024)(text)


boolean = ValueType("a boolean (true/false, yes/no, on/off, 1/0)", _parse_bool)
port = ValueType("a port number from 0 to 65535", _int_in(0, 65535))
positive_int = ValueType("a whole number of 1 or more", _int_in(1, None))
non_negative_int = ValueType("a whole number of 0 or more", _int_in(0, None))
seconds = ValueType("a number of seconds (0 or more)", _parse_float)
octal = ValueType("an octal file mode from 000 to 777, such as 022", _parse_octal)
string = ValueType("a non-empty string", _parse_string)
path = ValueType("a file system path", _parse_string)
workers = ValueType("a whole number from 1 to 1024, or 'auto' for the CPU count", _parse_workers)


def choice(*values: str, aliases: Mapping[str, str] | None = None) -> ValueType:
    """A value from a fixed list; ``aliases`` map old spellings onto it (``fork`` -> ``prefork``)."""
    table = {v.lower(): v for v in values}
    table.update({k.lower(): v for k, v in (aliases or {}).items()})

    def parse(text: str) -> str:
        try:
            return table[text.lower()]
        except KeyError:
            raise ValueError(text) from None

    shown = ", ".join(values)
    if aliases:
        shown += " (also " + ", ".join(f"{k}={v}" for k, v in aliases.items()) + ")"
    return ValueType(f"one of {shown}", parse)


@dataclass(frozen=True)
class Option:
    """One option of a command: its name, how to parse it, its default and its help."""

    name: str
    type: ValueType
    default: Any = None
    help: str = ""
    #: Shown in help and docs instead of ``repr(default)`` when the default is computed.
    default_text: str | None = None
    #: Other names for the same option (``pm`` for ``pdb``), as ``key=`` and as ``--flag``.
    aliases: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def is_boolean(self) -> bool:
        return self.type is boolean

    def describe_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        if self.default is None:
            return "unset"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if self.type is octal:
            return f"{self.default:03o}"
        return str(self.default)


@dataclass
class Resolved:
    """The outcome of parsing a command line: bare action words and typed values."""

    actions: list[str]
    values: dict[str, Any]
    #: Names the user set explicitly (either way); the rest hold defaults.
    given: set[str] = field(default_factory=set)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def normalize_key(key: str) -> str:
    return key.strip().lower().replace("-", "_")


class OptionSpec:
    """The options (and bare action words such as ``stop``) of one command."""

    def __init__(self, options: Iterable[Option], actions: Sequence[str] = ()) -> None:
        self.options: dict[str, Option] = {}
        #: Every accepted key, aliases included, to its option's name.
        self.keys: dict[str, str] = {}
        for option in options:
            for key in (option.name, *option.aliases):
                if key in self.keys:
                    raise ValueError(f"option {key!r} declared twice")
                self.keys[key] = option.name
            self.options[option.name] = option
        self.actions = tuple(actions)

    def __iter__(self) -> Iterator[Option]:
        return iter(self.options.values())

    # -- argparse ---------------------------------------------------------------------

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the positional ``key=value`` list and one ``--flag`` per option.

        The parser is switched to intermixed parsing: plain argparse matches a ``*``
        positional once, so ``port=80 --daemonize workers=2`` would reject ``workers=2``.
        """
        parser.parse_args = functools.partial(  # type: ignore[method-assign,assignment]
            argparse.ArgumentParser.parse_intermixed_args, parser
        )
        words = f" or an action ({', '.join(self.actions)})" if self.actions else ""
        parser.add_argument(
            "args",
            nargs="*",
            metavar="key=value",
            help=f"Options as key=value{words}; keys: {', '.join(self.options)}.",
        )
        for option in self:
            names = [option.flag]
            if "_" in option.name:
                names.append("--" + option.name)
            names += ["--" + alias.replace("_", "-") for alias in option.aliases]
            text = (
                f"{option.help} ({option.type.description}; default: {option.describe_default()})"
            )
            if option.is_boolean:
                parser.add_argument(
                    *names,
                    dest=option.name,
                    action="store_const",
                    const="true",
                    default=None,
                    help=text,
                )
                parser.add_argument(
                    "--no-" + option.name.replace("_", "-"),
                    dest=option.name,
                    action="store_const",
                    const="false",
                    default=None,
                    help=argparse.SUPPRESS,
                )
            else:
                parser.add_argument(*names, dest=option.name, default=None, help=text)

    # -- resolution -------------------------------------------------------------------

    def unknown_key_error(self, key: str) -> CommandError:
        valid = list(self.options)
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return CommandError(f"Unknown option {key!r}.{hint} Valid options: {', '.join(valid)}.")

    def parse_value(self, name: str, raw: Any) -> Any:
        option = self.options[name]
        try:
            return option.type(raw)
        except (ValueError, TypeError):
            raise CommandError(
                f"Bad value for {name}: {raw!r} is not {option.type.description}."
            ) from None

    def resolve(self, positional: Sequence[str], flags: Mapping[str, Any]) -> Resolved:
        """Merge ``key=value`` words and ``--flag`` values into typed values with defaults.

        ``flags`` is the parsed options mapping (extra keys such as ``verbosity`` are
        ignored). The same key given twice with different values is an error rather
        than a silent "last one wins".
        """
        actions: list[str] = []
        raw: dict[str, Any] = {}
        for word in positional:
            if "=" in word:
                key, _, value = word.partition("=")
                key = normalize_key(key)
                if key not in self.keys:
                    raise self.unknown_key_error(key)
                key = self.keys[key]
                if key in raw and raw[key] != value:
                    raise CommandError(f"Option {key} given twice ({raw[key]!r} and {value!r}).")
                raw[key] = value
            elif word.lower() in self.actions:
                actions.append(word.lower())
            else:
                close = difflib.get_close_matches(
                    normalize_key(word), [*self.options, *self.actions], n=1
                )
                hint = f" Did you mean {close[0]!r}?" if close else ""
                expected = "key=value" + (
                    f" or one of {', '.join(self.actions)}" if self.actions else ""
                )
                raise CommandError(f"Unexpected argument {word!r}: expected {expected}.{hint}")
        for name in self.options:
            flag_value = flags.get(name)
            if flag_value is None:
                continue
            if name in raw and self.parse_value(name, raw[name]) != self.parse_value(
                name, flag_value
            ):
                raise CommandError(
                    f"Option {name} given twice ({name}={raw[name]} and {self.options[name].flag} {flag_value})."
                )
            raw[name] = flag_value
        if len(actions) > 1:
            raise CommandError(f"Give one action at most, not {' and '.join(actions)}.")
        values = {}
        for name, option in self.options.items():
            values[name] = self.parse_value(name, raw[name]) if name in raw else option.default
        return Resolved(actions=actions, values=values, given=set(raw))

    def with_project_defaults(
        self,
        resolved: Resolved,
        defaults: Mapping[str, Any],
        exclusive: Sequence[Sequence[str]] = (),
    ) -> Resolved:
        """``resolved`` with a settings dict of option values under it: the command line wins.

        Keys set here count as given (a project that sets ``socket`` has chosen it). A
        default is dropped when the command line gives an option of another group of
        ``exclusive`` (``socket=`` typed over a project's ``host``/``port``). Unknown keys
        are skipped: the system check for the setting reports them.
        """
        values = dict(resolved.values)
        given = set(resolved.given)
        for key, raw in defaults.items():
            name = self.keys.get(normalize_key(str(key)))
            if name is None or name in resolved.given:
                continue
            rivals = {other for group in exclusive if name not in group for other in group}
            if any(name in group for group in exclusive) and rivals & resolved.given:
                continue
            values[name] = self.parse_value(name, raw)
            given.add(name)
        return Resolved(actions=list(resolved.actions), values=values, given=given)

    # -- docs -------------------------------------------------------------------------

    def rst_table(self) -> str:
        """A reStructuredText list-table of the options, for the docs."""
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 18 30 14 38",
            "",
            "   * - Option",
            "     - Type",
            "     - Default",
            "     - Meaning",
        ]
        for option in self:
            flag = f"``{option.flag}``" + (
                f" / ``--no-{option.name.replace('_', '-')}``" if option.is_boolean else ""
            )
            also = "".join(f" (also ``{alias}=``)" for alias in option.aliases)
            lines += [
                f"   * - ``{option.name}=`` / {flag}{also}",
                f"     - {option.type.description}",
                f"     - ``{option.describe_default()}``",
                f"     - {option.help or '-'}",
            ]
        return "\n".join(lines) + "\n"
