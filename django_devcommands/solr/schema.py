"""The Solr 9 schema of the project's indexes: as a configset on disk, or applied live.

:func:`write_configset` writes a complete configset (``managed-schema.xml``,
``solrconfig.xml`` and the word lists they name) that boots in Solr 9 as it is: point
fields only (no Trie*), no ``<lib>``, no XSLT/velocity writers, the managed schema
factory so that :func:`sync_schema` can later change it through the Schema API.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from django_devcommands.solr import indexes as ix

if TYPE_CHECKING:
    from django_devcommands.solr.client import SolrClient

LUCENE_MATCH_VERSION = "9.12"
#: The Solr property that switches a core's update (transaction) log; see solrconfig_xml().
ULOG_PROPERTY = "solr.ulog.enable"

_TEXT_GENERAL = {
    "name": "text_general",
    "class": "solr.TextField",
    "positionIncrementGap": "100",
    "indexAnalyzer": {
        "tokenizer": {"name": "standard"},
        "filters": [
            {"name": "stop", "ignoreCase": "true", "words": "stopwords.txt"},
            {"name": "lowercase"},
        ],
    },
    "queryAnalyzer": {
        "tokenizer": {"name": "standard"},
        "filters": [
            {"name": "stop", "ignoreCase": "true", "words": "stopwords.txt"},
            {
                "name": "synonymGraph",
                "synonyms": "synonyms.txt",
                "ignoreCase": "true",
                "expand": "true",
            },
            {"name": "lowercase"},
        ],
    },
}

#: The field types the schema defines, as the Schema API spells them.
FIELD_TYPES: dict[str, dict[str, Any]] = {
    "string": {
        "name": "string",
        "class": "solr.StrField",
        "sortMissingLast": "true",
        "docValues": "true",
    },
    "boolean": {
        "name": "boolean",
        "class": "solr.BoolField",
        "sortMissingLast": "true",
        "docValues": "true",  # what schema version 1.7 gives it anyway: said, so plan() knows
    },
    "pint": {"name": "pint", "class": "solr.IntPointField", "docValues": "true"},
    "plong": {"name": "plong", "class": "solr.LongPointField", "docValues": "true"},
    "pfloat": {"name": "pfloat", "class": "solr.FloatPointField", "docValues": "true"},
    "pdouble": {"name": "pdouble", "class": "solr.DoublePointField", "docValues": "true"},
    "pdate": {"name": "pdate", "class": "solr.DatePointField", "docValues": "true"},
    "text_general": _TEXT_GENERAL,
}

#: Fields every document has, whatever the indexes declare.
SYSTEM_FIELDS: list[dict[str, Any]] = [
    {
        "name": ix.ID_FIELD,
        "type": "string",
        "indexed": True,
        "stored": True,
        "required": True,
        "multiValued": False,
    },
    {"name": ix.CT_FIELD, "type": "string", "indexed": True, "stored": True, "multiValued": False},
    {"name": ix.PK_FIELD, "type": "string", "indexed": True, "stored": True, "multiValued": False},
    {
        "name": ix.TEXT_FIELD,
        "type": "text_general",
        "indexed": True,
        "stored": False,
        "multiValued": True,
    },
    {"name": ix.VERSION_FIELD, "type": "plong", "indexed": False, "stored": False},
]
SYSTEM_NAMES = frozenset(f["name"] for f in SYSTEM_FIELDS) | {
    ix.ROOT_FIELD,
    "_nest_path_",
    "_nest_parent_",
}

STOPWORDS = "# One stop word per line; used by the text_general field type.\n"
SYNONYMS = "# Synonyms for query-time expansion (Solr synonyms format), e.g.\n# tv, television\n"

_ATTRS = ("type", "indexed", "stored", "multiValued", "required")


@dataclass
class SchemaPlan:
    """Field types, fields and copy fields the indexes need."""

    field_types: dict[str, dict[str, Any]] = field(default_factory=dict)
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    copy_fields: list[tuple[str, str]] = field(default_factory=list)


def _analyzer_type(f: ix.Field) -> dict[str, Any]:
    analyzer = dict(f.analyzer or {})
    return {
        "name": f.type_name,
        "class": "solr.TextField",
        "positionIncrementGap": "100",
        "analyzer": {
            "tokenizer": dict(analyzer.get("tokenizer", {"name": "standard"})),
            "filters": [dict(x) for x in analyzer.get("filters", [])],
        },
    }


def plan(indexes: Iterable[ix.SearchIndex]) -> SchemaPlan:
    """What the schema must contain for these indexes."""
    result = SchemaPlan(field_types={k: dict(v) for k, v in FIELD_TYPES.items()})
    for sys_field in SYSTEM_FIELDS:
        result.fields[sys_field["name"]] = dict(sys_field)
    for index in indexes:
        for name, f in index.fields.items():
            if name in result.fields:
                continue
            if f.analyzer:
                result.field_types[f.type_name] = _analyzer_type(f)
            result.fields[name] = {
                "name": name,
                "type": f.type_name,
                "indexed": f.indexed,
                "stored": f.stored,
                "multiValued": f.multi_valued,
                "required": f.required,
            }
            if _type_has_doc_values(f.type_name):
                # Solr also searches a field through its docValues, and returns them
                # as if stored: indexed=False means not searchable (and not paid for
                # when indexing), stored=False not returned.
                if not f.indexed:
                    result.fields[name]["docValues"] = False
                elif not f.stored:
                    result.fields[name]["useDocValuesAsStored"] = False
            if f.copy_to_text and (name, ix.TEXT_FIELD) not in result.copy_fields:
                result.copy_fields.append((name, ix.TEXT_FIELD))
    return result


# -- the configset on disk ---------------------------------------------------------------


def _attrs(mapping: dict[str, Any], skip: Iterable[str] = ()) -> str:
    out = []
    for key, value in mapping.items():
        if key in skip or isinstance(value, (dict, list)):
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        out.append(f"{key}={quoteattr(text)}")
    return " ".join(out)


def _analyzer_xml(analyzer: dict[str, Any], kind: str | None) -> str:
    head = f'<analyzer type="{kind}">' if kind else "<analyzer>"
    parts = [f"      {head}", f"        <tokenizer {_attrs(analyzer['tokenizer'])}/>"]
    parts += [f"        <filter {_attrs(flt)}/>" for flt in analyzer.get("filters", [])]
    parts.append("      </analyzer>")
    return "\n".join(parts)


def _field_type_xml(ft: dict[str, Any]) -> str:
    body = []
    for key, kind in (("analyzer", None), ("indexAnalyzer", "index"), ("queryAnalyzer", "query")):
        if key in ft:
            body.append(_analyzer_xml(ft[key], kind))
    if not body:
        return f"    <fieldType {_attrs(ft)}/>"
    return f"    <fieldType {_attrs(ft)}>\n" + "\n".join(body) + "\n    </fieldType>"


def managed_schema_xml(schema: SchemaPlan, name: str = "devcommands") -> str:
    """The text of ``managed-schema.xml``."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- Written by django-devcommands (manage.py solr, schema action) from the project's",
        "     search indexes. Change the indexes and write it again rather than editing it. -->",
        f'<schema name={quoteattr(name)} version="1.7">',
        f"  <uniqueKey>{ix.ID_FIELD}</uniqueKey>",
        "",
    ]
    lines += [f"  <field {_attrs(f)}/>" for f in schema.fields.values()]
    lines.append("")
    lines += [f'  <copyField source="{s}" dest="{d}"/>' for s, d in schema.copy_fields]
    lines += ["", "  <types>"]
    lines += [_field_type_xml(ft) for ft in schema.field_types.values()]
    lines += ["  </types>", "</schema>", ""]
    return "\n".join(lines)


