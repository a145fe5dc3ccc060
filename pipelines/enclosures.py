"""Enclosures pipeline: with ``enclosures: local``, each file into the WARC and beside its post.

Not Scrapy's ``FilesPipeline``: its store is handed ``response.body``, a file held whole in
memory, and an episode may be hundreds of MB. Each enclosure here is an ordinary request (so the
WARC capture writes it, credentials go to the feed's own host only, robots.txt is obeyed) marked
``SPOOL_META``: the download handler writes its body into an anonymous temporary file, the
capture streams that into the WARC, and this pipeline copies it beside the post (atomically, so
nothing half-written is ever there). A file over the source's ``max_enclosure_mb`` (by
Content-Length, or by the bytes received) is cancelled by Scrapy's ``download_maxsize``: the
post links it, the WARC holds no record of it, and the log one warning line.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from scrapy import Request
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.asyncio import run_in_thread
from twisted.python.failure import Failure

from archive.enclosures import decoded, local_name
from archive.markdown import atomic_write, inside
from crawler.diskfull import DiskFullGuard
from crawler.failures import Transient, describe, http_reason
from crawler.items import Post
from crawler.ledger import ENCLOSURES_FAILED, ledger_of
from crawler.protocol import CAPTURE_HEAD_META, KIND_ENCLOSURE, KIND_META, SOURCE_META, SPOOL_META, SPOOLED_META

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from typing_extensions import Self

logger = logging.getLogger(__name__)


def _save(target: Path, spooled: BinaryIO | None, body: bytes, content_encoding: str, fsync: bool) -> None:
    """The file beside the post: copied from the spooled download, its content-encoding undone
    (or the body in hand: a rebuild's, already decoded)."""
    if spooled is None:
        atomic_write(target, body, fsync=fsync)
        return
    spooled.seek(0)
    atomic_write(target, decoded(spooled, content_encoding), fsync=fsync)


def _content_encoding(head: tuple[str, str, list[tuple[str, str]]] | None) -> str:
    """The Content-Encoding of a response as captured (Scrapy's middleware drops the header,
    and can decode no body it does not hold)."""
    return ",".join(v for k, v in (head[2] if head else []) if k.lower() == "content-encoding")


class EnclosuresPipeline:
    """Fill ``Post.enclosure_files`` (enclosure URL -> posts/-relative file) for ``enclosures: local``."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.posts_dir = Path(crawler.settings["POSTARC_ARCHIVE_DIR"]).resolve() / "posts"
        self.timeout = crawler.settings.getfloat("POSTARC_ENCLOSURE_TIMEOUT")
        self.disk_full = crawler.get_extension(DiskFullGuard)
        self.transient = Transient(crawler.settings)
        self.fsync = crawler.settings.getbool("POSTARC_FSYNC_FILES")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_item(self, item: Post) -> Post:
        if item.enclosures_mode != "local" or not item.enclosures:
            return item
        self.posts_dir.mkdir(parents=True, exist_ok=True)  # the spool's directory: the posts' file system
        taken: set[str] = set()
        for enclosure in item.enclosures:
            await self.fetch(item, enclosure.url, taken)
        return item

    def failed(self, item: Post, url: str, transient: bool = False) -> None:
        """Counted as the stat ``postarc/enclosures/failed`` and in the source's ``fail`` column;
        a failure a later run may not meet (a 503, a timeout) leaves the post incomplete, so that
        the next runs archive it again (``POSTARC_RETRY_INCOMPLETE``), as for its images."""
        if transient:
            item.missing.append(url)
        self.crawler.stats.inc_value("postarc/enclosures/failed")
        ledger_of(self.crawler).inc(item.source, ENCLOSURES_FAILED)

    def request(self, item: Post, url: str) -> Request:
        referer = item.page_url or item.link
        return Request(url, callback=NO_CALLBACK, headers={"Accept-Encoding": "identity",
                                                           **({"Referer": referer} if referer else {})},
                       meta={KIND_META: KIND_ENCLOSURE, SOURCE_META: item.source, SPOOL_META: str(self.posts_dir),
                             "download_maxsize": item.max_enclosure_bytes, "download_warnsize": 0,
                             "download_timeout": self.timeout})

    async def fetch(self, item: Post, url: str, taken: set[str]) -> None:
        try:
            response: Response = await self.crawler.engine.download_async(self.request(item, url))
        except Exception as exc:  # noqa: BLE001 - every failure is a reason of the vocabulary
            if self.disk_full is not None and self.disk_full.check(exc):
                return  # the spool met a full disk: the crawl stops, the gate keeps the post for the next run
            reason = describe(exc)
            if reason == "too large":
                reason = f"too large: more than max_enclosure_mb ({item.max_enclosure_bytes // (1024 * 1024)})"
            logger.warning("enclosure %s failed (%s); the post links it", url, reason)
            self.failed(item, url, self.transient.failure(Failure(exc)))
            return
        spooled = response.meta.get(SPOOLED_META)
        try:
            if response.status != 200:
                logger.warning("enclosure %s failed (%s); the post links it", url,
                               http_reason(response.status, response.headers.get("Location")))
                self.failed(item, url, self.transient.status(response.status))
                return
            ctype = response.headers.get("Content-Type", b"").decode("latin-1")
            name = local_name(response.url, ctype, taken)
            relative = f"{item.path}/{name}"
            encoding = _content_encoding(response.meta.get(CAPTURE_HEAD_META))
            try:
                await run_in_thread(_save, inside(self.posts_dir, relative), spooled, response.body, encoding,
                                   self.fsync)
            except (ValueError, zlib.error, EOFError) as exc:  # not what its Content-Encoding says
                logger.warning("enclosure %s failed (%s); the post links it", url, describe(exc))
                self.failed(item, url)
                return
            except OSError as exc:
                if self.disk_full is not None:
                    self.disk_full.check(exc)
                raise
            taken.add(name)
            item.enclosure_files[url] = relative
            self.crawler.stats.inc_value("postarc/enclosures/saved")
        finally:
            if spooled is not None:
                spooled.close()
