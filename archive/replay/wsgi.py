"""The replay's small WSGI layer: requests refused early, responses with safe headers, the host guard.

Every route is GET/HEAD only and carries no body; every response gets a Content-Security-Policy
(``UI_CSP`` for the replay's own pages, ``ARCHIVE_CSP`` for anything that came from the web).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MAX_TARGET = 8192  # bytes of request-target; longer gets 414
MAX_QUERY_FIELDS = 20

UI_CSP = ("default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'self'; form-action 'self'; "
          "base-uri 'none'; frame-ancestors 'none'")
ARCHIVE_CSP = ("sandbox; default-src 'self' data: blob:; script-src 'none'; object-src 'none'; "
               "style-src 'self' 'unsafe-inline' data:; connect-src 'none'; form-action 'none'; "
               "base-uri 'none'; frame-ancestors 'self'")
COMMON_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")]


class HttpError(Exception):
    def __init__(self, status: int, title: str, detail: str = "", headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(f"{status} {title}")
        self.status, self.title, self.detail, self.headers = status, title, detail, list(headers)


@dataclass
class Response:
    """A response; ``stream`` (with its ``length``), when set, makes the body piece by piece
    instead of ``body``: a capture or a file streamed, never held whole."""

    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    csp: str = UI_CSP
    stream: Callable[[], Iterator[bytes]] | None = None
    length: int = 0

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = self.length if self.stream is not None else len(self.body)
        headers = [("Content-Type", self.content_type), ("Content-Length", str(length)),
                   ("Content-Security-Policy", self.csp), *COMMON_HEADERS, *self.headers]
        start_response(f"{self.status} {_reason(self.status)}", [_safe_header(k, v) for k, v in headers])
        if environ.get("REQUEST_METHOD") == "HEAD":
            return []
        return self.stream() if self.stream is not None else [self.body]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Archived"


def _safe_header(name: str, value: str) -> tuple[str, str]:
    """A header WSGI can send: no line breaks, bytes beyond latin-1 passed through as UTF-8."""
    value = re.sub(r"[\r\n]+", " ", value)
    return name, value.encode("utf-8", "replace").decode("latin-1") if not value.isascii() else value


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # still percent-encoded
    query: str
    range: str = ""  # the Range header (archive.replay.ranges)
    if_range: str = ""

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Request:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            raise HttpError(405, "Method not allowed", "The archive is read-only: GET and HEAD only.",
                            [("Allow", "GET, HEAD")])
        length = environ.get("CONTENT_LENGTH") or "0"
        if (not length.isdigit() or int(length) > 0) or environ.get("HTTP_TRANSFER_ENCODING"):
            raise HttpError(413, "Request body not accepted", "Requests to the archive carry no body.")
        target = environ.get("REQUEST_URI")
        if target is None:  # another WSGI server: rebuild it from the decoded path
            target = quote(environ.get("PATH_INFO", "/").encode("latin-1"), safe="/:@!$&'()*+,;=~")
            if environ.get("QUERY_STRING"):
                target += "?" + environ["QUERY_STRING"]
        if not target.isascii():  # raw UTF-8 from a client that did not escape it (the server read latin-1)
            target = quote(target.encode("latin-1", "replace"), safe="".join(map(chr, range(33, 127))))
        if len(target) > MAX_TARGET:
            raise HttpError(414, "Request-URI too long", f"At most {MAX_TARGET} bytes.")
        if urlsplit(target).scheme and target.lower().startswith(("http:", "https:")):
            target = urlsplit(target)._replace(scheme="", netloc="").geturl() or "/"  # absolute-form
        path, _, query = target.partition("?")
        if not path.startswith("/"):
            raise HttpError(400, "Bad request", "The request target must be a path.")
        return cls(method, path, query, environ.get("HTTP_RANGE", ""), environ.get("HTTP_IF_RANGE", ""))

    def params(self) -> dict[str, str]:
        try:
            pairs = parse_qsl(self.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS,
                              errors="strict")
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, "Bad query string", str(exc)) from exc
        return dict(pairs)


def unquote_path(path: str) -> str:
    """A percent-encoded path decoded; one that is not UTF-8 is a 400."""
    try:
        return unquote(path, errors="strict")
    except UnicodeDecodeError as exc:
        raise HttpError(400, "Bad path", "The path is not UTF-8.") from exc


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, without its port, lowercased (``[::1]:80`` -> ``::1``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def is_loopback_name(name: str) -> bool:
    """``localhost``, a ``*.localhost`` name (RFC 6761: browsers keep them on this machine) or a
    loopback address."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def guard_host(environ: dict[str, Any]) -> None:
    """Refuse (421) a request whose ``Host`` does not name this machine.

    A page on another site that rebinds its own name to 127.0.0.1 (DNS rebinding) would
    otherwise read the archive with the visitor's browser; its requests carry its own name as
    ``Host``. No Host at all (HTTP/1.0 tools) is no browser, hence no rebinding page.
    """
    host = environ.get("HTTP_HOST")
    if host and not is_loopback_name(host_name(host)):
        raise HttpError(421, "Misdirected request", "This replay answers to localhost and 127.0.0.1 "
                        "only: a page on another site must not read the archive.")
