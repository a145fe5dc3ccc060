"""Downloader middlewares: WARC capture of every exchange."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from scrapy.utils.asyncio import run_in_thread

from archive.warc.writer import HttpExchange, Original, file_digest, payload_digest
from crawler.capture import WarcCapture, first_capture
from crawler.diskfull import DiskFullGuard
from crawler.handlers import WireHead
from crawler.protocol import CAPTURE_HEAD_META, CAPTURE_META, REPLAY_FLAG, SPOOLED_META, TARGET_URI_META, WIRE_META
from crawler.state import ArchiveState, state_of

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector
    from typing_extensions import Self



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


def exchange_from(request: Request, response: Response, wire: WireHead | None) -> HttpExchange:
    """The wire view of a Scrapy request/response pair.

    With a ``WireHead`` (left by ``crawler.handlers.WireHTTP11DownloadHandler``) the heads are
    exactly what crossed the connection; without one they are rebuilt from Scrapy's view (the
    headers Scrapy sent plus ``Host``, the standard reason phrase). Either way the body is the
    one received, still content-encoded: this middleware runs next to the downloader.
    """
    exchange = HttpExchange(
        url=request.meta.get(TARGET_URI_META, request.url),
        method=request.method,
        request_headers=[],
        request_body=request.body,
        status=response.status,
        reason="",
        response_headers=[],
        body=response.body,
        protocol=response.protocol or "HTTP/1.1",
        ip_address=str(response.ip_address) if response.ip_address else None,
        date=datetime.now(timezone.utc),
    )
    if wire is not None:
        exchange.request_headers = wire.request_headers
        exchange.request_target = wire.request_target
        exchange.request_protocol = wire.request_protocol
        exchange.protocol = wire.protocol
        exchange.reason = wire.reason
        exchange.response_headers = wire.response_headers
    else:
        exchange.request_headers = [("Host", urlsplit(request.url).netloc)] + [
            (k, v) for k, v in _header_pairs(request.headers) if k.lower() != "host"]
        exchange.reason = _reason(response.status)
        exchange.response_headers = _header_pairs(response.headers)
    return exchange


class WarcCaptureMiddleware:
    """Turn every response into a ``request`` and a ``response`` (or ``revisit``) record.

    Sits closest to the downloader (after every engine-side middleware, before
    ``HttpCompressionMiddleware`` on the way back), so what it stores is what crossed the wire.
    Feeds, pages, images and robots.txt all come through here. The records are written by the
    capture service (``crawler.capture.WarcCapture``); this middleware decides what they are.

    A payload whose digest the catalogue already holds (this run or an earlier one) becomes a
    ``revisit`` record citing the first capture; payloads under ``WARC_REVISIT_MIN_SIZE`` bytes
    are always stored whole (a revisit would be no smaller, and an empty body is not worth
    pointing at). A response goes on to the spider only once its records are flushed: a killed
    crawl loses only the records of requests still in flight.
    """

    def __init__(self, capture: WarcCapture, state: ArchiveState, stats: StatsCollector, revisit_min_size: int,
                 disk_full: DiskFullGuard | None = None) -> None:
        self.capture = capture
        self.state = state
        self.stats = stats
        self.revisit_min_size = revisit_min_size
        self.disk_full = disk_full
        # Payloads being written now, by digest: set once the first capture is catalogued, so
        # that a copy arriving meanwhile becomes a revisit of it.
        self._capturing: dict[str, asyncio.Future[None]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        capture = crawler.get_extension(WarcCapture)
        if capture is None:  # WARC_ENABLED off, or the extension left out
            raise NotConfigured("crawler.capture.WarcCapture is off")
        return cls(capture, state_of(crawler), crawler.stats, crawler.settings.getint("WARC_REVISIT_MIN_SIZE"),
                   crawler.get_extension(DiskFullGuard))  # None if that extension is off

    def _original(self, digest: str) -> Original | None:
        return first_capture(self.state.state, digest)

    def process_response(self, request: Request, response: Response) -> Response | Coroutine[Any, Any, Response]:
        """The response itself if it came from the archive, else once its records are written."""
        if REPLAY_FLAG in response.flags:
            return response
        return self._capture(request, response)

    async def _capture(self, request: Request, response: Response) -> Response:
        exchange = exchange_from(request, response, request.meta.pop(WIRE_META, None))
        exchange.body_file = request.meta.get(SPOOLED_META)  # a body the handler spooled to a file
        size = exchange.body_length
        if size < self.revisit_min_size:
            digest = ""
        elif exchange.body_file is not None:  # read off the reactor: hundreds of MB
            digest = await run_in_thread(file_digest, exchange.body_file)
        else:
            digest = payload_digest(response.body)
        exchange.payload_digest = digest
        while digest in self._capturing:
            await self._capturing[digest]
        original = self._original(digest)
        first = None
        if digest and original is None:
            first = self._capturing[digest] = asyncio.get_running_loop().create_future()
        try:
            written, _ = await self.capture.write_exchange(exchange, original)
            if first is not None:
                self.state.state.save_payload(digest, written.target_uri, written.date, written.filename,
                                              written.record_id)
        except Exception as exc:  # records are cut off whole; a full disk (or catalogue) stops the crawl
            if self.disk_full is not None:
                self.disk_full.check(exc)
            raise
        finally:
            if first is not None:
                del self._capturing[digest]
                first.set_result(None)
        if original is not None:
            self.stats.inc_value("postarc/warc/revisits")
        request.meta[CAPTURE_META] = written
        request.meta[CAPTURE_HEAD_META] = (f"{exchange.status} {exchange.reason}".rstrip(), exchange.protocol,
                                           exchange.response_headers)
        self.stats.inc_value("postarc/warc/payload_bytes", size)
        return response
