"""Declarative search indexes: which models go to Solr, as which typed fields.

An app declares its indexes in ``<app>/search_indexes.py`` (found the way Django's
admin finds ``admin.py``)::

    from django_devcommands.solr import indexes

    @indexes.register
    class PageIndex(indexes.SearchIndex):
        model = Page
        updated_field = "updated"
        title = indexes.TextField()
        slug = indexes.StringField()
        published = indexes.DateField()

Every document also gets the system fields ``id`` (``app.model.pk``), ``django_ct``
(``app.model``) and ``django_id``; text fields are copied into the catch-all ``text``
field that plain searches look in.
"""

from __future__ import annotations

import datetime
import decimal
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from django.db import models

#: Names the schema reserves; an index may not declare a field with one of these.
ID_FIELD = "id"
CT_FIELD = "django_ct"
PK_FIELD = "django_id"
TEXT_FIELD = "text"
VERSION_FIELD = "_version_"
ROOT_FIELD = "_root_"
RESERVED = frozenset({ID_FIELD, CT_FIELD, PK_FIELD, TEXT_FIELD, VERSION_FIELD, ROOT_FIELD})

AUTODISCOVER_MODULE = "search_indexes"


#: Word lists the written configset ships; analyzers may name only these.
SHIPPED_FILES = ("stopwords.txt", "synonyms.txt")


def _unshipped_files(analyzer: Mapping[str, Any] | None) -> list[str]:
    if not analyzer:
        return []
    parts = [analyzer.get("tokenizer") or {}, *(analyzer.get("filters") or [])]
    return [
        str(value)
        for part in parts
        for key, value in part.items()
        if key in ("words", "synonyms", "protected", "dictionary", "mapping")
        and str(value) not in SHIPPED_FILES
    ]


class IndexDefinitionError(Exception):
    """An index class is declared wrongly (reported by the system checks and the command)."""


class AlreadyRegistered(IndexDefinitionError):
    """Two index classes claim the same model."""


class Field:
    """One typed Solr field of an index.

    ``model_attr`` names the attribute (dotted for relations, ``author.name``) read from
    the instance when there is no ``prepare_<name>`` hook; it defaults to the field's name.
    ``analyzer`` (text fields only) is a mapping of ``tokenizer``/``filters`` in Solr's
    own terms, giving the field a field type of its own.
    """

    #: The Solr field type every field of this class uses (see schema.FIELD_TYPES).
    solr_type: ClassVar[str] = "string"
    kind: ClassVar[str] = "string"

    def __init__(
        self,
        *,
        model_attr: str | None = None,
        stored: bool = True,
        indexed: bool = True,
        multi_valued: bool = False,
        copy_to_text: bool | None = None,
        required: bool = False,
        analyzer: Mapping[str, Any] | None = None,
    ) -> None:
        self.name: str = ""
        self.model_attr = model_attr
        self.stored = stored
        self.indexed = indexed
        self.multi_valued = multi_valued
        # Text goes into the catch-all field unless told otherwise; other types do not.
        self.copy_to_text = self.kind == "text" if copy_to_text is None else copy_to_text
        self.required = required
        self.analyzer = dict(analyzer) if analyzer else None
        if self.analyzer is not None and self.kind != "text":
            raise IndexDefinitionError(
                f"analyzer= is for TextField only, not {type(self).__name__}"
            )

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    @property
    def attr(self) -> str:
        return self.model_attr or self.name

    @property
    def type_name(self) -> str:
        """The Solr field type name in the schema (custom analyzers get their own)."""
        return f"text_{self.name}" if self.analyzer else self.solr_type

    def convert(self, value: Any) -> Any:
        """Turn one Python value into what Solr's JSON update handler takes."""
        return value

    def to_solr(self, value: Any) -> Any:
        if value is None:
            return None
        if self.multi_valued:
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                value = [value]
            return [self.convert(v) for v in value if v is not None]
        return self.convert(value)


class TextField(Field):
    solr_type = "text_general"
    kind = "text"

    def convert(self, value: Any) -> Any:
        return str(value)


