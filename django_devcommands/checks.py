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
    errors.extend(_check_shell_interfaces(raw.get("SHELL_INTERFACES", DEFAULTS["SHELL_INTERFACES"])))
    errors.extend(
        check_solr_settings({k: raw.get(k, DEFAULTS[k]) for k in DEFAULTS if k.startswith("SOLR_")})
    )
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


# -- solr (E3xx/W3xx) ------------------------------------------------------------------------

_SOLR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _solr_error(key: str, message: str, hint: str | None, id: str) -> Error:
    return Error(f"DEVCOMMANDS['{key}'] {message}", hint=hint, id=id)


def check_solr_settings(values: dict[str, Any]) -> list[CheckMessage]:
    """Validate the SOLR_* settings (ids devcommands.E301-E309, W301)."""
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
        elif (
            values["SOLR_AUTH"]
            and parsed.scheme == "http"
            and parsed.hostname not in ("127.0.0.1", "localhost", "::1")
        ):
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
