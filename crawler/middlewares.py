"""Downloader middlewares: WARC capture of every exchange."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from archive.warc import HttpExchange, WarcFiles, Written

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

logger = logging.getLogger(__name__)

#: ``request.meta`` key under which the response record's location is left for callbacks.
CAPTURE_META = "warc_capture"


def _header_pairs(headers) -> list[tuple[str, str]]:
    """Scrapy ``Headers`` to ordered (name, value) pairs, repeated names kept."""
    pairs = []
    for name, values in headers.items():
        key = name.decode("latin-1")
        for value in values:
            pairs.append((key, value.decode("latin-1")))
    return pairs


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def exchange_from(request: Request, response: Response) -> HttpExchange:
    """The wire view of a Scrapy request/response pair.

    Runs next to the downloader, so the headers are those Scrapy sent (plus the ``Host`` the
    HTTP client adds) and the body is still content-encoded.
    """
    req_headers = [("Host", urlsplit(request.url).netloc)]
    req_headers += [(k, v) for k, v in _header_pairs(request.headers) if k.lower() != "host"]
    resp_headers = _header_pairs(response.headers)
    chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in resp_headers)
    return HttpExchange(
        url=request.url,
        method=request.method,
        request_headers=req_headers,
        request_body=request.body,
        status=response.status,
        reason=_reason(response.status),
        response_headers=resp_headers,
        body=response.body,
        protocol=response.protocol or "HTTP/1.1",
        ip_address=str(response.ip_address) if response.ip_address else None,
        date=datetime.now(timezone.utc),
        dechunked=chunked,
    )


class WarcCaptureMiddleware:
    """Write a ``request`` and a ``response`` record for every response received.

    Sits closest to the downloader (after every engine-side middleware, before
    ``HttpCompressionMiddleware`` on the way back), so what it stores is what crossed the wire.
    Feeds, pages, images and robots.txt all come through here.
    """

    def __init__(self, files: WarcFiles, crawler: Crawler) -> None:
        self.files = files
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.getbool("WARC_ENABLED"):
            raise NotConfigured("WARC_ENABLED is off")
        files = WarcFiles(
            Path(settings["POSTARC_ARCHIVE_DIR"]) / "warc",
            prefix=settings.get("WARC_PREFIX", "POSTARC"),
            max_size=settings.getint("WARC_MAX_SIZE"),
            software=settings.get("USER_AGENT", "postarc"),
            info={"operator-contact": settings.get("POSTARC_CONTACT_URL", "")},
        )
        mw = cls(files, crawler)
        crawler.signals.connect(mw.close, signal=signals.engine_stopped)
        return mw

    def process_response(self, request: Request, response: Response) -> Response:
        written, _ = self.files.write_exchange(exchange_from(request, response))
        request.meta[CAPTURE_META] = written
        self.stats.inc_value("postarc/warc/records", 2)
        self.stats.inc_value("postarc/warc/payload_bytes", len(response.body))
        return response

    def write_conversion(self, target_uri: str, refers_to: str, content: bytes) -> Written:
        """Record a derived document (a post's Markdown) next to its capture."""
        self.stats.inc_value("postarc/warc/records")
        return self.files.write_conversion(target_uri, refers_to, content)

    def close(self) -> None:
        self.files.close()
        for name in self.files.files_closed:
            logger.info("WARC file closed: %s", name)