class StringField(Field):
    solr_type = "string"
    kind = "string"

    def convert(self, value: Any) -> Any:
        return str(value)


class IntField(Field):
    solr_type = "pint"
    kind = "int"

    def convert(self, value: Any) -> Any:
        return int(value)


class LongField(IntField):
    solr_type = "plong"
    kind = "long"


class FloatField(Field):
    solr_type = "pfloat"
    kind = "float"

    def convert(self, value: Any) -> Any:
        return float(value)


class DoubleField(FloatField):
    solr_type = "pdouble"
    kind = "double"


class BooleanField(Field):
    solr_type = "boolean"
    kind = "boolean"

    def convert(self, value: Any) -> Any:
        return bool(value)


class DateField(Field):
    solr_type = "pdate"
    kind = "date"

    def convert(self, value: Any) -> Any:
        return format_date(value)


def format_date(value: Any) -> str:
    """Solr's date format: ISO 8601 in UTC with a ``Z``; naive values are taken as UTC."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is datetime.timezone.utc:  # how Django reads datetimes with USE_TZ
            return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, datetime.date):
        return value.isoformat() + "T00:00:00Z"
    if isinstance(value, str):
        return value
    raise TypeError(f"not a date: {value!r}")


#: Field kinds whose convert() returns a value of this exact type unchanged.
_AS_IS: dict[str, type] = {
    "text": str,
    "string": str,
    "int": int,
    "long": int,
    "float": float,
    "double": float,
    "boolean": bool,
}

FIELD_CLASSES: dict[str, type[Field]] = {
    cls.kind: cls
    for cls in (
        TextField,
        StringField,
        IntField,
        LongField,
        FloatField,
        DoubleField,
        BooleanField,
        DateField,
    )
}


class SearchIndexMeta(type):
    """Collects the declared fields of an index class, in declaration order, with bases'."""

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]):
        cls = super().__new__(mcs, name, bases, attrs)
        fields: dict[str, Field] = {}
        for base in reversed(cls.__mro__[1:]):
            fields.update(getattr(base, "fields", {}))
        for key, value in attrs.items():
            if isinstance(value, Field):
                fields[key] = value
        cls.fields = fields  # type: ignore[attr-defined]
        return cls


