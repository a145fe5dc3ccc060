"""Downloader middlewares: WARC capture of every exchange."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.utils.asyncio import run_in_thread

from archive.cdxj import index_range, update_index
from archive.warc.repair import repair_open_files
from archive.warc.writer import OPEN_SUFFIX, HttpExchange, Original, WarcFiles, Written, payload_digest
from crawler.credentials import TARGET_URI_META
from crawler.diskfull import DiskFullGuard
from crawler.handlers import WIRE_META, WireHead
from crawler.state import open_state
from pipelines.workers import WorkerPool

if TYPE_CHECKING:
    from archive.state import CrawlState
    from scrapy.crawler import Crawler
    from typing_extensions import Self

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: ``request.meta`` key under which the response record's location is left for callbacks.
CAPTURE_META = "warc_capture"
#: ``request.meta`` key: (status line, protocol, headers) of the response record, as written.
CAPTURE_HEAD_META = "warc_capture_head"
#: ``Response.flags`` mark of a response served from the archive itself (``crawler.replay``):
#: it was captured when first fetched, so it is never written again.
REPLAY_FLAG = "postarc-replay"


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
    """Write a ``request`` and a ``response`` (or ``revisit``) record for every response.

    Sits closest to the downloader (after every engine-side middleware, before
    ``HttpCompressionMiddleware`` on the way back), so what it stores is what crossed the wire.
    Feeds, pages, images and robots.txt all come through here.

    - On ``spider_opened`` it repairs ``*.open`` files that killed runs left behind.
    - A payload whose digest the catalogue already holds (this run or an earlier one) becomes
      a ``revisit`` record citing the first capture; payloads under ``WARC_REVISIT_MIN_SIZE``
      bytes are always stored whole (a revisit would be no smaller, and an empty body is not
      worth pointing at).
    - Every ``WARC_INDEX_EVERY`` bytes of a file, the records written since are indexed in the
      worker pool (cdxj-indexer), while the crawl goes on.
    - On ``engine_stopped`` (after every pipeline, including the catalogue's conversion
      records, has finished) it closes its files, indexes what is left of them and merges their
      lines into ``indexes/index.cdxj``: the writer that closes the files is the one component
      that knows they are complete.

    Records are compressed and written on a thread of their own, in the order they were
    asked for, so the reactor goes on downloading meanwhile (zlib and hashlib release the
    GIL). A response goes on to the spider only once its records are flushed: a killed crawl
    loses only the records of requests still in flight.
    """

    def __init__(self, files: WarcFiles, archive_dir: Path, crawler: Crawler, revisit_min_size: int,
                 index_every: int = 0) -> None:
        self.files = files
        self.archive_dir = archive_dir
        self.stats = crawler.stats
        self.settings = crawler.settings
        self.revisit_min_size = revisit_min_size
        self.catalogue: CrawlState | None = None
        self.disk_full = crawler.get_extension(DiskFullGuard)  # None if the extension is off
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warc-writer")
        # Payloads being written now, by digest: set once the first capture is catalogued, so
        # that a copy arriving meanwhile becomes a revisit of it.
        self._capturing: dict[str, asyncio.Future[None]] = {}
        # Indexing while writing: where each file is indexed up to, its lines so far, the jobs
        # in the pool, and the files a job failed for (indexed whole at the end instead).
        self.pool = crawler.get_extension(WorkerPool) if index_every else None
        self.index_every = index_every
        self._indexed: dict[str, int] = {}
        self._lines: dict[str, list[str]] = {}
        self._index_jobs: set[asyncio.Task[None]] = set()
        self._unindexed: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.getbool("WARC_ENABLED"):
            raise NotConfigured("WARC_ENABLED is off")
        archive_dir = Path(settings["POSTARC_ARCHIVE_DIR"])
        files = WarcFiles(
            archive_dir / "warc",
            prefix=settings.get("WARC_PREFIX", "POSTARC"),
            max_size=settings.getint("WARC_MAX_SIZE"),
            software=settings.get("USER_AGENT", "postarc"),
            info={"operator-contact": url} if (url := settings.get("POSTARC_CONTACT_URL")) else {},
            fsync_records=settings.getbool("WARC_FSYNC_RECORDS"),
            gzip_level=settings.getint("WARC_GZIP_LEVEL", 9),
        )
        mw = cls(files, archive_dir, crawler, settings.getint("WARC_REVISIT_MIN_SIZE"),
                 settings.getint("WARC_INDEX_EVERY"))
        crawler.signals.connect(mw.open, signal=signals.spider_opened)
        crawler.signals.connect(mw.index_jobs_done, signal=signals.spider_closed)
        crawler.signals.connect(mw.close, signal=signals.engine_stopped)
        return mw

    def open(self) -> None:
        self.catalogue = open_state(self.settings)  # state.sqlite, or Redis for a shared crawl
        if (self.archive_dir / "warc").is_dir():
            for repaired in repair_open_files(self.archive_dir / "warc"):
                self.catalogue.forget_payloads(repaired.filename, repaired.record_ids)
                self.stats.inc_value("postarc/warc/repaired_files")

    def _in_writer(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` on the writer thread, after everything asked before it."""
        return asyncio.wrap_future(self._writer.submit(fn, *args))

    def _original(self, digest: str) -> Original | None:
        row = self.catalogue.payload(digest) if digest and self.catalogue is not None else None
        return Original(row["record_id"], row["uri"], row["date"]) if row else None

    def process_response(self, request: Request, response: Response) -> Response | Coroutine[Any, Any, Response]:
        """The response itself if it came from the archive, else once its records are written."""
        if REPLAY_FLAG in response.flags:
            return response
        return self._capture(request, response)

    async def _capture(self, request: Request, response: Response) -> Response:
        exchange = exchange_from(request, response, request.meta.pop(WIRE_META, None))
        digest = payload_digest(response.body) if len(response.body) >= self.revisit_min_size else ""
        exchange.payload_digest = digest
        while digest in self._capturing:
            await self._capturing[digest]
        original = self._original(digest)
        first = None
        if digest and original is None:
            first = self._capturing[digest] = asyncio.get_running_loop().create_future()
        try:
            written, req_written = await self._in_writer(self.files.write_exchange, exchange, original)
            if first is not None and self.catalogue is not None:
                self.catalogue.save_payload(digest, written.target_uri, written.date, written.filename,
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
        self._index_upto(req_written)
        request.meta[CAPTURE_META] = written
        request.meta[CAPTURE_HEAD_META] = (f"{exchange.status} {exchange.reason}".rstrip(), exchange.protocol,
                                           exchange.response_headers)
        self.stats.inc_value("postarc/warc/records", 2)
        self.stats.inc_value("postarc/warc/bytes", written.length + req_written.length)
        self.stats.inc_value("postarc/warc/payload_bytes", len(response.body))
        return response

    def write_conversion(self, target_uri: str, refers_to: str, content: bytes,
                         extra: dict[str, str] | None = None) -> asyncio.Future[Written]:
        """Record a derived document (a post's Markdown) next to its capture; ``extra``: more named fields.

        Returns at once; await the result to know the record is written (a failure is logged
        either way).
        """
        self.stats.inc_value("postarc/warc/records")
        future = self._in_writer(self.files.write_conversion, target_uri, refers_to, content,
                                 "text/markdown; charset=utf-8", extra)
        future.add_done_callback(self._conversion_written)
        return future

    def write_alias(self, target_uri: str, written: Written, head: tuple[str, str, list[tuple[str, str]]]
                    ) -> asyncio.Future[Written]:
        """A ``revisit`` under ``target_uri`` of the payload of ``written`` (its first capture)."""
        original = self._original(written.payload_digest) or Original(written.record_id, written.target_uri,
                                                                     written.date)
        self.stats.inc_value("postarc/warc/records")
        self.stats.inc_value("postarc/warc/aliases")
        future = self._in_writer(self.files.write_alias, target_uri, original, written.payload_digest, *head)
        future.add_done_callback(self._conversion_written)
        return future

    def _conversion_written(self, future: asyncio.Future[Written]) -> None:
        if future.cancelled():
            return
        if future.exception() is not None:
            logger.error("record not written", exc_info=future.exception())
            return
        self.stats.inc_value("postarc/warc/bytes", future.result().length)
        self._index_upto(future.result())

    # -- the index, made while writing -------------------------------------------------

    def _index_upto(self, written: Written) -> None:
        """Index the file up to the end of ``written`` in the pool, if enough is new since."""
        start = self._indexed.get(written.filename, 0)
        end = written.offset + written.length
        if self.pool is None or end - start < self.index_every or written.filename in self._unindexed:
            return
        self._indexed[written.filename] = end
        task = asyncio.ensure_future(self._index_job(self.pool, written.filename, start, end))
        self._index_jobs.add(task)
        task.add_done_callback(self._index_jobs.discard)

    def _paths(self, name: str) -> list[str]:
        folder = self.archive_dir / "warc"
        return [str(folder / (name + OPEN_SUFFIX)), str(folder / name)]  # a job may run after the rename

    async def _index_job(self, pool: WorkerPool, name: str, start: int, end: int) -> None:
        try:
            lines = await pool.run(index_range, self._paths(name), start, end, name)
        # CancelledError: the pool stopped first (a crawl ending without spider_closed).
        except (Exception, asyncio.CancelledError):  # the file is indexed whole at the end instead
            logger.warning("indexing %s at %d-%d failed; it is indexed whole when closed", name, start, end,
                           exc_info=True)
            self._unindexed.add(name)
            return
        self._lines.setdefault(name, []).extend(lines)
        self.stats.inc_value("postarc/warc/index_jobs")

    async def index_jobs_done(self) -> None:
        """No job starts after the spider closes (the pool stops with the engine); wait for the rest."""
        self.pool = None
        while self._index_jobs:
            await asyncio.gather(*self._index_jobs)

    def _closed_lines(self) -> dict[str, list[str]]:
        """Every line of each file closed in this run: what was indexed while writing, plus the rest."""
        known = {}
        for name in self.files.files_closed:
            if name not in self._unindexed:
                size = (self.archive_dir / "warc" / name).stat().st_size
                rest = index_range(self._paths(name), self._indexed.get(name, 0), size, name)
                known[name] = self._lines.pop(name, []) + rest
        return known

    async def close(self) -> None:
        # Runs after every record asked for: the writer thread takes jobs in order. Neither the
        # fsync nor the indexing blocks the reactor: Scrapy's own clean-up (the HTTP handler's
        # disconnect timeout) still runs meanwhile, and blocking it raced that timeout
        # (twisted's AlreadyCalledError logged as CRITICAL after the crawl).
        await self.index_jobs_done()
        await self._in_writer(self.files.close)
        self._writer.shutdown()
        for name in self.files.files_closed:
            logger.info("WARC file closed: %s", name)
        if self.files.files_closed or self.stats.get_value("postarc/warc/repaired_files"):
            update = await run_in_thread(lambda: update_index(self.archive_dir, self._closed_lines()))
            logger.info("index: %d files, %d lines added (%d in all)", len(update.files), update.lines,
                        update.total)
        if self.catalogue is not None:
            self.catalogue.close()
