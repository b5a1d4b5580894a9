"""Putting rows into Solr: batched keyset reindex, incremental update, flush and swap.

The reindex walks each queryset by primary key (``pk > last ORDER BY pk LIMIT n``), so
the database never scans a growing OFFSET and memory holds one batch at a time; each
batch goes to Solr as one JSON update, retried on transient errors; one commit at the
end makes the whole run visible at once.

:func:`swap_reindex` builds a fresh core/collection next to the live one and switches
atomically (core SWAP, or re-pointing the SolrCloud alias): searches see the old index
until the new one is complete. Any failure, Ctrl-C included, removes the half-built
index and leaves the live one untouched.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from django.db import models
from django.utils import timezone

from django_devcommands.solr import indexes as ix
from django_devcommands.solr import schema
from django_devcommands.solr.client import SolrClient
from django_devcommands.solr.errors import SolrError, SolrNotFound

logger = logging.getLogger("django_devcommands.solr")

#: Seconds searches routed to the old collection get to finish after an alias switch.
DRAIN_SECONDS = 2.0
#: Threads posting batches while the next one is prepared.
SENDERS = 2


@dataclass
class Target:
    """Where documents go: a core (standalone) or a collection/alias (cloud)."""

    client: SolrClient
    collection: str
    cloud: bool = False
    configset: str = "devcommands"
    shards: int = 1
    replicas: int = 1
    #: Standalone: whether cores this code creates keep Solr's update log.
    update_log: bool = True


@dataclass
class Result:
    label: str
    indexed: int = 0
    deleted: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.indexed / self.seconds if self.seconds else 0.0


class Progress:
    """A one-line progress bar with docs/s and ETA, on a terminal only."""

    def __init__(self, stream: TextIO | None, label: str, total: int) -> None:
        # Django's OutputWrapper appends a newline to every write: talk to what it wraps.
        raw = getattr(stream, "_out", stream)
        self.stream = raw if raw is not None and _isatty(raw) else None
        self.label = label
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.stream is None or (now - self._last < 0.2 and self.done < self.total):
            return
        self._last = now
        elapsed = max(now - self.start, 1e-6)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate and self.total > self.done else 0
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(
            f"\r{self.label} [{bar}] {self.done}/{self.total} {rate:,.0f} docs/s ETA {eta:4.0f}s"
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return ix.format_date(value)
    return str(value)


def json_encoder(*, fast: bool = True) -> Callable[[Any], bytes]:
    """Documents to UTF-8 JSON: with orjson when installed (the ``solr`` extra), which
    takes about a tenth of the standard library encoder's time on the example's pages."""
    if fast:
        try:
            import orjson
        except ImportError:
            pass
        else:
            options = orjson.OPT_PASSTHROUGH_DATETIME  # dates as Solr wants them: _json_default

            def fast_dumps(docs: Any) -> bytes:
                return orjson.dumps(docs, default=_json_default, option=options)

            return fast_dumps
    encode = json.JSONEncoder(
        separators=(",", ":"), default=_json_default, ensure_ascii=False
    ).encode

    def dumps(docs: Any) -> bytes:
        return encode(docs).encode("utf-8")

    return dumps


def keyset_batches(
    queryset: models.QuerySet, batch_size: int, fields: Sequence[str] | None = None
) -> Iterator[list[models.Model]]:
    """The rows of ``queryset`` in primary key order, ``batch_size`` at a time, no OFFSET."""
    qs = queryset.order_by("pk")
    if fields:
        qs = qs.only(*fields)
    last = None
    while True:
        page = qs if last is None else qs.filter(pk__gt=last)
        # A plain fetch, not .iterator(): Django reads the whole batch inside the
        # query, so a Ctrl-C cannot leave a half-read cursor for the garbage collector
        # to close after the connection is gone ("Exception ignored ... closed database").
        rows = list(page[:batch_size])
        if not rows:
            return
        yield rows
        last = rows[-1].pk
        if len(rows) < batch_size:
            return


def index_rows(
    index: ix.SearchIndex,
    target: Target,
    *,
    queryset: models.QuerySet | None = None,
    batch_size: int = 1000,
    stream: TextIO | None = None,
    commit: bool = True,
    senders: int = SENDERS,
) -> Result:
    """Send every row of the index's queryset (or ``queryset``) to ``target``.

    The database is read and documents are built in this thread (Django connections
    are per thread) while up to ``senders`` threads post the previous batches, so
    Solr indexes while Python prepares; at most ``senders`` batches wait in memory.
    """
    qs = index.get_queryset() if queryset is None else queryset
    result = Result(index.label())
    started = time.monotonic()
    progress = Progress(stream, index.label(), qs.count() if _isatty(stream) else 0)
    dumps = json_encoder()
    pending: deque[tuple[Future[Any], int]] = deque()

    def settle(limit: int) -> None:
        while len(pending) > limit:
            future, count = pending.popleft()
            future.result()  # re-raises the sender's error here
            result.indexed += count
            progress.advance(count)

    with ThreadPoolExecutor(max_workers=max(1, senders), thread_name_prefix="solr-send") as pool:
        try:
            for rows in keyset_batches(qs, batch_size, index.load_fields()):
                body = dumps([index.prepare(obj) for obj in rows])
                settle(max(1, senders) - 1)
                pending.append(
                    (pool.submit(target.client.update, target.collection, body), len(rows))
                )
            settle(0)
        except BaseException:
            for future, _ in pending:
                future.cancel()
            raise
    progress.finish()
    if commit:
        target.client.commit(target.collection)
    result.seconds = time.monotonic() - started
    return result


def reindex(
    indexes: Sequence[ix.SearchIndex],
    target: Target,
    *,
    batch_size: int = 1000,
    stream: TextIO | None = None,
    clear: bool = True,
) -> list[Result]:
    """Index every row of ``indexes`` in place: old documents of those models are
    replaced, documents of rows that no longer exist are removed; one commit at the end."""
    results = []
    for index in indexes:
        # Documents of deleted rows can only be there if the model had documents before.
        had_docs = clear and target.client.count(
            target.collection, f"{ix.CT_FIELD}:{quote(index.label())}"
        )
        result = index_rows(index, target, batch_size=batch_size, stream=stream, commit=False)
        if had_docs:
            result.deleted = remove_deleted(index, target)
        results.append(result)
    target.client.commit(target.collection)
    return results


def quote(value: str) -> str:
    """A Solr query phrase for any user string: quotes and backslashes escaped."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def solr_ids(index: ix.SearchIndex, target: Target, page: int = 5000) -> Iterator[str]:
    """Every ``django_id`` of this model in Solr, by cursor (constant memory on Solr's side)."""
    cursor = "*"
    while True:
        data = target.client.select(
            target.collection,
            {
                "q": "*:*",
                "fq": f"{ix.CT_FIELD}:{quote(index.label())}",
                "fl": ix.PK_FIELD,
                "rows": page,
                "sort": f"{ix.ID_FIELD} asc",
                "cursorMark": cursor,
            },
        )
        for doc in data["response"]["docs"]:
            yield doc[ix.PK_FIELD]
        nxt = data.get("nextCursorMark")
        if not nxt or nxt == cursor:
            return
        cursor = nxt


