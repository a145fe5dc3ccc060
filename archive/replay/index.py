"""Finding captures in the archive's sorted CDXJ index without reading all of it.

``DIR/indexes/index.cdxj`` is pywb's format: ``<surt> <timestamp> {json}``, one record a line,
sorted bytewise. Every capture of a URL is one contiguous block, in time order. A lookup
bisects the file by seeking (about log2(size) reads of one line each, nothing kept in memory,
so it also sees an index that another process replaced a moment ago) and then reads that
block only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import surt

from archive.cdxj import index_path, update_index

logger = logging.getLogger(__name__)

TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"
REVISIT_MIME = "warc/revisit"


@dataclass(frozen=True)
class Capture:
    """One CDXJ line: where a record of ``url`` taken at ``timestamp`` lies."""

    urlkey: str
    timestamp: str  # 14 digits, UTC
    url: str
    mime: str
    status: int | None
    digest: str
    length: int
    offset: int
    filename: str

    @property
    def is_revisit(self) -> bool:
        return self.mime == REVISIT_MIME

    @property
    def when(self) -> datetime:
        return timestamp_datetime(self.timestamp)


def timestamp_datetime(timestamp: str) -> datetime:
    return datetime.strptime(timestamp, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)


def url_key(url: str) -> str:
    """The SURT key cdxj-indexer files ``url`` under (same function, same result)."""
    return surt.surt(url)


def parse_line(line: bytes) -> Capture | None:
    """A CDXJ line as a ``Capture``; None for header (``!``) or malformed lines."""
    try:
        key, timestamp, data = line.decode("utf-8").rstrip("\r\n").split(" ", 2)
        fields = json.loads(data)
        status = fields.get("status")
        return Capture(key, timestamp, fields["url"], fields.get("mime", ""),
                       int(status) if status and status.isdigit() else None, fields.get("digest", ""),
                       int(fields["length"]), int(fields["offset"]), fields["filename"])
    except (ValueError, KeyError, UnicodeDecodeError):
        return None


def _line_start(f: BinaryIO, pos: int) -> int:
    """Where the first line that starts at or after byte ``pos`` starts."""
    if pos == 0:
        return 0
    f.seek(pos - 1)
    f.readline()  # the rest of the line ``pos - 1`` falls in
    return f.tell()


def seek_first(f: BinaryIO, size: int, key: bytes) -> None:
    """Leave ``f`` at the first line that sorts at or after ``key``, by bisection over bytes.

    The line found from a byte position never sorts lower than the one found from an earlier
    position, so the smallest position whose line is ``>= key`` (or past the end) leads to it.
    """
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi) // 2
        f.seek(_line_start(f, mid))
        line = f.readline()
        if not line or line >= key:
            hi = mid
        else:
            lo = mid + 1
    f.seek(_line_start(f, lo))


class CdxjIndex:
    """Read-only lookups in one sorted CDXJ file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _lines(self, key: str, start: str) -> Iterator[Capture]:
        """Captures under ``key`` from timestamp ``start`` on, in order."""
        if not self.path.exists():
            return
        prefix = (key + " ").encode("utf-8")
        with self.path.open("rb") as f:
            seek_first(f, os.fstat(f.fileno()).st_size, prefix + start.encode("ascii"))
            for line in f:
                if not line.startswith(prefix):
                    return
                capture = parse_line(line)
                if capture is not None:
                    yield capture

    def captures(self, url: str, since: str = "", until: str = "99999999999999") -> list[Capture]:
        """Every capture of ``url`` (by SURT) with ``since <= timestamp <= until``, oldest first.

        Only records that answer a request: responses, revisits and resources.
        """
        found = []
        for capture in self._lines(url_key(url), since):
            if capture.timestamp > until:
                break
            found.append(capture)
        return found

    def nearest(self, url: str, timestamp: str) -> Capture | None:
        """The capture of ``url`` closest in time to ``timestamp``; the exact URL before a SURT twin.

        A ``304 Not Modified`` (the answer to a conditional request) has nothing to show: skipped.
        """
        captures = [c for c in self.captures(url) if c.status != 304]
        exact = [c for c in captures if c.url == url] or captures
        if not exact:
            return None
        wanted = timestamp_datetime(timestamp)
        return min(exact, key=lambda c: (abs((c.when - wanted).total_seconds()), c.timestamp < timestamp))

    def latest(self, url: str, since: str = "", until: str = "99999999999999",
               files: Collection[str] = ()) -> Capture | None:
        """The newest capture of ``url`` in ``[since, until]`` (and in ``files``, if given); the
        exact URL before a SURT twin."""
        captures = [c for c in self.captures(url, since, until) if not files or c.filename in files]
        exact = [c for c in captures if c.url == url] or captures
        return exact[-1] if exact else None


# -- the index file -------------------------------------------------------------------


def ensure_index(archive_dir: str | os.PathLike[str]) -> Path:
    """``DIR/indexes/index.cdxj`` with every closed WARC file in it.

    The crawl merges each run's files in (``archive.cdxj``); this catches up on any it missed
    (a killed run, WARC files copied in). On a read-only archive the index is used as it is.
    """
    try:
        update_index(archive_dir)
    except OSError as exc:
        if not index_path(archive_dir).exists():
            raise
        logger.warning("CDXJ index not updated (%s); using it as it is", exc)
    return index_path(archive_dir)
