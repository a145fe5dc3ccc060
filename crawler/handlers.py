"""HTTP download handler that also keeps the message heads as they crossed the wire.

Scrapy's ``Response`` has the status code and protocol but not the reason phrase, and its
headers went through Twisted, which lower-cases names and moves the connection headers
(``Connection``, ``Keep-Alive``, ``Transfer-Encoding``…) aside. A WARC must say what the server
sent, so this handler is Scrapy's own ``HTTP11DownloadHandler`` with three small hooks (the one
place postarc uses Scrapy's private client classes: see the section below):

- the response parser also records the status line and every header field as received;
- the agent copies that, and the request head Twisted wrote, into ``request.meta[WIRE_META]``;
- the connection pool builds protocols that use that parser;
- a request marked ``SPOOL_META`` has its body written to an anonymous temporary file as it
  arrives (``_SpoolReader``), not kept in memory: an enclosure may be hundreds of MB.

``crawler.middlewares.WarcCaptureMiddleware`` reads ``request.meta[WIRE_META]`` (``crawler.protocol``); with another
handler it falls back to Scrapy's view of the exchange.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy.core.downloader.handlers.http11 import (
    HTTP11DownloadHandler,
    _LenientHTTP11ClientFactory,
    _LenientHTTP11ClientProtocol,
    _LenientHTTPClientParser,
    _ResponseReader,
    _ScrapyAgent,
)
from scrapy.exceptions import ResponseDataLossError
from scrapy.utils._download_handlers import get_dataloss_msg, wrap_twisted_exceptions
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.deprecate import warn_on_deprecated_spider_attribute

from crawler.protocol import SPOOL_META, SPOOLED_META, WIRE_META

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.http.response import StopDownload
    from twisted.python.failure import Failure
    from twisted.web.client import Response as TxResponse

logger = logging.getLogger(__name__)

_WIRE_ATTR = "_postarc_wire"


@dataclass(frozen=True)
class WireHead:
    """Request and response heads as they went over the connection (bytes as latin-1 text)."""

    request_line: str  # "GET /path?query HTTP/1.1"
    request_headers: list[tuple[str, str]]
    status_line: str  # "HTTP/1.1 200 OK"
    response_headers: list[tuple[str, str]]

    @property
    def protocol(self) -> str:
        return self.status_line.split(" ", 1)[0]

    @property
    def reason(self) -> str:
        parts = self.status_line.split(" ", 2)
        return parts[2] if len(parts) == 3 else ""

    @property
    def request_target(self) -> str:
        return self.request_line.split(" ")[1]

    @property
    def request_protocol(self) -> str:
        return self.request_line.rsplit(" ", 1)[-1]


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def request_head(txrequest: Any) -> tuple[str, list[tuple[str, str]]]:
    """The request line and headers Twisted wrote for ``txrequest`` (a ``_newclient.Request``).

    Mirrors ``twisted.web._newclient.Request._writeHeaders`` (which writes straight to the
    transport): request line, ``Connection: close`` for a non-persistent request, the body
    length, then every header in the order Twisted holds them (``Host`` included).
    """
    line = f"{_text(txrequest.method)} {_text(txrequest.uri)} HTTP/1.1"
    headers: list[tuple[str, str]] = []
    if not txrequest.persistent:
        headers.append(("Connection", "close"))
    producer = txrequest.bodyProducer
    if producer is not None:
        length = getattr(producer, "length", None)
        headers.append(("Content-Length", str(length)) if isinstance(length, int)
                       else ("Transfer-Encoding", "chunked"))
    for name, values in txrequest.headers.getAllRawHeaders():
        headers.extend((_text(name), _text(v)) for v in values)
    return line, headers


# -- Scrapy 2.19's private HTTP/1.1 client -------------------------------------------------
# Scrapy has no public hook for the message heads as they crossed the wire: scrapy/scrapy#440
# (raw requests and responses for middlewares) was closed pointing to the headers_received
# signal, which gets the headers Scrapy normalised, and header case is scrapy/scrapy#2711 (open
# for this handler). So what follows leans on scrapy/core/downloader/handlers/http11.py of
# Scrapy 2.19, and on nothing else private: its lenient parser, protocol and factory are
# subclassed the way Scrapy itself swaps in the lenient ones, and its agent is built by
# ``wire_agent`` alone. Check this section when Scrapy is upgraded.


class _WireParser(_LenientHTTPClientParser):
    """Scrapy's lenient response parser, also keeping the head exactly as received."""

    def statusReceived(self, status: bytes) -> None:  # noqa: N802 (Twisted's naming)
        self._wire_headers: list[tuple[str, str]] = []
        super().statusReceived(status)
        line, headers = request_head(self.request)
        setattr(self.response, _WIRE_ATTR, WireHead(line, headers, _text(status), self._wire_headers))

    def headerReceived(self, name: bytes, value: bytes) -> None:  # noqa: N802
        self._wire_headers.append((_text(name), _text(value)))
        super().headerReceived(name, value)


class _WireProtocol(_LenientHTTP11ClientProtocol):
    def request(self, request: Any) -> Any:
        d = super().request(request)
        # Same technique as Scrapy's lenient protocol: swap the class of the fresh parser.
        assert self._parser is not None
        self._parser.__class__ = _WireParser
        return d


