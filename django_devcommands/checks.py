"""System checks for ``settings.DEVCOMMANDS``, one stable id per problem.

Ids are part of the public interface (users silence them with
``SILENCED_SYSTEM_CHECKS``); never renumber one.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.core.checks import CheckMessage, Error, Warning, register

from django_devcommands.conf import DEFAULTS, conf


@register()
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    raw = conf.raw
    if not isinstance(raw, dict):
        return [
            Error(
                f"DEVCOMMANDS must be a dict, not {type(raw).__name__}.",
                id="devcommands.E001",
            )
        ]
    errors: list[CheckMessage] = []
    for key in raw:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
            errors.append(
                Warning(
                    f"DEVCOMMANDS has an unknown key {key!r}.",
                    hint=f"Did you mean {close[0]!r}?" if close else None,
                    id="devcommands.W001",
                )
            )
    errors.extend(
        _check_shell_interfaces(raw.get("SHELL_INTERFACES", DEFAULTS["SHELL_INTERFACES"]))
    )
    errors.extend(_check_debugger(raw))
    errors.extend(_check_runcpserver(raw.get("RUNCPSERVER", DEFAULTS["RUNCPSERVER"])))
    errors.extend(
        check_solr_settings({k: raw.get(k, DEFAULTS[k]) for k in DEFAULTS if k.startswith("SOLR_")})
    )
    errors.extend(_check_runfcgi(raw.get("RUNFCGI", DEFAULTS["RUNFCGI"])))
    return errors


def _check_shell_interfaces(value: Any) -> list[CheckMessage]:
    from django_devcommands.shells import INTERFACES, canonical_name

    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        return [
            Error(
                "DEVCOMMANDS['SHELL_INTERFACES'] must be a non-empty list of interface names.",
                hint=f"Choose from {', '.join(INTERFACES)}.",
                id="devcommands.E002",
            )
        ]
    bad = [name for name in value if canonical_name(name) is None]
    if bad:
        return [
            Error(
                f"DEVCOMMANDS['SHELL_INTERFACES'] names unknown interfaces: {', '.join(map(repr, bad))}.",
                hint=f"Choose from {', '.join(INTERFACES)} (or 'plain' for 'python').",
                id="devcommands.E003",
            )
        ]
    return []


def _check_debugger(raw: dict[str, Any]) -> list[CheckMessage]:
    """Debugger settings: ids devcommands.E4xx / W4xx."""
    from django.conf import settings

    from django_devcommands.debugger import BACKENDS
    from django_devcommands.net import is_loopback

    def value(key: str) -> Any:
        return raw.get(key, DEFAULTS[key])

    errors: list[CheckMessage] = []
    debuggers = value("DEBUGGERS")
    if isinstance(debuggers, str) or not isinstance(debuggers, (list, tuple)) or not debuggers:
        errors.append(
            Error(
                "DEVCOMMANDS['DEBUGGERS'] must be a non-empty list of debugger names.",
                hint=f"Choose from {', '.join(BACKENDS)}.",
                id="devcommands.E401",
            )
        )
    else:
        bad = [name for name in debuggers if name not in BACKENDS]
        if bad:
            errors.append(
                Error(
                    "DEVCOMMANDS['DEBUGGERS'] names unknown debuggers: "
                    f"{', '.join(map(repr, bad))}.",
                    hint=f"Choose from {', '.join(BACKENDS)}.",
                    id="devcommands.E402",
                )
            )
    for key in (
        "BREAKPOINT",
        "DEBUGGER_FORCE",
        "DEBUGGER_REMOTE",
        "DEBUGGER_REMOTE_ALLOW_NON_LOOPBACK",
    ):
        if not isinstance(value(key), bool):
            errors.append(
                Error(f"DEVCOMMANDS[{key!r}] must be True or False.", id="devcommands.E403")
            )
    port = value("DEBUGGER_REMOTE_PORT")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        errors.append(
            Error(
                "DEVCOMMANDS['DEBUGGER_REMOTE_PORT'] must be an integer from 0 to 65535.",
                hint="0 picks a free port, logged with the connect instructions.",
                id="devcommands.E404",
            )
        )
    timeout = value("DEBUGGER_REMOTE_TIMEOUT")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < 1e6:
        errors.append(
            Error(
                "DEVCOMMANDS['DEBUGGER_REMOTE_TIMEOUT'] must be a positive number of seconds.",
                id="devcommands.E405",
            )
        )
    host = value("DEBUGGER_REMOTE_HOST")
    if not isinstance(host, str) or not host:
        errors.append(
            Error(
                "DEVCOMMANDS['DEBUGGER_REMOTE_HOST'] must be a host name or IP address.",
                id="devcommands.E406",
            )
        )
    elif not is_loopback(host):
        if value("DEBUGGER_REMOTE_ALLOW_NON_LOOPBACK") is True:
            errors.append(
                Warning(
                    f"The remote debugger listens on {host!r}, beyond this machine: anyone "
                    "who can reach it can run code in this process.",
                    hint="Use 127.0.0.1 and an SSH tunnel instead.",
                    id="devcommands.W402",
                )
            )
        else:
            errors.append(
                Error(
                    f"DEVCOMMANDS['DEBUGGER_REMOTE_HOST'] is {host!r}, not a loopback address; "
                    "the remote debugger refuses to listen there.",
                    hint="Use 127.0.0.1 (or set DEBUGGER_REMOTE_ALLOW_NON_LOOPBACK, at your risk).",
                    id="devcommands.E407",
                )
            )
    if value("DEBUGGER_FORCE") is True and not settings.DEBUG:
        errors.append(
            Warning(
                "DEVCOMMANDS['DEBUGGER_FORCE'] is on while DEBUG is False: breakpoints and the "
                "post-mortem middleware open debuggers in this deployment.",
                id="devcommands.W401",
            )
        )
    return errors


def _check_option_defaults(
    setting: str, value: Any, spec: Any, example: str, ids: tuple[str, str, str]
) -> list[CheckMessage]:
    """A dict of a server command's option defaults, parsed by that command's own spec.

    ``ids``: not a dict, an unknown option, a bad value.
    """
    from django.core.management import CommandError

    from django_devcommands.options import normalize_key

    command = setting.lower()
    if not isinstance(value, dict):
        return [
            Error(
                f"DEVCOMMANDS['{setting}'] must be a dict of {command} options.",
                hint=f"For example {example}.",
                id=ids[0],
            )
        ]
    errors: list[CheckMessage] = []
    for key, raw in value.items():
        name = spec.keys.get(normalize_key(str(key)))
        if name is None:
            close = difflib.get_close_matches(str(key), list(spec.options), n=1)
            errors.append(
                Error(
                    f"DEVCOMMANDS['{setting}'] has an unknown option {key!r}.",
                    hint=f"Did you mean {close[0]!r}?" if close else None,
                    id=ids[1],
                )
            )
            continue
        try:
            spec.parse_value(name, raw)
        except CommandError as exc:
            errors.append(Error(f"DEVCOMMANDS['{setting}']: {exc}", id=ids[2]))
    return errors


def _check_runcpserver(value: Any) -> list[CheckMessage]:
    """``RUNCPSERVER``: option defaults (E101-E103)."""
    from django_devcommands.servers.http import SPEC

    return _check_option_defaults(
        "RUNCPSERVER",
        value,
        SPEC,
        '{"workers": 4, "access_log": "-"}',
        ("devcommands.E101", "devcommands.E102", "devcommands.E103"),
    )


# -- solr (E3xx/W3xx) ------------------------------------------------------------------------

_SOLR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _solr_error(key: str, message: str, hint: str | None, id: str) -> Error:
    return Error(f"DEVCOMMANDS['{key}'] {message}", hint=hint, id=id)


def check_solr_settings(values: dict[str, Any]) -> list[CheckMessage]:
    """Validate the SOLR_* settings (ids devcommands.E301-E309, E312, W301)."""
    from django_devcommands.net import is_loopback

    errors: list[CheckMessage] = []
    url = values["SOLR_URL"]
    if url is not None:
        parsed = urlsplit(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
            errors.append(
                _solr_error(
                    "SOLR_URL",
                    f"must be an http(s) URL or None, not {url!r}.",
                    "For example 'http://127.0.0.1:8983/solr'.",
                    "devcommands.E301",
                )
            )
        elif values["SOLR_AUTH"] and parsed.scheme == "http" and not is_loopback(parsed.hostname):
            errors.append(
                Warning(
                    "DEVCOMMANDS['SOLR_AUTH'] sends a password over plain http to "
                    f"{parsed.hostname}.",
                    hint="Use an https SOLR_URL.",
                    id="devcommands.W301",
                )
            )
    if values["SOLR_MODE"] not in ("standalone", "cloud"):
        errors.append(
            _solr_error(
                "SOLR_MODE",
                f"must be 'standalone' or 'cloud', not {values['SOLR_MODE']!r}.",
                None,
                "devcommands.E302",
            )
        )
    for key in ("SOLR_COLLECTION", "SOLR_CONFIGSET"):
        value = values[key]
        if not isinstance(value, str) or not _SOLR_NAME.match(value):
            errors.append(
                _solr_error(
                    key,
                    f"must be a Solr name (letters, digits, . _ -), not {value!r}.",
                    None,
                    "devcommands.E303",
                )
            )
    for key in ("SOLR_SHARDS", "SOLR_REPLICAS", "SOLR_BATCH_SIZE", "SOLR_TIMEOUT"):
        value = values[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value <= 0
            or (key != "SOLR_TIMEOUT" and not isinstance(value, int))
        ):
            kind = (
                "a positive number of seconds" if key == "SOLR_TIMEOUT" else "a whole number >= 1"
            )
            errors.append(
                _solr_error(key, f"must be {kind}, not {value!r}.", None, "devcommands.E304")
            )
    auth = values["SOLR_AUTH"]
    if auth is not None and not (
        isinstance(auth, (tuple, list)) and len(auth) == 2 and all(isinstance(x, str) for x in auth)
    ):
        errors.append(
            _solr_error(
                "SOLR_AUTH", "must be None or a (user, password) pair.", None, "devcommands.E305"
            )
        )
    if not isinstance(values["SOLR_SIGNALS"], bool):
        errors.append(
            _solr_error("SOLR_SIGNALS", "must be True or False.", None, "devcommands.E306")
        )
    update_log = values["SOLR_UPDATE_LOG"]
    if not isinstance(update_log, bool):
        errors.append(
            _solr_error("SOLR_UPDATE_LOG", "must be True or False.", None, "devcommands.E309")
        )
    elif not update_log and values["SOLR_MODE"] == "cloud":
        errors.append(
            _solr_error(
                "SOLR_UPDATE_LOG",
                "cannot be False in cloud mode: SolrCloud replicas recover from the update log.",
                "Remove it, or use SOLR_MODE = 'standalone'.",
                "devcommands.E312",
            )
        )
    install = values["SOLR_INSTALL"]
    if install is not None and not (
        isinstance(install, str) and os.path.isfile(os.path.join(install, "bin", "solr"))
    ):
        errors.append(
            _solr_error(
                "SOLR_INSTALL",
                f"must be a Solr install directory holding bin/solr, or None; {install!r} is not.",
                "Leave it unset to use the Solr assembled from Maven.",
                "devcommands.E307",
            )
        )
    if not isinstance(values["SOLR_VERSION"], str) or not re.fullmatch(
        r"9\.\d+\.\d+", values["SOLR_VERSION"]
    ):
        errors.append(
            _solr_error(
                "SOLR_VERSION",
                f"must be a Solr 9 version such as '9.10.1', not {values['SOLR_VERSION']!r}.",
                None,
                "devcommands.E308",
            )
        )
    return errors


@register()
def check_search_indexes(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Bad index definitions (E310) and modules that fail to load them (E311)."""
    from django_devcommands.solr.indexes import IndexDefinitionError, registry

    try:
        problems = registry.problems()
    except IndexDefinitionError as exc:
        return [Error(str(exc), id="devcommands.E311")]
    return [
        Error(f"Search index {p.index}: {p.message}", hint=p.hint, id="devcommands.E310")
        for p in problems
    ]


