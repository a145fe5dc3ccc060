"""Images pipeline: Scrapy's media pipeline, saving each image into its post's asset folder.

Image requests are ordinary Scrapy requests, so the WARC middleware captures them too. Files
are named by content hash plus the extension of their real content type, and written
atomically.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NoReturn

from py_svg_hush import filter_svg
from scrapy import Request
from scrapy.http.request import NO_CALLBACK
from scrapy.pipelines.files import FilesPipeline, FSFilesStore
from scrapy.pipelines.media import FileException, _MediaRequestFiltered
from scrapy.utils.asyncio import run_in_thread

from archive.markdown import atomic_write, inside
from crawler.diskfull import DiskFullGuard, disk_full_error
from crawler.failures import Transient, describe, http_reason
from crawler.items import Post
from crawler.ledger import IMAGES_FAILED, ledger_of
from crawler.protocol import CAPTURE_HEAD_META, CAPTURE_META, KIND_IMAGE, KIND_META, SOURCE_META

if TYPE_CHECKING:
    from archive.warc.writer import Written
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.pipelines.files import FileInfo
    from scrapy.pipelines.media import FileInfoOrError, MediaPipeline
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure
    from typing_extensions import Self

logger = logging.getLogger(__name__)

# mimetypes' first guesses for these are odd (.jpe, .jfif) or missing.
PREFERRED_EXT = {"image/jpeg": ".jpg", "image/webp": ".webp", "image/svg+xml": ".svg", "image/avif": ".avif"}


def extension_for(content_type: str, url: str) -> str:
    """An image extension from the response's content type, else from the URL, else ``.bin``.

    Only image types name a file: an "image" served as text/html or JavaScript, saved as such,
    would be a page with scripts on the blog's origin once Hexo publishes the post's folder. As
    ``.bin`` it is inert, and a real image served with a wrong type still shows (browsers sniff
    what an ``<img>`` loads).
    """
    def image_ext(mime: str) -> str:
        return (PREFERRED_EXT.get(mime) or mimetypes.guess_extension(mime) or "") if mime.startswith("image/") else ""

    ctype = content_type.split(";")[0].strip().lower()
    return image_ext(ctype) or image_ext(mimetypes.guess_type(url.split("?")[0])[0] or "") or ".bin"


# data: URLs an SVG may keep (svg-hush drops every other): raster images, which run nothing.
SVG_DATA_IMAGES = {"image": ["png", "jpeg", "gif", "webp"]}


class ImageFailed(_MediaRequestFiltered):
    """An image that could not be had, for a reason of the failure vocabulary.

    A subclass of Scrapy's marker for an expected outcome of a media request: the media pipeline
    then logs no traceback for it (it does for every other ``FileException``); the post links the
    image where it was, and ``item_completed`` says so in one line.
    """


def _write_inside(root: Path, path: str, data: bytes, fsync: bool) -> None:
    atomic_write(inside(root, path), data, fsync=fsync)


class AtomicFSFilesStore(FSFilesStore):
    """``FSFilesStore`` that never leaves half a file and never writes outside its root.

    The write (with ``POSTARC_FSYNC_FILES``, its fsync: milliseconds of waiting) and the check
    that the path stays inside the root (a ``realpath``, a syscall per path component) run in a
    thread, off the reactor.
    """

    FSYNC = False  # POSTARC_FSYNC_FILES, set by PostImagesPipeline._update_stores as Scrapy sets its stores'

    async def persist_file(self, path: str, buf: BytesIO, info: MediaPipeline.SpiderInfo,
                           meta: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        await run_in_thread(_write_inside, Path(self.basedir), path, buf.getvalue(), self.FSYNC)


class PostImagesPipeline(FilesPipeline):
    """Download ``Post.image_urls``; fill ``Post.image_paths``, ``Post.image_failures`` and ``Post.missing``."""

    STORE_SCHEMES = {**FilesPipeline.STORE_SCHEMES, "": AtomicFSFilesStore, "file": AtomicFSFilesStore}

    # Set by from_crawler.
    default_mode: str
    disk_full: DiskFullGuard | None
    transient: Transient
    failed_for_now: set[str]  # image URLs whose fetch failed in a way a later run may not meet
    # Image URL -> (response record, status line, protocol, headers) of its fetch in this run.
    captures: dict[str, tuple[Written, str, str, list[tuple[str, str]]]]

    @classmethod
    def _update_stores(cls, settings: BaseSettings) -> None:
        super()._update_stores(settings)
        AtomicFSFilesStore.FSYNC = settings.getbool("POSTARC_FSYNC_FILES")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        cls._update_stores(crawler.settings)
        store = Path(crawler.settings["POSTARC_ARCHIVE_DIR"]).resolve() / "posts"
        # FSFilesStore checks, then creates: Redis workers starting on one archive race there.
        store.mkdir(parents=True, exist_ok=True)
        pipe = cls(str(store), crawler=crawler)
        pipe.default_mode = crawler.settings.get("POSTARC_IMAGES", "local")
        pipe.disk_full = crawler.get_extension(DiskFullGuard)  # None if the extension is off
        pipe.transient = Transient(crawler.settings)
        pipe.failed_for_now = set()
        pipe.captures = {}
        return pipe

    def get_media_requests(self, item: Post, info: MediaPipeline.SpiderInfo) -> list[Request]:
        """The article page as Referer, as the publisher's own pages send it; on a 403
        ``crawler.hotlink.HotlinkRetryMiddleware`` asks again without one."""
        if (item.images_mode or self.default_mode) != "local":
            return []
        referer = item.page_url or item.link
        headers = {"Referer": referer} if referer else {}
        meta = {KIND_META: KIND_IMAGE, SOURCE_META: item.source}  # per-source byte counts
        return [Request(url, headers=headers, callback=NO_CALLBACK, meta=meta) for url in item.image_urls]

    def media_to_download(self, request: Request, info: MediaPipeline.SpiderInfo, *,
                          item: Post | None = None) -> None:
        """Always download: files are named by their content's hash, unknown before the download,
        so FilesPipeline's look for a stored copy (a name and a ``stat`` per image) finds none."""
        return None

    def file_path(self, request: Request, response: Response | None = None,
                  info: MediaPipeline.SpiderInfo | None = None, *, item: Post | None = None) -> str:
        assert item is not None and response is not None  # media_to_download never asks before the download
        digest = hashlib.sha256(response.body).hexdigest()[:16]
        ctype = response.headers.get("Content-Type", b"").decode("latin-1")
        return f"{item.path}/{digest}{extension_for(ctype, request.url)}"

    async def _store_file(self, path: str, body: bytes, info: MediaPipeline.SpiderInfo) -> None:
        """FilesPipeline's ``file_downloaded``, given the path (the body is hashed once), and an SVG
        is written without what runs or loads; the WARC keeps it as fetched.

        An SVG is a document: opened on its own from a Hexo site (a reader clicks the image) it
        would run its scripts on the blog's origin. Cloudflare's svg-hush (py-svg-hush) keeps what
        draws, from an allow list, in a thread (about 60 ms a MB). One it cannot read (not
        well-formed UTF-8 XML, which no browser draws as an image either) fails like a broken
        image: the post links it where it was.
        """
        if path.endswith(".svg"):
            try:
                body = await run_in_thread(filter_svg, body, SVG_DATA_IMAGES)
            except ValueError as exc:
                raise FileException(f"not an SVG svg-hush can read: {exc}") from exc
        await self.store.persist_file(path, BytesIO(body), info)

    async def media_downloaded(self, response: Response, request: Request, info: MediaPipeline.SpiderInfo, *,
                               item: Any = None) -> FileInfo:
        """FilesPipeline's, with its expected failures (a status, an empty or unreadable image) as
        ``ImageFailed``: one line each, in the failure vocabulary."""
        written, head = request.meta.get(CAPTURE_META), request.meta.get(CAPTURE_HEAD_META)
        if written is not None and head is not None and response.status == 200:
            # Scrapy downloads an image once per run, for the first post that has it: kept for all.
            self.captures[request.url] = (written, *head)
        if response.status != 200:
            if self.transient.status(response.status):
                self.failed_for_now.add(request.url)
            raise ImageFailed(http_reason(response.status, response.headers.get("Location")))
        if not response.body:
            raise ImageFailed("empty image")
        status = "cached" if "cached" in response.flags else "downloaded"
        self.inc_stats(status)
        path = self.file_path(request, response=response, info=info, item=item)
        try:
            await self._store_file(path, response.body, info)
        except FileException as exc:
            raise ImageFailed(str(exc)) from exc
        # FileInfo's checksum (Scrapy's is an MD5 of the file, 25 µs an image) is read by nothing
        # here: the digest naming the file, of the bytes fetched, stands in for it.
        return {"url": request.url, "path": path, "checksum": PurePosixPath(path).stem, "status": status}

    def media_failed(self, failure: Failure, request: Request, info: MediaPipeline.SpiderInfo) -> NoReturn:
        # Scrapy's FileException that follows keeps neither status nor cause: note them here.
        if self.transient.failure(failure):
            self.failed_for_now.add(request.url)
        if isinstance(failure.value, ImageFailed) or disk_full_error(failure.value) is not None:
            raise failure.value  # the disk failing stops the crawl (item_completed)
        raise ImageFailed(describe(failure)) from None

    def item_completed(self, results: list[FileInfoOrError], item: Post,
                       info: MediaPipeline.SpiderInfo) -> Post:
        store = Path(self.store.basedir)
        for url, (ok, result) in zip(item.image_urls, results):
            if not ok:
                if isinstance(result.value, ImageFailed):
                    logger.warning("image %s failed (%s); the post links it", url, result.value)
                # Not the image but the disk failing stops the crawl; the post is then left for the
                # next run (pipelines.diskfull), not archived without its image.
                if self.disk_full is not None:
                    self.disk_full.check(result.value)
                item.image_failures.append(url)
                if url in self.failed_for_now:
                    item.missing.append(url)
                continue
            path = result["path"]
            if not path.startswith(item.path + "/"):
                # The same image in an earlier post of this run: Scrapy reuses that download.
                # Copy it so that every post's asset folder is complete on its own.
                own = f"{item.path}/{Path(path).name}"
                atomic_write(inside(store, own), inside(store, path).read_bytes(), fsync=AtomicFSFilesStore.FSYNC)
                path = own
            item.image_paths[url] = path
            if url in self.captures:
                item.image_captures[url] = self.captures[url]  # for pipelines.aliases
        if item.image_failures:
            self.crawler.stats.inc_value("postarc/images/failed", len(item.image_failures))
            ledger_of(self.crawler).inc(item.source, IMAGES_FAILED, len(item.image_failures))
        self.crawler.stats.inc_value("postarc/images/saved", len(item.image_paths))
        return item