def remove_deleted(index: ix.SearchIndex, target: Target, page: int = 5000) -> int:
    """Delete the documents of rows that no longer exist; returns how many."""
    assert index.model is not None
    pk_field = index.model._meta.pk
    removed = 0
    chunk: list[str] = []

    def flush() -> int:
        if not chunk:
            return 0
        values = [pk_field.to_python(v) for v in chunk]
        alive = {
            str(v) for v in index.get_queryset().filter(pk__in=values).values_list("pk", flat=True)
        }
        gone = [index.document_id(v) for v in chunk if v not in alive]
        target.client.delete_ids(target.collection, gone)
        chunk.clear()
        return len(gone)

    for pk in solr_ids(index, target, page):
        chunk.append(pk)
        if len(chunk) >= 900:  # stays under SQLite's parameter limit
            removed += flush()
    removed += flush()
    return removed


def parse_since(text: str) -> datetime.timedelta:
    """``90s``, ``15m``, ``2h``, ``3d``, ``1w`` -> a timedelta (ValueError otherwise)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units:
        raise ValueError(text)
    amount = float(text[:-1])
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(text)
    try:
        since = datetime.timedelta(seconds=amount * units[text[-1]])
        datetime.datetime.now(datetime.timezone.utc) - since  # overflows before year 1
    except OverflowError:  # more days than a timedelta, or the calendar, holds
        raise ValueError(text) from None
    return since


def update(
    indexes: Sequence[ix.SearchIndex],
    target: Target,
    since: datetime.timedelta,
    *,
    batch_size: int = 1000,
    stream: TextIO | None = None,
) -> list[Result]:
    """Re-send rows changed in the last ``since`` and remove documents of deleted rows."""
    cutoff = timezone.now() - since
    results = []
    for index in indexes:
        if index.updated_field is None:
            raise SolrError(
                f"{type(index).__qualname__} has no updated_field, so "
                f"{index.label()} cannot be updated incrementally: use --reindex."
            )
        qs = index.get_queryset().filter(**{f"{index.updated_field}__gte": cutoff})
        result = index_rows(
            index, target, queryset=qs, batch_size=batch_size, stream=stream, commit=False
        )
        result.deleted = remove_deleted(index, target)
        results.append(result)
    target.client.commit(target.collection)
    return results


def flush(indexes: Sequence[ix.SearchIndex] | None, target: Target) -> None:
    """Delete every document (``indexes`` None) or those of the given models; commits."""
    if indexes is None:
        target.client.delete_by_query(target.collection, "*:*")
    else:
        labels = " OR ".join(quote(index.label()) for index in indexes)
        target.client.delete_by_query(target.collection, f"{ix.CT_FIELD}:({labels})")
    target.client.commit(target.collection)


# -- creating and swapping ----------------------------------------------------------------


def new_name(base: str) -> str:
    return f"{base}_{time.strftime('%Y%m%d%H%M%S')}_{int(time.time() * 1000) % 1000:03d}"


def exists(target: Target) -> bool:
    client = target.client
    if target.cloud:
        return target.collection in client.collections() or target.collection in client.aliases()
    return client.core_exists(target.collection)


def publish_configset(target: Target, indexes: Sequence[ix.SearchIndex]) -> str:
    """Make the configset of ``indexes`` available to the server; returns where it went.

    SolrCloud: uploaded through the Configsets API. Standalone: copied into the
    server's ``<solr home>/configsets`` when that directory is on this machine (a local
    Solr); otherwise the configset must already be there.
    """
    if target.cloud:
        target.client.upload_configset(
            target.configset, schema.configset_zip(indexes, target.configset)
        )
        return f"configset {target.configset!r} uploaded"
    home = target.client.system_info().get("solr_home")
    if home and Path(home).is_dir():
        conf_dir = Path(home) / "configsets" / target.configset / "conf"
        schema.write_configset(conf_dir, indexes, target.configset)
        return f"configset written to {conf_dir}"
    return (
        f"configset {target.configset!r} expected on the server (Solr home {home!r} "
        "is not on this machine)"
    )


def create(target: Target, indexes: Sequence[ix.SearchIndex]) -> list[str]:
    """Create the core (standalone) or collection plus alias (cloud); returns what was done."""
    if exists(target):  # before publishing: the existing index may use that configset
        raise SolrError(
            f"{target.collection!r} already exists at {target.client.base_url}; "
            "use --sync-schema to update its schema or --reindex --swap to rebuild."
        )
    done = [publish_configset(target, indexes)]
    client = target.client
    if target.cloud:
        physical = new_name(target.collection)
        client.create_collection(physical, target.configset, target.shards, target.replicas)
        client.create_alias(target.collection, [physical])
        done.append(
            f"collection {physical!r} created ({target.shards} shard(s), "
            f"{target.replicas} replica(s)), alias {target.collection!r} points to it"
        )
    else:
        _create_core(target, target.collection)
        done.append(f"core {target.collection!r} created")
    return done


def _create_core(target: Target, name: str) -> None:
    client, configset = target.client, target.configset
    properties = {} if target.update_log else {schema.ULOG_PROPERTY: "false"}
    try:
        client.create_core(name, configset, properties)
    except SolrError as exc:
        if "configset" in str(exc).lower() or "config" in str(exc).lower():
            raise SolrError(
                f"{exc} -- write the configset with `manage.py solr --schema --path "
                f"<solr home>/configsets/{configset}/conf` on the Solr server "
                "first."
            ) from None
        raise


def swap_reindex(
    indexes: Sequence[ix.SearchIndex],
    target: Target,
    *,
    batch_size: int = 1000,
    stream: TextIO | None = None,
    on_built: Callable[[str], None] | None = None,
) -> tuple[list[Result], str]:
    """Rebuild every index into a fresh core/collection, then switch atomically.

    Returns the results and the name of the new physical core/collection. The live one
    must exist (``--create``). ``indexes`` should be all indexes: the fresh index holds
    only what is sent to it.
    """
    client = target.client
    if not exists(target):
        raise SolrNotFound(
            f"{target.collection!r} does not exist at {client.base_url}: "
            "create it with `manage.py solr --create` first."
        )
    fresh = new_name(target.collection)
    old_collections: list[str] = []
    if target.cloud:
        aliases = client.aliases()
        if target.collection not in aliases:
            raise SolrError(
                f"{target.collection!r} is a collection, not an alias: --swap in "
                "SolrCloud re-points an alias. Create the index with "
                "`manage.py solr --create` (which makes the alias)."
            )
        old_collections = aliases[target.collection].split(",")
        # A configset of its own: the live collection watches its configset's schema in
        # ZooKeeper, so uploading over that one would change live searches before the
        # switch (and for good if the build failed).
        client.upload_configset(fresh, schema.configset_zip(indexes, fresh))
        try:
            client.create_collection(fresh, fresh, target.shards, target.replicas)
        except BaseException:
            _remove(client, cloud=True, collections=[], configsets=[fresh])
            raise
        building = replace(target, collection=fresh, configset=fresh)
    else:
        # The live core reads its configset directory only when it is (re)loaded.
        publish_configset(target, indexes)
        _create_core(target, fresh)
        building = replace(target, collection=fresh)
    switched = False
    try:
        results = [
            index_rows(index, building, batch_size=batch_size, stream=stream, commit=False)
            for index in indexes
        ]
        client.commit(fresh)
        if on_built is not None:
            on_built(fresh)
        if target.cloud:
            client.create_alias(target.collection, [fresh])
            switched = True
            # Every node must route the alias to the new collection, and searches already
            # routed to the old one must finish, before the old one may be deleted.
            client.wait_for_alias(target.collection, [fresh])
            time.sleep(DRAIN_SECONDS)
        else:
            client.swap_cores(target.collection, fresh)
            switched = True
    except BaseException as exc:
        if not switched:  # ``fresh`` is the half-built one
            _remove(client, target.cloud, [fresh], [fresh] if target.cloud else [])
            raise
        # The alias already points to the complete new collection, but nodes may still
        # route searches to the old ones: keep them rather than fail those searches.
        what = "Interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        raise SolrError(
            f"{what} after the switch: {target.collection!r} serves the new collection "
            f"{fresh!r}; the previous one(s), {', '.join(old_collections)}, were kept. "
            "Delete them (Collections API DELETE) once no search uses them."
        ) from None
    # Switched: the name ``fresh`` (standalone) or the old collections (cloud) now hold
    # the previous index, with (cloud) the configsets --swap uploaded for them.
    if target.cloud:
        generated = set(old_collections) & set(client.configsets())
        _remove(client, True, old_collections, sorted(generated))
    else:
        _remove(client, False, [fresh], [])
    return results, fresh


def _remove(client: SolrClient, cloud: bool, collections: list[str], configsets: list[str]) -> None:
    """Delete what a swap left behind; a failure is logged, not raised (the swap's own
    outcome is what the caller needs to hear)."""
    for name in collections:
        try:
            if cloud:
                client.delete_collection(name)
            else:
                client.unload_core(name, delete=True)
        except SolrError as exc:
            logger.warning("Could not remove the index %r left by the swap: %s", name, exc)
    for name in configsets:
        try:
            client.delete_configset(name)
        except SolrError as exc:
            logger.warning("Could not remove the configset %r left by the swap: %s", name, exc)
