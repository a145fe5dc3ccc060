"""The WARC capture service: the one component that writes the crawl's WARC files.

An extension that owns ``archive.warc.writer.WarcFiles``, the thread the records are written on, the
file rotation and the index made while writing. Components that archive something ask it to
(``crawler.get_extension(WarcCapture)``): the capture middleware turns each exchange into
records, the catalogue pipeline adds a post's conversion record, the run recorder asks which
files were written. The model is Scrapy's ``FilesPipeline.store``: what is written is decided
by the components, where and how by this one object.

- On ``spider_opened`` it repairs the ``*.open`` files that killed runs left behind.
- Records are compressed and written on a thread of their own, in the order they were asked
  for, so the reactor goes on downloading meanwhile (zlib and hashlib release the GIL). Each
  record's CDXJ line is made as it is written, from the record in memory
  (``archive.cdxj.RecordLines``), so no file is read back to be indexed.
- On ``engine_stopped`` (after every pipeline, including the catalogue's conversion records,
  has finished) it closes its files and merges their lines into ``indexes/index.cdxj``: the
  writer that closes the files is the one that knows they are complete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import run_in_thread

from archive.cdxj import RecordLines, update_index
from archive.warc.repair import repair_open_files
from archive.warc.writer import HttpExchange, Original, WarcFiles, Written
from crawler.diskfull import DiskFullGuard, disk_full_error
from crawler.state import state_of

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from typing_extensions import Self

    from archive.state import CrawlState

logger = logging.getLogger(__name__)
T = TypeVar("T")


def first_capture(state: CrawlState, digest: str) -> Original | None:
    """The record that first archived the payload ``digest``, as the crawl state remembers it."""
    row = state.payload(digest) if digest else None
    return Original(row["record_id"], row["uri"], row["date"]) if row else None


def warc_files(settings: BaseSettings) -> WarcFiles:
    """The crawl's WARC output, as the ``WARC_*`` settings describe it."""
    return WarcFiles(
        Path(settings["POSTARC_ARCHIVE_DIR"]) / "warc",
        prefix=settings.get("WARC_PREFIX", "POSTARC"),
        max_size=settings.getint("WARC_MAX_SIZE"),
        software=settings.get("USER_AGENT", "postarc"),
        info={"operator-contact": url} if (url := settings.get("POSTARC_CONTACT_URL")) else {},
        fsync_records=settings.getbool("WARC_FSYNC_RECORDS"),
        gzip_level=settings.getint("WARC_GZIP_LEVEL", 9),
        lines=RecordLines(),
    )


