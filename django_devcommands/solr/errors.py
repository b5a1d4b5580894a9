"""Errors of the Solr launchers; the ``solr`` command turns each into a one-line CommandError."""

from __future__ import annotations


class SolrError(Exception):
    """Solr answered, but with an error (or the request makes no sense)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SolrUnreachable(SolrError):
    """No answer from Solr within the timeout: names the URL."""

    def __init__(self, url: str, timeout: float, cause: BaseException | None = None) -> None:
        why = f" ({type(cause).__name__})" if cause is not None else ""
        super().__init__(
            f"Solr is unreachable at {url} within {timeout:g}s{why}. "
            "Start it (manage.py solr --start) or set DEVCOMMANDS['SOLR_URL']."
        )
        self.url = url


class SolrAuthError(SolrError):
    """Solr refused the request: no or wrong credentials (401) or no permission (403)."""


class SolrNotFound(SolrError):
    """The core, collection or alias does not exist; the message says how to create it."""


class MissingDependency(SolrError):
    """An optional package (requests, Java, Maven) is missing; the message names the fix."""


class LocalSolrError(SolrError):
    """The local Solr could not be provisioned, started or stopped."""
