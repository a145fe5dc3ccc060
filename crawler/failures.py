"""Failures of a fetch: their words (``describe``) and which a later run may not meet (``Transient``).

Feeds, pages, images and robots.txt all fail through ``describe``, so a user (and cron's mail)
meets the same few words whatever was fetched, and never a traceback: a traceback means a bug.
"""

from __future__ import annotations

import zlib
from gzip import BadGzipFile
from urllib.parse import urlsplit

from typing import TYPE_CHECKING

from scrapy.exceptions import (CannotResolveHostError, DownloadCancelledError, DownloadConnectionRefusedError,
                               DownloadFailedError, DownloadTimeoutError, IgnoreRequest, NotSupported,
                               ResponseDataLossError, UnsupportedURLSchemeError)
from twisted.internet.error import (ConnectError, ConnectionDone, ConnectionLost, ConnectionRefusedError,
                                    DNSLookupError, SSLError, TCPTimedOutError, TimeoutError)
from twisted.python.failure import Failure
from scrapy.utils.misc import load_object
from twisted.web._newclient import _DataLoss  # what Twisted puts in ResponseFailed for a body cut short
from twisted.web.client import PotentialDataLoss, ResponseFailed, ResponseNeverReceived

from crawler.diskfull import REASON as DISK_FULL
from crawler.diskfull import disk_full_error

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

#: Every reason a fetch can give, as it is printed (``HTTP <status>`` with the status code).
#: A reason outside these is a bug; ``download failed (<ExceptionName>)`` names it without a traceback.
VOCABULARY = (
    "HTTP <status>", "connection refused", "connection lost", "body cut short", "timeout", "host not found",
    "TLS error", "too large", "bad gzip", "redirect loop", "redirect to a non-http URL", "robots.txt disallowed",
    "not an http(s) URL", DISK_FULL, "download failed (<ExceptionName>)",
)

_REFUSED = (DownloadConnectionRefusedError, ConnectionRefusedError)
_TIMEOUT = (DownloadTimeoutError, TimeoutError, TCPTimedOutError)
_NO_HOST = (CannotResolveHostError, DNSLookupError)
_LOST = (ConnectionLost, ConnectionDone, ResponseNeverReceived, ResponseFailed, DownloadFailedError, ConnectError)
_BAD_ENCODING = (BadGzipFile, zlib.error, EOFError)


def _inner(error: BaseException) -> BaseException:
    """The connection error inside Twisted's ``ResponseFailed`` (re-raised by Scrapy as
    ``DownloadFailedError``), which holds a list of Failures."""
    reasons = [r.value for r in getattr(error, "reasons", None) or getattr(error.__cause__, "reasons", None) or []
               if isinstance(r, Failure)]
    # A body cut short comes as a lost connection and the data loss it caused: the latter says more.
    return next((r for r in reasons if isinstance(r, (_DataLoss, PotentialDataLoss))), reasons[0] if reasons else error)


def http_reason(status: int, location: bytes | str | None = None) -> str:
    """``HTTP <status>``, or ``redirect to a non-http URL`` for a redirect Scrapy would not follow."""
    if 300 <= status < 400 and location:
        if isinstance(location, bytes):
            location = location.decode("latin-1")
        if urlsplit(location.strip()).scheme.lower() not in ("", "http", "https"):
            return "redirect to a non-http URL"
    return f"HTTP {status}"


def describe(failure: Failure | BaseException) -> str:
    """The one-line reason for a failed request, from ``VOCABULARY``."""
    error = failure.value if isinstance(failure, Failure) else failure
    response = getattr(error, "response", None)
    if response is not None:  # HttpError: a status the spider did not ask for
        return http_reason(response.status, response.headers.get("Location"))
    error = _inner(error)
    if disk_full_error(error) is not None:  # its records could not be written: DiskFullGuard stops the crawl
        return DISK_FULL
    text = str(error)
    if isinstance(error, IgnoreRequest):
        if "robots.txt" in text:
            return "robots.txt disallowed"
        if "max redirections" in text:
            return "redirect loop"
        if "DOWNLOAD_MAXSIZE" in text or "max size" in text:
            return "too large"
    if isinstance(error, DownloadCancelledError):
        # Scrapy 2.19 cancels a download for its size cap: with the size in the text when a
        # Content-Length says so in advance, as a bare CancelledError when a body without one
        # passes the cap. (A forced shutdown cancels too, but then no reason is reported.)
        return "too large"
    if isinstance(error, _REFUSED):
        return "connection refused"
    if isinstance(error, _TIMEOUT):
        return "timeout"
    if isinstance(error, _NO_HOST):
        return "host not found"
    if isinstance(error, (ResponseDataLossError, _DataLoss, PotentialDataLoss)):
        return "body cut short"
    if isinstance(error, SSLError) or type(error).__module__.startswith("OpenSSL"):
        return "TLS error"
    if isinstance(error, _BAD_ENCODING):
        return "bad gzip"
    if isinstance(error, (UnsupportedURLSchemeError, NotSupported)):
        return "not an http(s) URL"
    if isinstance(error, _LOST):
        return "connection lost"
    return f"download failed ({type(error).__name__})"


class Transient:
    """Which failures a later run may not meet: those Scrapy's ``RetryMiddleware`` retries
    (``RETRY_HTTP_CODES``: 5xx, 408, 429; ``RETRY_EXCEPTIONS``: timeouts, refused and lost
    connections, DNS). A 404, a robots.txt ban or a body over ``DOWNLOAD_MAXSIZE`` will be the
    same next time."""

    def __init__(self, settings: BaseSettings) -> None:
        self.codes = frozenset(int(code) for code in settings.getlist("RETRY_HTTP_CODES"))
        self.exceptions = tuple(load_object(e) if isinstance(e, str) else e
                                for e in settings.getlist("RETRY_EXCEPTIONS"))

    def status(self, status: int) -> bool:
        return status in self.codes

    def failure(self, failure: Failure) -> bool:
        response = getattr(failure.value, "response", None)
        if response is not None:  # HttpError
            return self.status(response.status)
        return isinstance(failure.value, self.exceptions)
