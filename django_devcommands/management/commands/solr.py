"""``solr``: Solr 9 schema, indexing and zero-downtime reindex, standalone or SolrCloud.

Parses the action flags (solango's ``--fields``, ``--schema``, ``--path``, ``--flush``,
``--reindex``, ``--start`` and more) and hands them to
:func:`django_devcommands.solr.actions.run`.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

ACTION_FLAGS = [
    ("--fields", "fields", "Print the fields and Solr types the schema will create."),
    (
        "--schema",
        "schema",
        "Write the Solr 9 configset (to --path DIR; without --path, print managed-schema.xml).",
    ),
    (
        "--sync-schema",
        "sync_schema",
        "Apply the index definitions to the live core/collection "
        "through the Schema API (idempotent).",
    ),
    (
        "--create",
        "create",
        "Create the core (standalone) or upload the configset and create the "
        "collection and its alias (SolrCloud).",
    ),
    ("--flush", "flush", "Delete all documents (or those of --models); asks unless --noinput."),
    (
        "--reindex",
        "reindex",
        "Index every row again (with --swap: into a fresh index, then switch atomically).",
    ),
    ("--update", "update", "Re-send rows changed within --since and remove deleted rows."),
    (
        "--start",
        "start",
        "Start a local Solr (installed one when SOLR_INSTALL is set, else "
        "assembled from Maven Central).",
    ),
    ("--stop", "stop", "Stop the local Solr."),
    ("--status", "status", "Show Solr's version and mode and the document count."),
]


class Command(BaseCommand):
    help = "Solr 9: write or sync the schema, create the index, (re)index, start a local Solr."

    def add_arguments(self, parser: Any) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        for flag, dest, text in ACTION_FLAGS:
            group.add_argument(flag, dest="action", action="store_const", const=dest, help=text)
        parser.add_argument("--path", help="Directory --schema writes the configset into.")
        parser.add_argument(
            "--models",
            nargs="+",
            default=[],
            metavar="app.Model",
            help="Only these models (--reindex, --update, --flush).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            metavar="N",
            help="Documents per update request (default: SOLR_BATCH_SIZE).",
        )
        parser.add_argument(
            "--swap",
            action="store_true",
            help="With --reindex: build a fresh index and switch atomically.",
        )
        parser.add_argument(
            "--prune",
            action="store_true",
            help="With --sync-schema: delete fields the indexes do not declare.",
        )
        parser.add_argument(
            "--since",
            default=None,
            metavar="DURATION",
            help="With --update: how far back (90s, 15m, 2h, 3d, 1w; default 1d).",
        )
        parser.add_argument(
            "--mode",
            choices=["standalone", "cloud"],
            default=None,
            help="With --start/--stop: override SOLR_MODE.",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=None,
            help="With --start (standalone): port (default: a free one).",
        )
        parser.add_argument(
            "--nodes",
            type=int,
            default=None,
            help="With --start --mode cloud: number of Solr nodes (default 2).",
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation (--flush).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from django_devcommands.solr import actions
        from django_devcommands.solr.errors import SolrError
        from django_devcommands.solr.indexes import IndexDefinitionError

        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError("--batch-size must be 1 or more.")
        for flag, dest, allowed in (
            ("--swap", "swap", ("reindex",)),
            ("--prune", "prune", ("sync_schema",)),
            ("--path", "path", ("schema",)),
            ("--since", "since", ("update",)),
            ("--models", "models", ("reindex", "update", "flush")),
            ("--batch-size", "batch_size", ("reindex", "update")),
            ("--mode", "mode", ("start", "stop")),
            ("--port", "port", ("start", "stop")),
            ("--nodes", "nodes", ("start",)),
        ):
            value = options[dest]  # not given: None, False, "" or [] (0 is a port)
            given = value is not None and value is not False and value not in ("", [])
            if given and options["action"] not in allowed:
                listed = " or ".join(f"--{a.replace('_', '-')}" for a in allowed)
                raise CommandError(f"{flag} goes with {listed}.")
        if options["port"] is not None and not 0 <= options["port"] <= 65535:
            raise CommandError("--port must be from 0 to 65535.")
        if options["nodes"] is not None and options["nodes"] < 1:
            raise CommandError("--nodes must be 1 or more.")
        interactive = options["interactive"]
        request = actions.Request(
            action=options["action"],
            path=options["path"],
            models=options["models"],
            batch_size=options["batch_size"],
            swap=options["swap"],
            prune=options["prune"],
            since=options["since"],
            mode=options["mode"],
            port=options["port"] or 0,
            nodes=options["nodes"] or 2,
            verbosity=options["verbosity"],
            confirm=(lambda q: self.confirm(q)) if interactive else (lambda q: True),
        )
        try:
            actions.run(request, stdout=self.stdout, stderr=self.stderr)
        except (SolrError, IndexDefinitionError) as exc:
            raise CommandError(str(exc)) from None
        except subprocess.TimeoutExpired as exc:  # bin/solr or Maven hanging
            raise CommandError(
                f"{' '.join(map(str, exc.cmd))} did not finish in {exc.timeout:g}s."
            ) from None
        except OSError as exc:  # --path not writable, a Solr home that vanished...
            raise CommandError(
                f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
            ) from None
        except KeyboardInterrupt:
            raise CommandError(interrupted(options["action"], options["swap"])) from None

    def confirm(self, question: str) -> bool:
        self.stdout.write(question, ending="")
        self.stdout.flush()
        answer = sys.stdin.readline()
        return answer.strip().lower() in {"y", "yes"}


def interrupted(action: str, swap: bool) -> str:
    """What a Ctrl-C left behind, in one line."""
    if action == "reindex" and swap:
        return "Interrupted; the live index is untouched and the half-built one removed."
    if action in ("reindex", "update"):
        return (
            "Interrupted; the documents sent so far replace their old versions at Solr's "
            "next commit. Run the command again to finish."
        )
    return "Interrupted."
