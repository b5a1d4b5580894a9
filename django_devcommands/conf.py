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
    # Project defaults for runcpserver options ({"workers": 4, "access_log": "-"}); the
    # command line wins over these.
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

    @property
    def RUNCPSERVER(self) -> dict[str, Any]:
        value = self.get("RUNCPSERVER")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def RUNFCGI(self) -> dict[str, Any]:
        value = self.get("RUNFCGI")
        return dict(value) if isinstance(value, dict) else {}


conf = Settings()