def solrconfig_xml() -> str:
    """The text of ``solrconfig.xml``: only what Solr 9 supports, nothing loaded by ``<lib>``."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by django-devcommands (manage.py solr, schema action) for Solr 9. -->
<config>
  <luceneMatchVersion>{LUCENE_MATCH_VERSION}</luceneMatchVersion>
  <dataDir>${{solr.data.dir:}}</dataDir>
  <directoryFactory name="DirectoryFactory"
                    class="${{solr.directoryFactory:solr.NRTCachingDirectoryFactory}}"/>
  <schemaFactory class="ManagedIndexSchemaFactory">
    <bool name="mutable">true</bool>
    <str name="managedSchemaResourceName">managed-schema.xml</str>
  </schemaFactory>
  <indexConfig>
    <lockType>${{solr.lock.type:native}}</lockType>
    <ramBufferSizeMB>100</ramBufferSizeMB>
  </indexConfig>
  <updateHandler class="solr.DirectUpdateHandler2">
    <!-- Off for a core created with property.{ULOG_PROPERTY}=false (SOLR_UPDATE_LOG =
         False): bulk indexing threads then no longer queue for the log's lock. -->
    <updateLog enable="${{{ULOG_PROPERTY}:true}}">
      <str name="dir">${{solr.ulog.dir:}}</str>
    </updateLog>
    <autoCommit>
      <maxTime>${{solr.autoCommit.maxTime:15000}}</maxTime>
      <openSearcher>false</openSearcher>
    </autoCommit>
    <autoSoftCommit>
      <maxTime>${{solr.autoSoftCommit.maxTime:-1}}</maxTime>
    </autoSoftCommit>
  </updateHandler>
  <query>
    <filterCache size="512" initialSize="512" autowarmCount="0"/>
    <queryResultCache size="512" initialSize="512" autowarmCount="0"/>
    <documentCache size="512" initialSize="512" autowarmCount="0"/>
    <enableLazyFieldLoading>true</enableLazyFieldLoading>
    <useColdSearcher>false</useColdSearcher>
  </query>
  <requestDispatcher>
    <httpCaching never304="true"/>
  </requestDispatcher>
  <requestHandler name="/select" class="solr.SearchHandler">
    <lst name="defaults">
      <str name="echoParams">explicit</str>
      <int name="rows">10</int>
      <str name="df">{ix.TEXT_FIELD}</str>
      <str name="q.op">AND</str>
    </lst>
  </requestHandler>
  <queryResponseWriter name="json" class="solr.JSONResponseWriter">
    <str name="content-type">application/json; charset=UTF-8</str>
  </queryResponseWriter>
</config>
"""