class WarcCapture:
    """Extension: write records (``write_exchange``, ``write_conversion``), name the current
    file, ``rotate`` and ``close``. Off (``NotConfigured``) with ``WARC_ENABLED`` off."""

    def __init__(self, files: WarcFiles, crawler: Crawler) -> None:
        self.files = files
        self.directory = files.directory
        self.crawler = crawler
        self.stats = crawler.stats
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warc-writer")
        # Set on opening (extensions cannot look each other up while being built); None if that
        # extension is off.
        self.disk_full: DiskFullGuard | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.getbool("WARC_ENABLED"):
            raise NotConfigured("WARC_ENABLED is off")
        service = cls(warc_files(settings), crawler)
        crawler.signals.connect(service.open, signal=signals.spider_opened)
        crawler.signals.connect(service.close, signal=signals.engine_stopped)
        return service

    # -- the interface ---------------------------------------------------------------

    @property
    def current_name(self) -> str:
        """The file being written, or once closed the last one written ('' before the first record)."""
        return self.files.current_name

    def files_written(self) -> list[str]:
        """Every file this crawl wrote into, closed or not, oldest first."""
        current = self.current_name
        return [*self.files.files_closed, *([current] if current and current not in self.files.files_closed else [])]

    async def write_exchange(self, exchange: HttpExchange, original: Original | None) -> tuple[Written, Written]:
        """The ``response`` (or ``revisit`` of ``original``) and ``request`` records of an exchange."""
        written, req_written = await self._in_writer(self.files.write_exchange, exchange, original)
        self.stats.inc_value("postarc/warc/records", 2)
        self.stats.inc_value("postarc/warc/bytes", written.length + req_written.length)
        return written, req_written

    async def write_conversion(self, target_uri: str, refers_to: str, content: bytes,
                               extra: dict[str, str] | None = None) -> Written:
        """A derived document (a post's Markdown) next to its capture; ``extra``: more named fields."""
        return await self._write_one("conversion record not written", self.files.write_conversion, target_uri,
                                     refers_to, content, "text/markdown; charset=utf-8", extra)

    async def write_alias(self, target_uri: str, original: Original, payload_digest: str,
                          head: tuple[str, str, list[tuple[str, str]]]) -> Written:
        """A ``revisit`` under ``target_uri`` of ``original``'s payload, with the HTTP ``head``
        (status line, protocol, headers) its capture had."""
        self.stats.inc_value("postarc/warc/aliases")
        return await self._write_one("record not written", self.files.write_alias, target_uri, original,
                                     payload_digest, *head)

    async def _write_one(self, failed: str, write: Callable[..., Written], target_uri: str, *args: Any) -> Written:
        """One record by ``write`` in the writer thread, counted. If it raises (the
        record cut back, the file whole), ``postarc/warc/records_failed`` counts it and one line
        says ``failed`` and why (a full disk: handed to ``DiskFullGuard``, whose line says it); the
        caller decides the post's fate."""
        self.stats.inc_value("postarc/warc/records")
        try:
            written = await self._in_writer(write, target_uri, *args)
        except Exception as exc:
            self.stats.inc_value("postarc/warc/records_failed")
            if disk_full_error(exc) is not None:
                if self.disk_full is not None:
                    self.disk_full.check(exc)
            else:
                logger.error("%s for %s: %s", failed, target_uri, exc if isinstance(exc, OSError)
                             else f"{type(exc).__name__}: {exc}")
            raise
        self.stats.inc_value("postarc/warc/bytes", written.length)
        return written

    async def rotate(self) -> None:
        """Close the current file now (the next record starts a new one), as ``WARC_MAX_SIZE`` does."""
        await self._in_writer(self.files.close)

    async def close(self) -> None:
        # Runs after every record asked for: the writer thread takes jobs in order. Neither the
        # fsync nor the index merge blocks the reactor: Scrapy's own clean-up (the HTTP handler's
        # disconnect timeout) still runs meanwhile, and blocking it raced that timeout
        # (twisted's AlreadyCalledError logged as CRITICAL after the crawl).
        await self._in_writer(self.files.close)
        self._writer.shutdown()
        for name in self.files.files_closed:
            logger.info("WARC file closed: %s", name)
        if self.files.files_closed or self.stats.get_value("postarc/warc/repaired_files"):
            archive_dir = self.directory.parent
            update = await run_in_thread(lambda: update_index(archive_dir, self._closed_lines()))
            logger.info("index: %d files, %d lines added (%d in all)", len(update.files), update.lines,
                        update.total)

    # -- files -----------------------------------------------------------------------

    def open(self) -> None:
        """Close what killed runs left open, forgetting the payloads of the records cut off."""
        self.disk_full = self.crawler.get_extension(DiskFullGuard)
        if not self.directory.is_dir():
            return
        state = state_of(self.crawler).state
        for repaired in repair_open_files(self.directory):
            state.forget_payloads(repaired.filename, repaired.record_ids)
            self.stats.inc_value("postarc/warc/repaired_files")

    def _in_writer(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` on the writer thread, after everything asked before it."""
        return asyncio.wrap_future(self._writer.submit(fn, *args))

    def _closed_lines(self) -> dict[str, list[str]]:
        """The lines of each file closed in this run, made as its records were written (a file
        that must be read back instead, or all of them without ``WarcFiles.lines``, is left out)."""
        made = self.files.lines
        if made is None:
            return {}
        return {name: lines for name in self.files.files_closed if (lines := made.of(name)) is not None}
