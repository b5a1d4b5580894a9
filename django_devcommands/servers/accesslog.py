"""An access log in the combined log format, as WSGI middleware any engine can use.

``127.0.0.1 - - [26/Nov/2026:11:00:00 +0000] "GET / HTTP/1.1" 200 5120 "-" "curl/8.0"``
(the format nginx and Apache call "combined", which log analysers read).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO


def open_access_log(target: str, stdout: TextIO) -> TextIO:
    """``-`` is the command's standard output; anything else a file opened for appending."""
    if target == "-":
        return stdout
    return open(target, "a", buffering=1, encoding="utf-8")


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"') if value else "-"


class AccessLog:
    """Wraps a WSGI app; writes one combined-format line per response, when it is closed."""

    def __init__(self, app: Callable[..., Any], stream: TextIO) -> None:
        self.app = app
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        seen: dict[str, Any] = {"status": "-", "length": None}

        def logging_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ):
            seen["status"] = status.split(" ", 1)[0]
            for name, value in headers:
                if name.lower() == "content-length":
                    seen["length"] = value
            return (
                start_response(status, headers, exc_info)
                if exc_info
                else start_response(status, headers)
            )

        result = self.app(environ, logging_start_response)
        return _Counted(result, lambda sent: self._write(environ, seen, sent))

    def _write(self, environ: dict[str, Any], seen: dict[str, Any], sent: int) -> None:
        method = environ.get("REQUEST_METHOD", "-")
        request = f"{method} {_request_uri(environ)} {environ.get('SERVER_PROTOCOL', '-')}"
        length = seen["length"] if seen["length"] is not None else (str(sent) if sent else "-")
        line = (
            f"{environ.get('REMOTE_ADDR') or '-'} - {environ.get('REMOTE_USER') or '-'} "
            f'[{time.strftime("%d/%b/%Y:%H:%M:%S %z")}] "{_quote(request)}" {seen["status"]} '
            f'{length} "{_quote(environ.get("HTTP_REFERER", ""))}" '
            f'"{_quote(environ.get("HTTP_USER_AGENT", ""))}"\n'
        )
        with self._lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a full disk or closed log must not fail the request


def _request_uri(environ: dict[str, Any]) -> str:
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if uri:
        return str(uri)
    path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"
    query = environ.get("QUERY_STRING")
    return f"{path}?{query}" if query else path


class _Counted:
    """Counts the bytes of a response and reports them when it is closed."""

    def __init__(self, result: Iterable[bytes], done: Callable[[int], None]) -> None:
        self._result = result
        self._done = done
        self._sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._result:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._done(self._sent)
