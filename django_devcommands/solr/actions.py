"""What each ``manage.py solr --<action>`` does, over the settings; the command only parses.

:func:`run` is the one entry point: it raises :class:`~django_devcommands.solr.errors.SolrError`
(and :class:`~django_devcommands.solr.indexes.IndexDefinitionError`) for the command to
turn into a one-line ``CommandError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from django_devcommands.conf import conf
from django_devcommands.solr import indexer, local, schema
from django_devcommands.solr import indexes as ix
from django_devcommands.solr.client import SolrClient, from_settings
from django_devcommands.solr.errors import SolrError

ACTIONS = (
    "fields",
    "schema",
    "sync_schema",
    "create",
    "flush",
    "reindex",
    "update",
    "start",
    "stop",
    "status",
)


@dataclass
class Request:
    """The parsed command line."""

    action: str
    path: str | None = None
    models: Sequence[str] = ()
    batch_size: int | None = None
    swap: bool = False
    prune: bool = False
    since: str | None = None
    mode: str | None = None
    port: int = 0
    nodes: int = 2
    verbosity: int = 1
    confirm: Callable[[str], bool] = field(default=lambda question: False)


def run(req: Request, stdout: TextIO, stderr: TextIO) -> None:
    """Do ``req.action``, reporting on ``stdout`` (quiet at verbosity 0)."""
    handler = globals()[f"do_{req.action}"]
    handler(req, stdout if req.verbosity else _Null(), stderr)


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _target(client: SolrClient | None = None) -> indexer.Target:
    client = client or from_settings()
    return indexer.Target(
        client=client,
        collection=conf.SOLR_COLLECTION,
        cloud=conf.SOLR_MODE == "cloud",
        configset=conf.SOLR_CONFIGSET,
        shards=conf.SOLR_SHARDS,
        replicas=conf.SOLR_REPLICAS,
        update_log=conf.SOLR_UPDATE_LOG,
    )


def _checked_target() -> indexer.Target:
    """The target after a first request, so an unreachable Solr fails fast and clearly."""
    target = _target()
    if not indexer.exists(target):
        kind = "collection or alias" if target.cloud else "core"
        raise SolrError(
            f"Solr at {target.client.base_url} has no {kind} "
            f"{target.collection!r}: create it with `manage.py solr --create`."
        )
    return target


# -- schema -------------------------------------------------------------------------------


def do_fields(req: Request, out: TextIO, err: TextIO) -> None:
    rows = schema.describe_fields(ix.registry.all())
    width = max(len(r[0]) for r in rows)
    type_width = max(len(r[1]) for r in rows)
    for name, type_name, flags in rows:
        out.write(f"{name:<{width}}  {type_name:<{type_width}}  {flags}\n")


def do_schema(req: Request, out: TextIO, err: TextIO) -> None:
    indexes = ix.registry.all()
    if not req.path:
        # No --path: the schema alone on stdout, like solango's `solr --schema`.
        out.write(schema.managed_schema_xml(schema.plan(indexes), conf.SOLR_CONFIGSET))
        return
    written = schema.write_configset(req.path, indexes, conf.SOLR_CONFIGSET)
    out.write(
        f"Wrote the Solr 9 configset {conf.SOLR_CONFIGSET!r} to {Path(req.path)}: "
        f"{', '.join(p.name for p in written)}\n"
    )


def do_sync_schema(req: Request, out: TextIO, err: TextIO) -> None:
    target = _checked_target()
    applied = schema.sync_schema(
        target.client, target.collection, ix.registry.all(), prune=req.prune
    )
    if not applied:
        out.write(f"The schema of {target.collection!r} is up to date.\n")
        return
    for command in applied:
        for verb, body in command.items():
            what = body.get("name") or f"{body.get('source')} -> {body.get('dest')}"
            out.write(f"  {verb} {what}\n")
    out.write(f"Applied {len(applied)} schema change(s) to {target.collection!r}.\n")


# -- cores and collections ----------------------------------------------------------------


def do_create(req: Request, out: TextIO, err: TextIO) -> None:
    target = _target()
    for line in indexer.create(target, ix.registry.all()):
        out.write(line[0].upper() + line[1:] + ".\n")


def do_flush(req: Request, out: TextIO, err: TextIO) -> None:
    target = _checked_target()
    chosen = ix.registry.for_labels(req.models) if req.models else None
    what = (
        "the documents of " + ", ".join(i.label() for i in chosen) if chosen else "every document"
    )
    if not req.confirm(
        f"This deletes {what} in {target.collection!r} at "
        f"{target.client.base_url}. Are you sure? [y/N] "
    ):
        raise SolrError("Flush cancelled.")
    indexer.flush(chosen, target)
    out.write(f"Deleted {what} in {target.collection!r}.\n")


def _report(results: Sequence[indexer.Result], out: TextIO) -> None:
    for r in results:
        gone = f", {r.deleted} removed" if r.deleted else ""
        out.write(
            f"{r.label}: {r.indexed} indexed{gone} in {r.seconds:.1f}s ({r.rate:,.0f} docs/s)\n"
        )


def do_reindex(req: Request, out: TextIO, err: TextIO) -> None:
    target = _checked_target()
    chosen = ix.registry.for_labels(req.models)
    batch = req.batch_size or conf.SOLR_BATCH_SIZE
    if req.swap:
        if req.models:
            raise SolrError("--swap rebuilds the whole index: leave out --models.")
        results, _fresh = indexer.swap_reindex(chosen, target, batch_size=batch, stream=out)
        _report(results, out)
        out.write(f"Swapped: {target.collection!r} now serves the new index.\n")
        return
    _report(indexer.reindex(chosen, target, batch_size=batch, stream=out), out)


def do_update(req: Request, out: TextIO, err: TextIO) -> None:
    try:
        since = indexer.parse_since("1d" if req.since is None else req.since)
    except ValueError:
        raise SolrError(
            f"--since takes a duration such as 90s, 15m, 2h, 3d or 1w, not {req.since!r}."
        ) from None
    target = _checked_target()
    chosen = [
        i for i in ix.registry.for_labels(req.models) if req.models or i.updated_field is not None
    ]
    if not chosen:
        raise SolrError(
            "No search index sets updated_field, so none can be updated "
            "incrementally: use --reindex."
        )
    _report(
        indexer.update(
            chosen, target, since, batch_size=req.batch_size or conf.SOLR_BATCH_SIZE, stream=out
        ),
        out,
    )


# -- a local Solr -------------------------------------------------------------------------


def _mode(req: Request) -> str:
    return req.mode or conf.SOLR_MODE


def do_start(req: Request, out: TextIO, err: TextIO) -> None:
    mode = _mode(req)
    if conf.SOLR_INSTALL:
        home = local.cache_dir(conf.SOLR_LOCAL_DIR) / mode / "installed-home"
        url = local.start_installed(conf.SOLR_INSTALL, mode, req.port, home)
        local.remember_installed(mode, conf.SOLR_LOCAL_DIR, conf.SOLR_INSTALL, url)
        out.write(f"Solr ({mode}, {conf.SOLR_INSTALL}) is running at {url}\n")
        return
    already = local.running(mode, conf.SOLR_LOCAL_DIR)
    if already is not None:
        out.write(
            f"A local Solr ({mode}) is already running at {already.url} (pid {already.pid}).\n"
        )
        return
    solr = local.start(
        mode,
        port=req.port,
        nodes=req.nodes,
        version=conf.SOLR_VERSION,
        local_dir=conf.SOLR_LOCAL_DIR,
        detach=True,
        heap="768m" if mode == "cloud" else "512m",
        log=err,
    )
    out.write(
        f"Solr {conf.SOLR_VERSION} ({mode}) is running at {' '.join(solr.urls)} "
        f"(pid {solr.pid}; log {solr.log}).\n"
    )
    if conf.SOLR_URL and conf.SOLR_URL not in solr.urls:
        out.write(
            f"Note: DEVCOMMANDS['SOLR_URL'] is {conf.SOLR_URL}; leave it unset to use "
            "this local Solr.\n"
        )


def do_stop(req: Request, out: TextIO, err: TextIO) -> None:
    mode = _mode(req)
    if conf.SOLR_INSTALL:
        port = req.port
        url = local.installed_url(mode, conf.SOLR_LOCAL_DIR, conf.SOLR_INSTALL)
        if not port and url:  # the port --start used
            port = urlsplit(url).port or 0
        local.stop_installed(conf.SOLR_INSTALL, port)
        local.forget_installed(mode, conf.SOLR_LOCAL_DIR)
        out.write(f"Stopped Solr ({conf.SOLR_INSTALL}).\n")
        return
    solr = local.stop(mode, conf.SOLR_LOCAL_DIR)
    if solr is None:
        out.write(f"No local Solr ({mode}) is running.\n")
    else:
        out.write(f"Stopped the local Solr ({mode}, pid {solr.pid}).\n")


def do_status(req: Request, out: TextIO, err: TextIO) -> None:
    client = from_settings(retries=0)
    info = client.system_info()
    version = info.get("lucene", {}).get("solr-spec-version", "?")
    mode = "SolrCloud" if info.get("mode") == "solrcloud" else "standalone"
    out.write(f"Solr {version} ({mode}) at {client.base_url}\n")
    target = _target(client)
    if indexer.exists(target):
        out.write(f"{target.collection!r}: {client.count(target.collection)} documents\n")
    else:
        out.write(f"{target.collection!r} does not exist yet: `manage.py solr --create`.\n")
