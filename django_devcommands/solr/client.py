"""A small Solr 9 HTTP client: JSON updates and queries, plus the admin APIs (cores,
collections, configsets, aliases) the command drives.

Plain ``requests`` rather than a full client library: every call here is one HTTP
request whose failure has to become a clear, one-line error naming the URL.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django_devcommands.solr.errors import (
    MissingDependency,
    SolrAuthError,
    SolrError,
    SolrNotFound,
    SolrUnreachable,
)

logger = logging.getLogger("django_devcommands.solr")

#: HTTP statuses worth retrying: the server is busy, restarting or behind a proxy.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})


def _requests() -> Any:
    try:
        import requests
    except ImportError:
        raise MissingDependency(
            'The solr command needs requests: pip install "django-devcommands[solr]"'
        ) from None
    return requests


class SolrClient:
    """One Solr node or cluster, addressed by its base URL (``http://host:8983/solr``)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        auth: tuple[str, str] | None = None,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        requests = _requests()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = requests.Session()
        if auth:
            self.session.auth = auth
        self._requests = requests

    def __repr__(self) -> str:
        return f"<SolrClient {self.base_url}>"

    def close(self) -> None:
        self.session.close()

    # -- transport ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        data: bytes | str | None = None,
        content_type: str | None = None,
        retry: bool = False,
        timeout: float | None = None,
        not_found: str | None = None,
    ) -> dict[str, Any]:
        """One request; JSON back. ``retry`` re-sends on transient failures with backoff."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        headers = {"Content-Type": content_type} if content_type else None
        query: list[tuple[str, Any]] = list(
            params.items() if isinstance(params, Mapping) else params or []
        )
        query.append(("wt", "json"))
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            try:
                response = self.session.request(
                    method,
                    url,
                    params=query,
                    data=data,
                    headers=headers,
                    timeout=timeout or self.timeout,
                )
            except self._requests.exceptions.RequestException as exc:
                if attempt + 1 < attempts:
                    self._sleep(attempt, f"{type(exc).__name__} from {url}")
                    continue
                raise SolrUnreachable(self.base_url, timeout or self.timeout, exc) from None
            if response.status_code in TRANSIENT_STATUSES and attempt + 1 < attempts:
                self._sleep(attempt, f"HTTP {response.status_code} from {url}")
                continue
            return self._decode(response, url, not_found)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int, why: str) -> None:
        delay = self.backoff * (2**attempt)
        logger.warning("Solr request failed (%s); retrying in %.1fs", why, delay)
        time.sleep(delay)

    def _decode(self, response: Any, url: str, not_found: str | None) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 404 and not_found:
            raise SolrNotFound(not_found)
        if response.status_code in (401, 403):
            raise self._auth_error(response.status_code, url.split("?")[0])
        if response.status_code >= 400 or body is None:
            message = ""
            if isinstance(body, dict):
                error = body.get("error") or {}
                message = error.get("msg") or json.dumps(error)[:300]
            if not message:
                message = response.text[:300].strip() or response.reason
            raise SolrError(
                f"Solr said HTTP {response.status_code} for {url.split('?')[0]}: {message}",
                status=response.status_code,
            )
        return body

    def _auth_error(self, status: int, url: str) -> SolrAuthError:
        """One line saying which credentials failed where, and what to set.

        Solr's own 401/403 body is a Jetty HTML page, useless on a terminal.
        """
        auth = self.session.auth
        if status == 403:
            who = f"user {auth[0]!r}" if auth else "an anonymous request"
            return SolrAuthError(
                f"Solr authorization failed (HTTP 403) for {url}: {who} lacks the "
                "permission for this request.",
                status=status,
            )
        if auth:
            why = f"Solr rejected the user {auth[0]!r} and password of DEVCOMMANDS['SOLR_AUTH']."
        else:
            why = "Solr requires credentials: set DEVCOMMANDS['SOLR_AUTH'] = (user, password)."
        return SolrAuthError(
            f"Solr authentication failed (HTTP 401) for {url}: {why}", status=status
        )

    # -- node ---------------------------------------------------------------------------

    def system_info(self) -> dict[str, Any]:
        return self.request("GET", "admin/info/system")

    def is_cloud(self) -> bool:
        return self.system_info().get("mode") == "solrcloud"

    # -- cores (standalone) ---------------------------------------------------------------

    def core_names(self) -> list[str]:
        return list(
            self.request("GET", "admin/cores", params={"action": "STATUS", "indexInfo": "false"})[
                "status"
            ]
        )

    def core_exists(self, name: str) -> bool:
        status = self.request(
            "GET", "admin/cores", params={"action": "STATUS", "core": name, "indexInfo": "false"}
        )
        return bool(status["status"].get(name))

    def create_core(
        self, name: str, config_set: str, properties: Mapping[str, str] | None = None
    ) -> None:
        """``properties`` become the core's own properties (``${name}`` in its config)."""
        params = {"action": "CREATE", "name": name, "instanceDir": name, "configSet": config_set}
        params.update({f"property.{k}": v for k, v in (properties or {}).items()})
        self.request("GET", "admin/cores", params=params, timeout=max(self.timeout, 60))

    def unload_core(self, name: str, delete: bool = True) -> None:
        params = {"action": "UNLOAD", "core": name}
        if delete:
            params.update(deleteIndex="true", deleteDataDir="true", deleteInstanceDir="true")
        self.request("GET", "admin/cores", params=params, timeout=max(self.timeout, 60))

    def swap_cores(self, core: str, other: str) -> None:
        self.request("GET", "admin/cores", params={"action": "SWAP", "core": core, "other": other})

    # -- collections, aliases, configsets (SolrCloud) -------------------------------------

    def collections(self) -> list[str]:
        return list(
            self.request("GET", "admin/collections", params={"action": "LIST"}).get(
                "collections", []
            )
        )

    def aliases(self) -> dict[str, str]:
        return dict(
            self.request("GET", "admin/collections", params={"action": "LISTALIASES"}).get(
                "aliases", {}
            )
        )

    def create_collection(
        self, name: str, config_set: str, shards: int = 1, replicas: int = 1
    ) -> None:
        self.request(
            "GET",
            "admin/collections",
            params={
                "action": "CREATE",
                "name": name,
                "collection.configName": config_set,
                "numShards": shards,
                "replicationFactor": replicas,
                "waitForFinalState": "true",
            },
            timeout=max(self.timeout, 120),
        )

    def delete_collection(self, name: str) -> None:
        self.request(
            "GET",
            "admin/collections",
            params={"action": "DELETE", "name": name},
            timeout=max(self.timeout, 120),
        )

    def create_alias(self, name: str, collections: Iterable[str]) -> None:
        """Point ``name`` at ``collections``; re-pointing an existing alias is atomic."""
        self.request(
            "GET",
            "admin/collections",
            params={
                "action": "CREATEALIAS",
                "name": name,
                "collections": ",".join(collections),
            },
        )

    def live_node_urls(self) -> list[str]:
        """The base URL of every live SolrCloud node."""
        status = self.request("GET", "admin/collections", params={"action": "CLUSTERSTATUS"})
        scheme = self.base_url.split("://", 1)[0]
        urls = []
        for node in status["cluster"].get("live_nodes", []):
            address, _, context = node.partition("_")
            urls.append(f"{scheme}://{address}/{context.replace('%2F', '/')}")
        return urls

    def wait_for_alias(self, name: str, collections: Iterable[str], timeout: float = 30) -> None:
        """Until every live node resolves alias ``name`` to ``collections`` (or timeout)."""
        wanted = ",".join(collections)
        deadline = time.monotonic() + timeout
        pending = self.live_node_urls()
        while pending and time.monotonic() < deadline:
            still = []
            for url in pending:
                node = SolrClient(url, timeout=self.timeout, auth=self.session.auth, retries=0)
                try:
                    if node.aliases().get(name) != wanted:
                        still.append(url)
                finally:
                    node.close()
            pending = still
            if pending:
                time.sleep(0.1)
        if pending:
            logger.warning("Nodes %s still see the old alias %r after %gs", pending, name, timeout)

    def delete_alias(self, name: str) -> None:
        self.request("GET", "admin/collections", params={"action": "DELETEALIAS", "name": name})

    def configsets(self) -> list[str]:
        return list(
            self.request("GET", "admin/configs", params={"action": "LIST"}).get("configSets", [])
        )

    def upload_configset(self, name: str, zipped: bytes, overwrite: bool = True) -> None:
        self.request(
            "POST",
            "admin/configs",
            params={
                "action": "UPLOAD",
                "name": name,
                "overwrite": str(overwrite).lower(),
                "cleanup": "true",
            },
            data=zipped,
            content_type="application/octet-stream",
        )

    def delete_configset(self, name: str) -> None:
        self.request("GET", "admin/configs", params={"action": "DELETE", "name": name})

    # -- one core or collection ---------------------------------------------------------

    def _missing(self, collection: str) -> str:
        return (
            f"Solr at {self.base_url} has no core or collection {collection!r}: "
            "create it with `manage.py solr --create`."
        )

    def update(
        self, collection: str, body: bytes | str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST a JSON update body (documents array or commands object); retried."""
        return self.request(
            "POST",
            f"{collection}/update",
            params=params,
            data=body,
            content_type="application/json",
            retry=True,
            not_found=self._missing(collection),
        )

    def add(
        self, collection: str, docs: Sequence[Mapping[str, Any]], commit_within: int | None = None
    ) -> None:
        params = {"commitWithin": commit_within} if commit_within else None
        self.update(collection, json.dumps(docs, separators=(",", ":")), params)

    def delete_ids(
        self, collection: str, ids: Sequence[str], commit_within: int | None = None
    ) -> None:
        if ids:
            params = {"commitWithin": commit_within} if commit_within else None
            self.update(collection, json.dumps({"delete": list(ids)}), params)

    def delete_by_query(self, collection: str, query: str) -> None:
        self.update(collection, json.dumps({"delete": {"query": query}}))

    def commit(self, collection: str) -> None:
        self.request(
            "POST",
            f"{collection}/update",
            params={"commit": "true", "waitSearcher": "true"},
            data="{}",
            content_type="application/json",
            retry=True,
            timeout=max(self.timeout, 120),
            not_found=self._missing(collection),
        )

    def select(
        self, collection: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]]
    ) -> dict[str, Any]:
        return self.request(
            "GET", f"{collection}/select", params=params, not_found=self._missing(collection)
        )

    def count(self, collection: str, query: str = "*:*") -> int:
        return int(self.select(collection, {"q": query, "rows": 0})["response"]["numFound"])

    def schema_get(self, collection: str, what: str, **params: Any) -> dict[str, Any]:
        return self.request(
            "GET", f"{collection}/schema/{what}", params=params, not_found=self._missing(collection)
        )

    def schema_update(self, collection: str, commands: Sequence[Mapping[str, Any]]) -> None:
        """Send Schema API commands in order, in one request (repeated keys are allowed)."""
        body = (
            "{"
            + ",".join(
                f"{json.dumps(key)}:{json.dumps(value)}"
                for command in commands
                for key, value in command.items()
            )
            + "}"
        )
        self.request(
            "POST",
            f"{collection}/schema",
            data=body,
            content_type="application/json",
            timeout=max(self.timeout, 60),
            not_found=self._missing(collection),
        )


# -- from the project's settings ------------------------------------------------------------


def resolve_url() -> str:
    """``DEVCOMMANDS['SOLR_URL']``, else the URL of the Solr ``solr --start`` runs
    (the installed one when ``SOLR_INSTALL`` is set)."""
    from django_devcommands.conf import conf
    from django_devcommands.solr import local

    if conf.SOLR_URL:
        return conf.SOLR_URL
    if conf.SOLR_INSTALL:
        url = local.installed_url(conf.SOLR_MODE, conf.SOLR_LOCAL_DIR, conf.SOLR_INSTALL)
        if url is None:
            raise SolrError(
                f"No DEVCOMMANDS['SOLR_URL'] is set and `manage.py solr --start` has not "
                f"started {conf.SOLR_INSTALL}: start it, or set SOLR_URL."
            )
        return url
    solr = local.running(conf.SOLR_MODE, conf.SOLR_LOCAL_DIR)
    if solr is None:
        raise SolrError(
            "No DEVCOMMANDS['SOLR_URL'] is set and no local Solr is running: "
            "start one with `manage.py solr --start`, or set SOLR_URL."
        )
    return solr.url


def from_settings(retries: int = 3) -> SolrClient:
    """A client for the configured Solr (URL, timeout, auth from ``DEVCOMMANDS``)."""
    from django_devcommands.conf import conf

    return SolrClient(
        resolve_url(), timeout=conf.SOLR_TIMEOUT, auth=conf.SOLR_AUTH, retries=retries
    )