def configset_files(indexes: Iterable[ix.SearchIndex], name: str = "devcommands") -> dict[str, str]:
    """File name -> text of every file of the configset."""
    return {
        "managed-schema.xml": managed_schema_xml(plan(indexes), name),
        "solrconfig.xml": solrconfig_xml(),
        "stopwords.txt": STOPWORDS,
        "synonyms.txt": SYNONYMS,
    }


def write_configset(
    path: str | Path, indexes: Iterable[ix.SearchIndex], name: str = "devcommands"
) -> list[Path]:
    """Write the configset's files into ``path`` (created if needed); returns their paths."""
    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, text in configset_files(indexes, name).items():
        out = target / filename
        out.write_text(text, encoding="utf-8")
        written.append(out)
    return written


def configset_zip(indexes: Iterable[ix.SearchIndex], name: str = "devcommands") -> bytes:
    """The configset as a zip, for the Configsets API (SolrCloud)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for filename, text in configset_files(indexes, name).items():
            zf.writestr(filename, text)
    return buf.getvalue()


def describe_fields(indexes: Iterable[ix.SearchIndex]) -> list[tuple[str, str, str]]:
    """(name, Solr type, flags) rows for ``solr --fields``."""
    rows = []
    schema = plan(indexes)
    copied = {s for s, _ in schema.copy_fields}
    for f in schema.fields.values():
        flags = [k for k in ("indexed", "stored", "multiValued", "required") if f.get(k)]
        if f["name"] in copied:
            flags.append(f"copy->{ix.TEXT_FIELD}")
        if f["name"] in SYSTEM_NAMES:
            flags.append("system")
        rows.append((f["name"], f["type"], ", ".join(flags)))
    return rows


# -- the Schema API -----------------------------------------------------------------------


def _norm(value: Any) -> Any:
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    return value


def _doc_values(f: dict[str, Any]) -> bool:
    """Whether a planned field has docValues: its own setting (see plan()), else its type's
    (the live fields are read with showDefaults, so they carry the effective value)."""
    if "docValues" in f:
        return bool(f["docValues"])
    return _type_has_doc_values(f["type"])


def _type_has_doc_values(type_name: str) -> bool:
    return FIELD_TYPES.get(type_name, {}).get("docValues") == "true"


def schema_changes(
    client: SolrClient, collection: str, indexes: Iterable[ix.SearchIndex], prune: bool = False
) -> list[dict[str, Any]]:
    """The Schema API commands that make the live schema match the indexes (maybe none)."""
    wanted = plan(indexes)
    live_types = {
        ft["name"]: ft for ft in client.schema_get(collection, "fieldtypes")["fieldTypes"]
    }
    live_fields = {
        f["name"]: f for f in client.schema_get(collection, "fields", showDefaults="true")["fields"]
    }
    live_copies = {
        (c["source"], c["dest"]) for c in client.schema_get(collection, "copyfields")["copyFields"]
    }
    commands: list[dict[str, Any]] = []
    for name, ft in wanted.field_types.items():
        if name not in live_types:
            commands.append({"add-field-type": ft})
        elif "analyzer" in ft and _analyzer_differs(live_types[name], ft):
            commands.append({"replace-field-type": ft})
    for name, f in wanted.fields.items():
        live = live_fields.get(name)
        if live is None:
            commands.append({"add-field": f})
        elif name not in SYSTEM_NAMES and (
            any(_norm(live.get(k, False)) != _norm(f.get(k, False)) for k in _ATTRS)
            or _norm(live.get("docValues", False)) != _doc_values(f)
            or _norm(live.get("useDocValuesAsStored", True)) != f.get("useDocValuesAsStored", True)
        ):
            commands.append({"replace-field": f})
    for source, dest in wanted.copy_fields:
        if (source, dest) not in live_copies:
            commands.append({"add-copy-field": {"source": source, "dest": dest}})
    if prune:
        for source, dest in sorted(live_copies):
            if (source, dest) not in wanted.copy_fields:
                commands.insert(0, {"delete-copy-field": {"source": source, "dest": dest}})
        for name in sorted(live_fields):
            if name not in wanted.fields and name not in SYSTEM_NAMES:
                commands.append({"delete-field": {"name": name}})
    return commands


def _analyzer_differs(live: dict[str, Any], wanted: dict[str, Any]) -> bool:
    def canon(a: dict[str, Any]) -> Any:
        an = a.get("analyzer") or {}
        tok = {k: v for k, v in (an.get("tokenizer") or {}).items() if k != "class"}
        flts = [{k: v for k, v in f.items() if k != "class"} for f in an.get("filters", [])]
        return tok, flts

    return canon(live) != canon(wanted)


def sync_schema(
    client: SolrClient, collection: str, indexes: Iterable[ix.SearchIndex], prune: bool = False
) -> list[dict[str, Any]]:
    """Apply :func:`schema_changes` in one Schema API request; returns what was applied."""
    commands = schema_changes(client, collection, list(indexes), prune=prune)
    if commands:
        client.schema_update(collection, commands)
    return commands
