from __future__ import annotations

from django.apps import AppConfig


class DevCommandsConfig(AppConfig):
    name = "django_devcommands"
    verbose_name = "Django dev commands"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        # Imported for its side effect: registering the system checks.
        from django_devcommands import checks  # noqa: F401
        from django_devcommands.solr import signals

        # Cheap receivers that return at once unless DEVCOMMANDS['SOLR_SIGNALS'] is on.
        signals.connect()
