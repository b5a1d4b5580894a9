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
    # -- solr -------------------------------------------------------------------------
    #: Base URL of Solr (".../solr"); None: the local Solr that ``solr --start`` runs.
    "SOLR_URL": None,
    #: "standalone" (cores) or "cloud" (SolrCloud collections, configsets, aliases).
    "SOLR_MODE": "standalone",
    #: Core (standalone) or collection/alias (cloud) that searches use.
    "SOLR_COLLECTION": "devcommands",
    #: Name of the configset ``--create`` uploads or copies.
    "SOLR_CONFIGSET": "devcommands",
    "SOLR_SHARDS": 1,
    "SOLR_REPLICAS": 1,
    #: Seconds to wait for any one Solr request.
    "SOLR_TIMEOUT": 10.0,
    "SOLR_BATCH_SIZE": 1000,
    #: None, or (user, password) for HTTP basic authentication.
    "SOLR_AUTH": None,
    #: Update the index on save/delete of indexed models (batched per transaction).
    "SOLR_SIGNALS": False,
    #: Standalone cores keep Solr's transaction log (False: cores made by --create and
    #: --swap skip it; faster bulk indexing, see docs/settings/solr.rst). Cloud needs it.
    "SOLR_UPDATE_LOG": True,
    #: A Solr install (the directory holding bin/solr) for --start/--stop; None: Maven.
    "SOLR_INSTALL": None,
    #: Where the local Solr keeps its data and state; None: a per-user cache directory.
    "SOLR_LOCAL_DIR": None,
    #: Solr version the Maven-provisioned local Solr runs.
    "SOLR_VERSION": "9.10.1",
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

    # -- solr -------------------------------------------------------------------------

    @property
    def SOLR_URL(self) -> str | None:
        value = self.get("SOLR_URL")
        return str(value).rstrip("/") if value else None

    @property
    def SOLR_MODE(self) -> str:
        return str(self.get("SOLR_MODE"))

    @property
    def SOLR_COLLECTION(self) -> str:
        return str(self.get("SOLR_COLLECTION"))

    @property
    def SOLR_CONFIGSET(self) -> str:
        return str(self.get("SOLR_CONFIGSET"))

    @property
    def SOLR_SHARDS(self) -> int:
        return int(self.get("SOLR_SHARDS"))

    @property
    def SOLR_REPLICAS(self) -> int:
        return int(self.get("SOLR_REPLICAS"))

    @property
    def SOLR_TIMEOUT(self) -> float:
        return float(self.get("SOLR_TIMEOUT"))

    @property
    def SOLR_BATCH_SIZE(self) -> int:
        return int(self.get("SOLR_BATCH_SIZE"))

    @property
    def SOLR_AUTH(self) -> tuple[str, str] | None:
        value = self.get("SOLR_AUTH")
        return (str(value[0]), str(value[1])) if value else None

    @property
    def SOLR_SIGNALS(self) -> bool:
        return bool(self.get("SOLR_SIGNALS"))

    @property
    def SOLR_UPDATE_LOG(self) -> bool:
        return bool(self.get("SOLR_UPDATE_LOG"))

    @property
    def SOLR_INSTALL(self) -> str | None:
        value = self.get("SOLR_INSTALL")
        return str(value) if value else None

    @property
    def SOLR_LOCAL_DIR(self) -> str | None:
        value = self.get("SOLR_LOCAL_DIR")
        return str(value) if value else None

    @property
    def SOLR_VERSION(self) -> str:
        return str(self.get("SOLR_VERSION"))

    @property
    def RUNFCGI(self) -> dict[str, Any]:
        value = self.get("RUNFCGI")
        return dict(value) if isinstance(value, dict) else {}


conf = Settings()
