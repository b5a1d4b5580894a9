"""Opt-in index updates on save and delete (``DEVCOMMANDS['SOLR_SIGNALS'] = True``).

Changes are collected per database transaction and sent in one update after it
commits (nothing is sent for a rolled-back transaction). A Solr that is down never
fails the user's save: the error is logged on ``django_devcommands.solr`` and counted
in :data:`stats`.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, models, transaction
from django.db.models.signals import post_delete, post_save

from django_devcommands.conf import conf

logger = logging.getLogger("django_devcommands.solr")

#: ``sent`` (documents), ``deleted`` (ids) and ``failures`` (updates that did not reach Solr).
stats: Counter[str] = Counter()

_local = threading.local()

#: commitWithin (ms) for signal updates: visible soon, without a commit per save.
COMMIT_WITHIN = 1000


@dataclass
class _Pending:
    using: str
    saved: dict[type[models.Model], set[Any]] = field(default_factory=dict)
    deleted: dict[type[models.Model], set[Any]] = field(default_factory=dict)

    def __call__(self) -> None:
        if getattr(_local, self.using, None) is self:
            delattr(_local, self.using)
        send(self)


def _queue(using: str, model: type[models.Model], pk: Any, deleted: bool) -> None:
    """Add a change to the batch of the current transaction on ``using``.

    A new batch is handed to ``on_commit`` after the change is in it: outside a
    transaction, on_commit runs it at once; inside, after the outermost commit.
    """
    current: _Pending | None = getattr(_local, using, None)
    if current is not None and not any(
        entry[1] is current for entry in connections[using].run_on_commit
    ):
        current = None  # rolled back (or already sent): start afresh
    fresh = current is None
    if current is None:
        current = _Pending(using)
        setattr(_local, using, current)
    add, drop = (current.deleted, current.saved) if deleted else (current.saved, current.deleted)
    drop.get(model, set()).discard(pk)
    add.setdefault(model, set()).add(pk)
    if fresh:
        transaction.on_commit(current, using=using)


def _index_for(model: type[models.Model]) -> Any:
    from django_devcommands.solr.indexes import registry

    return registry.get(model)


def _indexed(model: type[models.Model]) -> bool:
    if not conf.SOLR_SIGNALS:
        return False
    try:
        return _index_for(model) is not None
    except Exception:
        stats["failures"] += 1
        logger.exception("Could not load the search indexes")
        return False


def on_save(sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any) -> None:
    if not kwargs.get("raw") and _indexed(sender):
        _queue(using, sender, instance.pk, deleted=False)


def on_delete(
    sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any
) -> None:
    if _indexed(sender):
        _queue(using, sender, instance.pk, deleted=True)


def send(batch: _Pending) -> None:
    """Send one transaction's changes; never raises."""
    from django_devcommands.solr.client import from_settings

    try:
        client = from_settings(retries=0)
        collection = conf.SOLR_COLLECTION
        docs = []
        ids = []
        for model, pks in batch.saved.items():
            index = _index_for(model)
            if index is None or not pks:
                continue
            live = index.get_queryset().filter(pk__in=pks)
            found = set()
            for obj in live:
                docs.append(index.prepare(obj))
                found.add(obj.pk)
            # Saved but outside the index's queryset (e.g. unpublished): remove it.
            ids += [index.document_id(pk) for pk in pks - found]
        for model, pks in batch.deleted.items():
            index = _index_for(model)
            if index is not None:
                ids += [index.document_id(pk) for pk in pks]
        if docs:
            client.add(collection, docs, commit_within=COMMIT_WITHIN)
            stats["sent"] += len(docs)
        if ids:
            client.delete_ids(collection, ids, commit_within=COMMIT_WITHIN)
            stats["deleted"] += len(ids)
    except Exception:
        stats["failures"] += 1
        logger.exception(
            "Could not update the Solr index after a save/delete "
            "(%d saved, %d deleted rows); run `manage.py solr --update`.",
            sum(map(len, batch.saved.values())),
            sum(map(len, batch.deleted.values())),
        )


def connect() -> None:
    """Connect the receivers (done by the app; they do nothing until SOLR_SIGNALS is on)."""
    post_save.connect(on_save, dispatch_uid="django_devcommands.solr.save")
    post_delete.connect(on_delete, dispatch_uid="django_devcommands.solr.delete")
