"""WarcDownloadHandler: a downloader that answers from the archive, never from the network.

Installed for ``http`` and ``https`` by ``postarc reextract``. A request gets the newest capture
of its URL taken between ``POSTARC_REPLAY_SINCE`` and ``POSTARC_REPLAY_UNTIL`` (the run being
rebuilt), found in the CDXJ index and read from the WARC file: status, headers and body exactly
as received (still content-encoded, so Scrapy's own middlewares decode it as they did). A
revisit gets its original's payload. A URL with no capture in that window fails the way a dead
link does, with ``NotInArchive``.

A request marked ``SPOOL_META`` (an enclosure) gets its body as the live handler gives it: in an
anonymous temporary file (``SPOOLED_META``), copied out of the record piece by piece.

Responses carry ``REPLAY_FLAG`` (``WarcCaptureMiddleware`` never writes them again) and leave
``request.meta[CAPTURE_META]`` pointing at the record they came from, as a capture would.
"""

from __future__ import annotations

import ipaddress
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.http import Headers
from scrapy.responsetypes import responsetypes
from scrapy.utils.asyncio import run_in_thread

from archive.enclosures import decoded
from archive.replay.index import CdxjIndex, ensure_index
from archive.replay.records import ArchiveReader, NotArchived, StoredPayload
from archive.warc.writer import Written
from crawler.credentials import credentials_of
from crawler.protocol import CAPTURE_META, REPLAY_FLAG, SPOOL_META, SPOOLED_META

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class NotInArchive(Exception):
    """No capture of this URL in the run being replayed (the crawl got no response for it)."""


def timestamp14(catalogue_time: str) -> str:
    """``2026-11-28T10:40:02Z`` (catalogue form) as a CDXJ timestamp, ``20261128104002``."""
    return "".join(ch for ch in catalogue_time if ch.isdigit())[:14]


def spool(payload: StoredPayload, directory: str, content_encoding: str) -> BinaryIO:
    """The payload, its content-encoding undone (as Scrapy's middleware does for the bodies it
    holds), copied into an anonymous temporary file in ``directory``, rewound."""
    file = tempfile.TemporaryFile(dir=directory)
    with payload.open() as stream:
        shutil.copyfileobj(decoded(stream, content_encoding), file, 1 << 20)
    file.seek(0)
    return file


class WarcDownloadHandler(BaseDownloadHandler):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        archive = Path(settings["POSTARC_ARCHIVE_DIR"])
        self.index = CdxjIndex(ensure_index(archive))
        self.reader = ArchiveReader(archive, self.index)
        self.since = timestamp14(settings.get("POSTARC_REPLAY_SINCE") or "")
        self.until = timestamp14(settings.get("POSTARC_REPLAY_UNTIL") or "") or "99999999999999"
        self.files = set(settings.getlist("POSTARC_REPLAY_FILES"))  # empty: any file
        self.stats = crawler.stats
        self.crawler = crawler

    async def download_request(self, request: Request) -> Response:
        # A private feed's capture is under its URL with the secrets redacted (crawler.credentials).
        url = credentials_of(self.crawler).redact(request.url)
        capture = self.index.latest(url, self.since, self.until, self.files)
        if capture is None or request.method not in ("GET", "HEAD"):
            self.stats.inc_value("postarc/replay/not_in_archive")
            raise NotInArchive(f"{request.method} {request.url}: no capture in the archive for this run")
        directory = request.meta.get(SPOOL_META)
        try:
            replayed = self.reader.load(capture, stream=bool(directory))
        except NotArchived as exc:
            self.stats.inc_value("postarc/replay/not_in_archive")
            raise NotInArchive(str(exc)) from exc
        headers = Headers()
        for name, value in replayed.headers:
            headers.appendlist(name, value)
        request.meta[CAPTURE_META] = Written(
            filename=capture.filename, offset=capture.offset, length=capture.length,
            record_id=replayed.record_id, target_uri=replayed.target_uri, date=replayed.date,
            payload_digest=replayed.warc_headers.get("WARC-Payload-Digest", ""))
        if replayed.payload is not None:
            request.meta[SPOOLED_META] = await run_in_thread(spool, replayed.payload, directory,
                                                             replayed.header("Content-Encoding") or "")
        self.stats.inc_value("postarc/replay/responses")
        respcls = responsetypes.from_args(headers=headers, url=request.url, body=replayed.body)
        try:
            ip = ipaddress.ip_address(replayed.ip_address) if replayed.ip_address else None
        except ValueError:
            ip = None
        return respcls(url=request.url, status=replayed.status, headers=headers, body=replayed.body,
                       flags=[REPLAY_FLAG], request=request, ip_address=ip, protocol=replayed.protocol)
