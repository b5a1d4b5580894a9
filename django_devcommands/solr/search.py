"""A small query API over the project's indexes, for search pages::

    from django_devcommands.solr.search import search

    results = search(request.GET.get("q", ""), models=[Page], page=2, per_page=20)
    results.total, results.pages, results.objects()   # model instances, in Solr's order

User input is never parsed as Solr syntax: the text is escaped term by term (so
``title:x OR *:*`` looks for those words) and filter values become quoted phrases.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models

from django_devcommands.conf import conf
from django_devcommands.solr import indexes as ix
from django_devcommands.solr.client import SolrClient, from_settings
from django_devcommands.solr.indexer import quote

_SPECIAL = re.compile(r'([+\-!(){}\[\]^"~*?:\\/&|])')
_WORDS = {"AND", "OR", "NOT", "TO"}
_SORT = re.compile(r"\s*[A-Za-z_]\w*\s+(asc|desc)(\s*,\s*[A-Za-z_]\w*\s+(asc|desc))*\s*")


def escape(text: str) -> str:
    """Escape every Solr query metacharacter; ``AND``/``OR``/``NOT`` become plain words."""
    terms = []
    for term in str(text).split():
        term = _SPECIAL.sub(r"\\\1", term)
        terms.append(term.lower() if term in _WORDS else term)
    return " ".join(terms)


@dataclass
class Results:
    """One page of hits."""

    total: int
    page: int
    per_page: int
    hits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page)) if self.per_page else 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    def objects(self) -> list[models.Model]:
        """The model instances of the hits, in hit order (rows deleted since are skipped)."""
        by_label: dict[str, list[str]] = {}
        for hit in self.hits:
            by_label.setdefault(hit[ix.CT_FIELD], []).append(hit[ix.PK_FIELD])
        loaded: dict[tuple[str, str], models.Model] = {}
        for label, pks in by_label.items():
            model = apps.get_model(label)
            for obj in model._default_manager.filter(pk__in=pks):
                loaded[(label, str(obj.pk))] = obj
        out = []
        for hit in self.hits:
            obj = loaded.get((hit[ix.CT_FIELD], hit[ix.PK_FIELD]))
            if obj is not None:
                out.append(obj)
        return out


def search(
    text: str = "",
    *,
    models: Iterable[type[models.Model]] = (),
    filters: Mapping[str, Any] | None = None,
    page: int = 1,
    per_page: int = 20,
    sort: str | None = None,
    fields: Sequence[str] = (),
    client: SolrClient | None = None,
    collection: str | None = None,
) -> Results:
    """Search the catch-all text for ``text`` (empty: everything), within ``models``,
    where each of ``filters`` (field -> value, or list of values for any-of) matches."""
    page = max(1, int(page))
    per_page = max(1, min(int(per_page), 1000))
    query = escape(text)
    params: list[tuple[str, Any]] = [
        ("q", f"{ix.TEXT_FIELD}:({query})" if query else "*:*"),
        ("q.op", "AND"),
        ("start", (page - 1) * per_page),
        ("rows", per_page),
        ("fl", ",".join([ix.ID_FIELD, ix.CT_FIELD, ix.PK_FIELD, "score", *fields])),
    ]
    labels = [m._meta.label_lower for m in models]
    if labels:
        params.append(("fq", f"{ix.CT_FIELD}:(" + " OR ".join(map(quote, labels)) + ")"))
    for name, value in (filters or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"not a field name: {name!r}")
        values = value if isinstance(value, (list, tuple, set)) else [value]
        if not values:
            raise ValueError(f"filter {name!r} has no values")
        rendered = [
            quote(
                ix.format_date(v)
                if hasattr(v, "isoformat")
                else str(v).lower()
                if isinstance(v, bool)
                else v
            )
            for v in values
        ]
        params.append(("fq", f"{name}:(" + " OR ".join(rendered) + ")"))
    if sort:
        if not _SORT.fullmatch(sort):
            raise ValueError(f"not a sort such as 'published desc, id asc': {sort!r}")
        params.append(("sort", sort))
    solr = client or from_settings(retries=0)
    data = solr.select(collection or conf.SOLR_COLLECTION, params)
    response = data["response"]
    return Results(
        total=int(response["numFound"]), page=page, per_page=per_page, hits=list(response["docs"])
    )