def _check_runfcgi(value: Any) -> list[CheckMessage]:
    """``RUNFCGI``: option defaults (E201-E203), socket or host/port (E204), debug (W201)."""
    from django.core.management import CommandError

    from django_devcommands.options import normalize_key
    from django_devcommands.servers.fastcgi import SPEC

    errors = _check_option_defaults(
        "RUNFCGI",
        value,
        SPEC,
        '{"protocol": "scgi", "socket": "/run/project/scgi.sock"}',
        ("devcommands.E201", "devcommands.E202", "devcommands.E203"),
    )
    if not isinstance(value, dict):
        return errors
    # Keys as the command reads them (``Socket``, ``pm``), values parsed by the spec.
    keys = {SPEC.keys.get(normalize_key(str(k))): v for k, v in value.items()}
    if "socket" in keys and ("host" in keys or "port" in keys):
        errors.append(
            Error(
                "DEVCOMMANDS['RUNFCGI'] sets both socket and host/port.",
                hint="Give socket (a Unix socket) or host/port (TCP), not both.",
                id="devcommands.E204",
            )
        )
    try:
        debug_on = "debug" in keys and SPEC.parse_value("debug", keys["debug"]) is True
    except CommandError:  # a bad value: E203 above says so
        debug_on = False
    if debug_on:
        errors.append(
            Warning(
                "DEVCOMMANDS['RUNFCGI'] turns debug on for every run: error pages show tracebacks.",
                hint="Pass debug=true on the command line when you need it.",
                id="devcommands.W201",
            )
        )
    return errors
