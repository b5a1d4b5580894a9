"""options.py is pure: parametrize tables over key=value and --flag parsing."""

from __future__ import annotations

import argparse

import pytest
from django.core.management import CommandError

from django_devcommands import options as o

SPEC = o.OptionSpec(
    [
        o.Option("host", o.string, "127.0.0.1", "Address to bind."),
        o.Option("port", o.port, 8088, "Port to bind."),
        o.Option("daemonize", o.boolean, False, "Detach."),
        o.Option("workers", o.workers, 1, "Processes."),
        o.Option("umask", o.octal, 0o022, "File mode mask."),
        o.Option(
            "method",
            o.choice("prefork", "threaded", aliases={"fork": "prefork", "thread": "threaded"}),
            "prefork",
        ),
        o.Option("server_name", o.string, None, "Name."),
        o.Option("timeout", o.seconds, 30.0, "Seconds."),
    ],
    actions=["stop", "status"],
)


def parse(*words: str, **flags: object) -> o.Resolved:
    return SPEC.resolve(list(words), flags)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("True", True),
        ("yes", True),
        ("1", True),
        ("on", True),
        ("false", False),
        ("FALSE", False),
        ("no", False),
        ("0", False),
        ("off", False),
    ],
)
def test_boolean_words(text: str, expected: bool) -> None:
    assert parse(f"daemonize={text}")["daemonize"] is expected


def test_daemonize_false_is_false() -> None:
    # django-cpserver treated any value, "false" included, as true.
    assert parse("daemonize=false")["daemonize"] is False


@pytest.mark.parametrize(
    ("words", "key", "expected"),
    [
        (["port=8089"], "port", 8089),
        (["port=0"], "port", 0),
        (["PORT=80"], "port", 80),
        (["host=::1"], "host", "::1"),
        (["umask=022"], "umask", 0o022),
        (["umask=0o077"], "umask", 0o077),
        (["method=fork"], "method", "prefork"),
        (["method=THREAD"], "method", "threaded"),
        (["server-name=example"], "server_name", "example"),
        (["timeout=2.5"], "timeout", 2.5),
        (["workers=3"], "workers", 3),
        ([], "port", 8088),
        ([], "server_name", None),
    ],
)
def test_key_value(words: list[str], key: str, expected: object) -> None:
    assert parse(*words)[key] == expected