class SearchIndex(metaclass=SearchIndexMeta):
    """Base class of an index: the model, its fields and the rows to index."""

    fields: ClassVar[dict[str, Field]]
    #: The model whose rows become documents.
    model: ClassVar[type[models.Model] | None] = None
    #: A DateTimeField of the model that is set on every save (``auto_now``), for
    #: ``solr --update --since``; None disables incremental updates for this index.
    updated_field: ClassVar[str | None] = None

    # -- identity ---------------------------------------------------------------------

    @classmethod
    def label(cls) -> str:
        """``app_label.model_name``: the value of ``django_ct``."""
        assert cls.model is not None
        return cls.model._meta.label_lower

    @classmethod
    def document_id(cls, pk: Any) -> str:
        return f"{cls.label()}.{pk}"

    # -- rows -------------------------------------------------------------------------

    def get_queryset(self) -> models.QuerySet:
        """The rows to index; override to filter (e.g. only published pages)."""
        assert self.model is not None
        return self.model._default_manager.all()

    #: Model fields ``prepare_`` hooks read beyond the declared fields' own attributes
    #: (loaded with ``only()`` together with them); None loads every column.
    load_also: ClassVar[tuple[str, ...] | None] = ()

    def load_fields(self) -> list[str] | None:
        """Model fields to load with ``only()``, so a reindex reads just what it sends.

        Each declared field's attribute, when it is a column of the model, plus
        ``load_also``. None (every column) when a field reads through a relation or
        ``load_also`` is None.
        """
        assert self.model is not None
        if self.load_also is None:
            return None
        concrete = {f.name: f.attname for f in self.model._meta.concrete_fields}
        concrete.update({f.attname: f.attname for f in self.model._meta.concrete_fields})
        names = {self.model._meta.pk.attname}
        for field in self.fields.values():
            if "." in field.attr and not hasattr(self, f"prepare_{field.name}"):
                return None
            if field.attr in concrete:
                names.add(concrete[field.attr])
        for extra in self.load_also:
            names.add(concrete.get(extra, extra))
        return sorted(names)

    # -- documents --------------------------------------------------------------------

    def read(self, obj: models.Model, field: Field) -> Any:
        value: Any = obj
        for part in field.attr.split("."):
            value = getattr(value, part, None)
            if value is None:
                return None
        if callable(value) and not isinstance(value, models.Model):
            value = value()
        if isinstance(value, decimal.Decimal):
            value = float(value)
        if isinstance(value, models.Manager):
            value = list(value.all())
        return value

    def _readers(self) -> list[tuple[str, Field, Any, str | None, type | None]]:
        """Per field, looked up once rather than per row: (name, field, hook or None,
        the attribute to read directly or None, the one Python type that goes into the
        document as it is or None)."""
        readers = self.__dict__.get("_readers_cache")
        if readers is None:
            default_read = type(self).read is SearchIndex.read
            readers = []
            for name, field in self.fields.items():
                hook = getattr(self, f"prepare_{name}", None)
                direct = hook is None and default_read and "." not in field.attr
                stock = (
                    type(field).convert is getattr(FIELD_CLASSES.get(field.kind), "convert", None)
                    and type(field).to_solr is Field.to_solr
                )  # a Field subclass converting values its own way takes the general path
                as_is = _AS_IS.get(field.kind) if stock and not field.multi_valued else None
                readers.append((name, field, hook, field.attr if direct else None, as_is))
            self.__dict__["_readers_cache"] = readers
        return readers

    def prepare(self, obj: models.Model) -> dict[str, Any]:
        """The Solr document of one row (the ``prepare_<field>`` hooks win).

        A reindex calls this for every row, so the common case (a plain column whose
        value already has the field's type, such as a ``str`` for a text field) skips
        :meth:`read` and :meth:`Field.to_solr`; anything else takes the general path.
        """
        label = self.label()
        pk = obj.pk
        doc: dict[str, Any] = {ID_FIELD: f"{label}.{pk}", CT_FIELD: label, PK_FIELD: str(pk)}
        for name, field, hook, attr, as_is in self._readers():
            if hook is not None:
                value = hook(obj)
            elif attr is not None:
                value = getattr(obj, attr, None)
                if as_is is not None and type(value) is as_is:
                    doc[name] = value
                    continue
                if callable(value) or isinstance(value, (decimal.Decimal, models.Manager)):
                    value = self.read(obj, field)
            else:
                value = self.read(obj, field)
            if value is None:
                continue
            if as_is is not None and type(value) is as_is:
                doc[name] = value
                continue
            value = field.to_solr(value)
            if value is not None and value != []:
                doc[name] = value
        return doc

    def __repr__(self) -> str:
        return f"<{type(self).__name__} for {self.label() if self.model else '?'}>"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a registered index, for the system checks."""

    index: str
    message: str
    hint: str | None = None


class Registry:
    """The indexes of the project, one per model, found in ``<app>/search_indexes.py``."""

    def __init__(self) -> None:
        self._indexes: dict[type[models.Model], SearchIndex] = {}
        self._discovered = False
        self._lock = threading.RLock()

    def register(self, index_class: type[SearchIndex]) -> type[SearchIndex]:
        """Register an index class (usable as a decorator); one index per model."""
        model: Any = getattr(index_class, "model", None)
        if model is None or not (isinstance(model, type) and issubclass(model, models.Model)):
            name = f"{index_class.__module__}.{index_class.__qualname__}"
            raise IndexDefinitionError(f"{name} must set model = <a Django model>.")
        with self._lock:
            existing = self._indexes.get(model)
            if existing is not None and type(existing) is not index_class:
                raise AlreadyRegistered(
                    f"{index_class.label()} is indexed twice: by "
                    f"{type(existing).__module__}.{type(existing).__qualname__} and by "
                    f"{index_class.__module__}.{index_class.__qualname__}."
                )
            self._indexes[model] = index_class()
        return index_class

    def unregister(self, model: type[models.Model]) -> None:
        with self._lock:
            self._indexes.pop(model, None)

    def autodiscover(self) -> None:
        """Import every installed app's ``search_indexes`` module, once."""
        with self._lock:
            if self._discovered:
                return
            self._discovered = True
            from django.utils.module_loading import autodiscover_modules

            try:
                autodiscover_modules(AUTODISCOVER_MODULE, register_to=None)
            except Exception:
                self._discovered = False
                raise

    def all(self) -> list[SearchIndex]:
        self.autodiscover()
        return sorted(self._indexes.values(), key=lambda index: index.label())

    def __iter__(self) -> Iterator[SearchIndex]:
        return iter(self.all())

    def get(self, model: type[models.Model]) -> SearchIndex | None:
        self.autodiscover()
        return self._indexes.get(model)

    def for_labels(self, labels: Sequence[str]) -> list[SearchIndex]:
        """Indexes for ``app_label.Model`` words (case-insensitive), or all of them."""
        indexes = self.all()
        if not labels:
            return indexes
        by_label = {index.label(): index for index in indexes}
        chosen = []
        for label in labels:
            index = by_label.get(label.lower())
            if index is None:
                known = ", ".join(by_label) or "none"
                raise IndexDefinitionError(
                    f"No search index for {label!r} (indexed models: {known})."
                )
            if index not in chosen:
                chosen.append(index)
        return chosen

    def field_map(self) -> dict[str, Field]:
        """Every declared field across indexes by name (same name must mean same type)."""
        merged: dict[str, Field] = {}
        for index in self.all():
            for name, field in index.fields.items():
                merged.setdefault(name, field)
        return merged

    def problems(self) -> list[Problem]:
        """What is wrong with the registered indexes (empty when all is well)."""
        found: list[Problem] = []
        seen: dict[str, tuple[str, Field]] = {}
        for index in self.all():
            name = type(index).__qualname__
            assert index.model is not None
            if not index.fields:
                found.append(Problem(name, "declares no fields.", "Add at least one field."))
            model_fields = {f.name for f in index.model._meta.get_fields()}
            model_fields |= {f.attname for f in index.model._meta.concrete_fields}
            for fname, field in index.fields.items():
                if fname in RESERVED or fname.startswith("_"):
                    found.append(
                        Problem(
                            name,
                            f"field {fname!r} uses a reserved name.",
                            f"Rename it; reserved: {', '.join(sorted(RESERVED))}.",
                        )
                    )
                root = field.attr.split(".")[0]
                if (
                    not hasattr(index, f"prepare_{fname}")
                    and root not in model_fields
                    and not hasattr(index.model, root)
                ):
                    found.append(
                        Problem(
                            name,
                            f"field {fname!r} reads {field.attr!r}, which "
                            f"{index.model._meta.label} does not have.",
                            f"Set model_attr= or add a prepare_{fname}(self, obj) method.",
                        )
                    )
                other = seen.get(fname)
                if other is not None and other[1].type_name != field.type_name:
                    found.append(
                        Problem(
                            name,
                            f"field {fname!r} is {field.type_name} here but "
                            f"{other[1].type_name} in {other[0]}.",
                            "One Solr field has one type: rename one of them.",
                        )
                    )
                seen.setdefault(fname, (name, field))
                for missing in _unshipped_files(field.analyzer):
                    found.append(
                        Problem(
                            name,
                            f"the analyzer of field {fname!r} names {missing!r}, which the "
                            "configset does not contain.",
                            f"Use one of {', '.join(SHIPPED_FILES)}, or no word-list file.",
                        )
                    )
            if index.updated_field is not None:
                try:
                    mfield = index.model._meta.get_field(index.updated_field)
                except Exception:
                    mfield = None
                if not isinstance(mfield, (models.DateTimeField, models.DateField)):
                    found.append(
                        Problem(
                            name,
                            f"updated_field {index.updated_field!r} is not a date/time "
                            f"field of {index.model._meta.label}.",
                            "Name a DateTimeField set on every save (auto_now=True), or None.",
                        )
                    )
        return found


registry = Registry()
register = registry.register
