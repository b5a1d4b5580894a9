"""One settings object over ``settings.DEVCOMMANDS``, read at call time.

Every property reads Django's settings when it is accessed, never at import, so
``override_settings(DEVCOMMANDS=...)`` in a test takes effect at once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

#: Default for every key of ``settings.DEVCOMMANDS``; the docs' settings page lists these.
DEFAULTS: dict[str, Any] = {
    "SHELL_INTERFACES": ["bpython", "ipython", "ptpython", "python"],
    # Debugger (issue 6): see docs/settings/debugger.rst.
    "BREAKPOINT": False,
    "DEBUGGERS": ["bpdb", "ipdb", "pudb", "pdb"],
    "DEBUGGER_FORCE": False,
    "DEBUGGER_REMOTE": True,
    "DEBUGGER_REMOTE_HOST": "127.0.0.1",
    "DEBUGGER_REMOTE_PORT": 0,
    "DEBUGGER_REMOTE_TIMEOUT": 60.0,
    "DEBUGGER_REMOTE_ALLOW_NON_LOOPBACK": False,
    # runcpserver (issue 3): project defaults for its options, see
    # docs/settings/runcpserver.rst. The command line wins over these.
    "RUNCPSERVER": {},
    # Project defaults for runfcgi options ({"protocol": "scgi", "socket": "/run/app.sock"});
    # the command line wins over these.
    "RUNFCGI": {},
}


class Settings:
    """Typed, live view of ``settings.DEVCOMMANDS``."""

    @property
    def raw(self) -> Any:
        """The user's ``DEVCOMMANDS`` as written (may be anything; checks validate it)."""
        return getattr(settings, "DEVCOMMANDS", {})

    def get(self, key: str) -> Any:
        raw = self.raw
        if isinstance(raw, dict) and key in raw:
            return raw[key]
        return DEFAULTS[key]

    @property
    def SHELL_INTERFACES(self) -> list[str]:
        return list(self.get("SHELL_INTERFACES"))

    # Debugger settings (django_devcommands.debugger; checks E4xx/W4xx).

    @property
    def BREAKPOINT(self) -> bool:
        """Install the ``breakpoint()`` hook in ``AppConfig.ready`` (when debugging is allowed)."""
        return bool(self.get("BREAKPOINT"))

    @property
    def DEBUGGERS(self) -> list[str]:
        """Debuggers to try, in order; ``pdb`` always ends the list."""
        return list(self.get("DEBUGGERS"))

    @property
    def DEBUGGER_FORCE(self) -> bool:
        """Open debuggers even when ``DEBUG`` is false (never the default)."""
        return bool(self.get("DEBUGGER_FORCE"))

    @property
    def DEBUGGER_REMOTE(self) -> bool:
        """Without a terminal, listen for a remote debugger (else skip with a warning)."""
        return bool(self.get("DEBUGGER_REMOTE"))

    @property
    def DEBUGGER_REMOTE_HOST(self) -> str:
        return str(self.get("DEBUGGER_REMOTE_HOST"))

    @property
    def DEBUGGER_REMOTE_PORT(self) -> int:
        """0 picks a free port, logged with the connect instructions."""
        return int(self.get("DEBUGGER_REMOTE_PORT"))

    @property
    def DEBUGGER_REMOTE_TIMEOUT(self) -> float:
        """Seconds to wait for a connection before continuing without a debugger."""
        return float(self.get("DEBUGGER_REMOTE_TIMEOUT"))

    @property
    def DEBUGGER_REMOTE_ALLOW_NON_LOOPBACK(self) -> bool:
        return bool(self.get("DEBUGGER_REMOTE_ALLOW_NON_LOOPBACK"))

    # runcpserver (django_devcommands.servers.http; checks E1xx).

    @property
    def RUNCPSERVER(self) -> dict[str, Any]:
        value = self.get("RUNCPSERVER")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def RUNFCGI(self) -> dict[str, Any]:
        value = self.get("RUNFCGI")
        return dict(value) if isinstance(value, dict) else {}


conf = Settings()