def test_workers_auto_is_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 7)
    assert parse("workers=auto")["workers"] == 7
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # unknown: one worker
    assert parse("workers=auto")["workers"] == 1


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["port=http"], "Bad value for port: 'http' is not a port number from 0 to 65535."),
        (["port=70000"], "Bad value for port: '70000' is not a port number"),
        (["port=-1"], "Bad value for port"),
        (["daemonize=maybe"], "Bad value for daemonize: 'maybe' is not a boolean"),
        (["umask=999"], "Bad value for umask: '999' is not an octal file mode"),
        (["workers=0"], "Bad value for workers: '0'"),
        (["method=forked"], "Bad value for method: 'forked' is not one of prefork, threaded"),
        (["timeout=-3"], "Bad value for timeout"),
        (["host="], "Bad value for host: '' is not a non-empty string."),
        (["prot=80"], "Unknown option 'prot'. Did you mean 'port'? Valid options: host, port,"),
        (["frobnicate=1"], "Unknown option 'frobnicate'. Valid options: host, port"),
        (["8089"], "Unexpected argument '8089': expected key=value or one of stop, status."),
        (["stpo"], "Did you mean 'stop'?"),
        (["port=1", "port=2"], "Option port given twice ('1' and '2')."),
        (["stop", "status"], "Give one action at most, not stop and status."),
    ],
)
def test_errors(words: list[str], message: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        parse(*words)
    assert message in str(excinfo.value)


def test_actions_and_given() -> None:
    resolved = parse("stop", "port=9000")
    assert resolved.actions == ["stop"]
    assert resolved.given == {"port"}


def test_flags_and_key_value_agree() -> None:
    assert parse("port=9000", port="9000")["port"] == 9000
    with pytest.raises(CommandError, match="given twice"):
        parse("port=9000", port="9001")


def test_call_command_style_python_values() -> None:
    resolved = parse(port=0, daemonize=False, workers=2)
    assert (resolved["port"], resolved["daemonize"], resolved["workers"]) == (0, False, 2)


def test_argparse_flags_round_trip() -> None:
    parser = argparse.ArgumentParser()
    SPEC.add_arguments(parser)
    ns = vars(parser.parse_args(["port=1", "--host", "::1", "--daemonize", "--server-name", "x"]))
    resolved = SPEC.resolve(ns.pop("args"), ns)
    assert resolved.values["host"] == "::1"
    assert resolved.values["daemonize"] is True
    assert resolved.values["server_name"] == "x"
    assert resolved.values["port"] == 1
    ns = vars(parser.parse_args(["--no-daemonize", "--server_name=y"]))
    resolved = SPEC.resolve(ns.pop("args"), ns)
    assert resolved.values["daemonize"] is False
    assert resolved.values["server_name"] == "y"


def test_help_mentions_type_and_default() -> None:
    parser = argparse.ArgumentParser()
    SPEC.add_arguments(parser)
    text = " ".join(parser.format_help().split())
    assert "--port PORT" in text
    assert "default: 8088" in text
    assert "keys: host, port, daemonize" in text


def test_rst_table_lists_every_option() -> None:
    table = SPEC.rst_table()
    for option in SPEC:
        assert f"``{option.name}=``" in table
    assert "``022``" in table  # octal default shown as a mode


def test_duplicate_option_names_rejected() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        o.OptionSpec([o.Option("port", o.port), o.Option("port", o.port)])


ALIASED = o.OptionSpec([o.Option("pdb", o.boolean, False, "Post-mortem.", aliases=("pm",))])


@pytest.mark.parametrize("words", [["pdb=1"], ["pm=1"], ["PM=yes"]])
def test_alias_key_value(words: list[str]) -> None:
    assert ALIASED.resolve(words, {}).values == {"pdb": True}


def test_alias_flag_and_docs() -> None:
    parser = argparse.ArgumentParser()
    ALIASED.add_arguments(parser)
    ns = vars(parser.parse_args(["--pm"]))
    assert ALIASED.resolve(ns.pop("args"), ns).values == {"pdb": True}
    assert "(also ``pm=``)" in ALIASED.rst_table()


def test_alias_clash_rejected() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        o.OptionSpec([o.Option("pdb", o.boolean, aliases=("pm",)), o.Option("pm", o.boolean)])


def test_flags_between_key_values() -> None:
    """argparse alone matches a '*' positional once: key=value after a --flag must still parse."""
    from django.core.management.base import CommandParser

    parser = CommandParser()
    SPEC.add_arguments(parser)
    ns = vars(parser.parse_args(["port=1", "--daemonize", "workers=2", "--host", "::1", "stop"]))
    resolved = SPEC.resolve(ns.pop("args"), ns)
    assert resolved.values["port"] == 1
    assert resolved.values["workers"] == 2
    assert resolved.values["daemonize"] is True
    assert resolved.values["host"] == "::1"
    assert resolved.actions == ["stop"]


@pytest.mark.parametrize(
    ("words", "defaults", "expected"),
    [
        ([], {"port": "9000", "workers": 2}, {"port": 9000, "workers": 2}),
        (["port=1"], {"port": "9000"}, {"port": 1}),  # the command line wins
        ([], {"PORT": 5}, {"port": 5}),  # keys normalised like key=value
        (["server_name=x"], {"host": "::1", "port": 9}, {"host": "::1", "port": 9}),
    ],
)
def test_project_defaults_under_the_command_line(words, defaults, expected) -> None:
    resolved = SPEC.with_project_defaults(SPEC.resolve(words, {}), defaults)
    for key, value in expected.items():
        assert resolved.values[key] == value
    assert set(expected) <= resolved.given


def test_project_defaults_yield_to_a_rival_on_the_command_line() -> None:
    spec = o.OptionSpec(
        [
            o.Option("host", o.string, "127.0.0.1"),
            o.Option("port", o.port, 80),
            o.Option("socket", o.path),
        ]
    )
    groups = (("socket",), ("host", "port"))
    cli_socket = spec.resolve(["socket=/run/a.sock"], {})
    resolved = spec.with_project_defaults(cli_socket, {"host": "::1", "port": 9}, groups)
    assert resolved.values == {"host": "127.0.0.1", "port": 80, "socket": "/run/a.sock"}
    assert resolved.given == {"socket"}
    cli_port = spec.resolve(["port=8"], {})
    resolved = spec.with_project_defaults(cli_port, {"socket": "/run/b.sock"}, groups)
    assert resolved.values["socket"] is None
