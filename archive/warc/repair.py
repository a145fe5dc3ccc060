"""Crash repair: closing the ``*.open`` WARC files that killed writers left behind.

Every record is its own gzip member, flushed as soon as it is written, so a killed writer loses
at most the record it was writing: repair cuts that record off and gives the file its final name.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.limitreader import LimitReader

from archive.warc.writer import OPEN_SUFFIX, WARC_SUFFIX, fsync_dir

logger = logging.getLogger(__name__)

#: Seconds an empty ``*.open`` file is taken to be its writer's, about to lock it.
EMPTY_OPEN_GRACE = 60.0


@dataclass(frozen=True)
class Repaired:
    """A leftover ``*.open`` file made whole: its final name, what was kept and cut."""

    filename: str
    records: int
    bytes_cut: int
    record_ids: frozenset[str]


def complete_members_end(stream: BinaryIO, chunk_size: int = 1 << 20) -> int:
    """Bytes from the start of ``stream`` up to the end of its last complete gzip member.

    Hand-written on zlib because warcio's reader raises on a truncated member instead of
    saying where the last good one ended; this stops at the first incomplete or corrupt one.
    """
    end = pos = 0
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    while chunk := stream.read(chunk_size):
        data = chunk
        while data:
            try:
                inflater.decompress(data)
            except zlib.error:
                return end
            if not inflater.eof:
                pos += len(data)
                break
            pos += len(data) - len(inflater.unused_data)
            end = pos
            data = inflater.unused_data
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    return end


def _record_ids(path: Path, length: int) -> Iterator[str]:
    with path.open("rb") as f:
        for record in ArchiveIterator(LimitReader(f, length)):
            yield record.rec_headers.get_header("WARC-Record-ID")


def repair_open_files(directory: str | os.PathLike[str]) -> list[Repaired]:
    """Close the ``*.open`` files that killed runs left in ``directory``.

    A file still locked by a live writer is left alone. Otherwise its truncated last record
    (if any) is cut off, the rest fsynced and the file renamed to its final name; a file with
    no complete record at all is removed. An empty one is removed only once it is a minute old:
    a writer creates its file, then locks it, and between the two the file is empty and
    unlocked (workers of a shared crawl repair each other's files as they start).
    """
    repaired = []
    for path in sorted(Path(directory).glob(f"*{WARC_SUFFIX}{OPEN_SUFFIX}")):
        try:
            f = path.open("r+b")
        except FileNotFoundError:  # closed and renamed by its writer meanwhile
            continue
        with f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("%s is being written by a running process; left alone", path.name)
                continue
            if not path.exists():  # closed by its writer while we waited for the lock
                continue
            stat = os.fstat(f.fileno())
            if stat.st_size == 0 and time.time() - stat.st_mtime < EMPTY_OPEN_GRACE:
                continue
            size = stat.st_size
            end = complete_members_end(f)
            final = path.with_name(path.name[: -len(OPEN_SUFFIX)])
            if end == 0:
                path.unlink()
                logger.warning("%s held no complete record; removed", path.name)
                continue
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
            ids = frozenset(_record_ids(path, end))
            os.replace(path, final)
        fsync_dir(final.parent)
        logger.warning("repaired %s: kept %d records, cut %d bytes", final.name, len(ids), size - end)
        repaired.append(Repaired(final.name, len(ids), size - end, ids))
    return repaired