class _WireFactory(_LenientHTTP11ClientFactory):
    def buildProtocol(self, addr: Any) -> _WireProtocol:  # noqa: N802
        return _WireProtocol(self._quiescentCallback)


class SpoolWriteError(Exception):
    """The spool file refused a write (a full disk, mostly: the ``OSError`` is its cause).

    Raised where Twisted would turn the reader's ``OSError`` into a lost connection; not one of
    the ``RETRY_EXCEPTIONS`` either, since another try would meet the same disk.
    """


class _SpoolReader(_ResponseReader):
    """Scrapy's body reader, writing into a temporary file where Scrapy's writes into a BytesIO.

    The file is anonymous (``TemporaryFile``: no name, gone when closed or when the process
    dies), so a failed, cancelled (``download_maxsize``) or killed download leaves nothing
    behind. Complete, it reaches whoever asked under ``request.meta[SPOOLED_META]``, rewound.
    A write the file refuses fails the download with ``SpoolWriteError``.
    """

    def spool_to(self, directory: str) -> None:
        self._bodybuf = tempfile.TemporaryFile(dir=directory)  # type: ignore[assignment]
        self._finished.addErrback(self._discard)  # first on the chain: before Scrapy's callbacks

    def _discard(self, failure: Failure) -> Failure:
        with suppress(OSError):  # closing flushes what a full disk refused: refused again
            self._bodybuf.close()
        return failure

    def _refused(self, error: OSError) -> None:
        if self._finished.called:
            return
        assert self.transport
        self.transport.stopProducing()
        self.transport.loseConnection()
        failure = SpoolWriteError(f"cannot write the downloaded body: {error}")
        failure.__cause__ = error
        self._finished.errback(failure)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        try:
            super().dataReceived(data)
        except OSError as error:
            self._refused(error)

    def _finish_response(self, flags: list[str] | None = None, stop_download: StopDownload | None = None) -> None:
        # Scrapy 2.19's _finish_response, with the file instead of the buffer's bytes.
        try:
            self._bodybuf.flush()
        except OSError as error:
            self._refused(error)
            return
        self._bodybuf.seek(0)
        self._request.meta[SPOOLED_META] = self._bodybuf
        self._finished.callback({"txresponse": self._txresponse, "body": b"", "flags": flags,
                                 "certificate": self._certificate, "ip_address": self._ip_address,
                                 "stop_download": stop_download})


class _WireAgent(_ScrapyAgent):
    def _cb_bodyready(self, txresponse: TxResponse, request: Request) -> Any:
        wire = getattr(txresponse, _WIRE_ATTR, None)
        if wire is not None:
            request.meta[WIRE_META] = wire
        request.meta.pop(SPOOLED_META, None)  # a redirect's or a retry's file: not this response's
        if directory := request.meta.get(SPOOL_META):
            deliver = txresponse.deliverBody

            def spooled(reader: _ResponseReader) -> None:
                # Same technique as the parser above: swap the class of the reader Scrapy made.
                reader.__class__ = _SpoolReader
                reader.spool_to(directory)
                deliver(reader)

            txresponse.deliverBody = spooled  # type: ignore[method-assign]
        return super()._cb_bodyready(txresponse, request)


def wire_agent(handler: HTTP11DownloadHandler) -> _WireAgent:
    """The agent Scrapy 2.19's ``HTTP11DownloadHandler.download_request`` builds inline (no hook
    for another class), as a ``_WireAgent``: same arguments, the spider's deprecated
    ``download_maxsize`` / ``download_warnsize`` attributes included."""
    spider = handler._crawler.spider
    for attribute, setting in (("download_maxsize", "DOWNLOAD_MAXSIZE"), ("download_warnsize", "DOWNLOAD_WARNSIZE")):
        if hasattr(spider, attribute):
            warn_on_deprecated_spider_attribute(attribute, setting)
    return _WireAgent(
        contextFactory=handler._contextFactory,
        bindAddress=handler._bind_address,
        pool=handler._pool,
        maxsize=getattr(spider, "download_maxsize", handler._default_maxsize),
        warnsize=getattr(spider, "download_warnsize", handler._default_warnsize),
        fail_on_dataloss=handler._fail_on_dataloss,
        crawler=handler._crawler,
        tls_verbose_logging=handler._tls_verbose_logging,
    )


# -- the handler ------------------------------------------------------------------------------


class WireHTTP11DownloadHandler(HTTP11DownloadHandler):
    """``HTTP11DownloadHandler`` that leaves a ``WireHead`` in ``request.meta[WIRE_META]``."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._pool._factory = _WireFactory  # as Scrapy 2.19's own __init__ sets its lenient factory

    async def download_request(self, request: Request) -> Response:
        # Scrapy 2.19's download_request, with wire_agent's agent.
        try:
            with wrap_twisted_exceptions():
                return await maybe_deferred_to_future(wire_agent(self).download_request(request))
        except ResponseDataLossError:
            if not self._fail_on_dataloss_warned:
                logger.warning(get_dataloss_msg(request.url))
                self._fail_on_dataloss_warned = True
            raise
