from __future__ import annotations

from django.apps import AppConfig


class DevCommandsConfig(AppConfig):
    name = "django_devcommands"
    verbose_name = "Django dev commands"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        # Imported for its side effect: registering the system checks.
        from django_devcommands import checks  # noqa: F401
        from django_devcommands.conf import conf

        if conf.BREAKPOINT:
            # breakpoint() and bpdb.set_trace() -> our debugger, only when DEBUG (or forced).
            from django_devcommands.debugger import adopt_bpdb, install_breakpoint_hook

            install_breakpoint_hook()
            adopt_bpdb()
