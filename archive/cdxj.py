"""``DIR/indexes/index.cdxj``: the pywb-compatible CDXJ index of every WARC file in ``DIR/warc``.

Lines come from cdxj-indexer (``<surt> <timestamp> {"url", "mime", "status", "digest",
"length", "offset", "filename"}``), sorted as pywb's binary search needs. The index grows by
merging: only WARC files not yet indexed are read, their sorted lines are merged with the
existing (sorted) index into a new file that replaces the old one atomically. Which files are
in the index is kept beside it in ``indexed.txt``; delete both to rebuild from scratch.
"""

from __future__ import annotations

import fcntl
import functools
import heapq
import io
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdxj_indexer.main import CDXJIndexer
    from warcio.recordloader import ArcWarcRecord


INDEX_NAME = "index.cdxj"
INDEXED_NAME = "indexed.txt"
#: cdxj-indexer's default record types, named: py-wacz appends "warcinfo" to the class-wide
#: default when imported, which would put warcinfo lines in pywb's index.
RECORDS = "response,revisit,resource,metadata"


@dataclass(frozen=True)
class IndexUpdate:
    files: list[str]  # WARC files added to the index by this update
    lines: int  # lines added
    total: int  # lines in the index now


@functools.cache
def _indexer() -> type[CDXJIndexer]:
    """cdxj-indexer's indexer class, imported on first use: the crawl process imports this module
    for every run, and most runs index in the worker pool or not at all (0.2 s of imports).

    cdxj-indexer imports pyamf, whose adapter registry first tries `import pkg_resources`
    (setuptools' old API, ~0.1 s to import in every process that indexes) and, when that fails,
    lists its own folder: what pkg_resources would have answered. The import is made to fail
    while cdxj-indexer loads (Py3AMF 0.9); a pkg_resources someone imported before is left alone.
    """
    hide = "pkg_resources" not in sys.modules
    if hide:
        sys.modules["pkg_resources"] = None  # type: ignore[assignment]  # `import pkg_resources` raises
    try:
        from cdxj_indexer.main import CDXJIndexer
    finally:
        if hide:
            del sys.modules["pkg_resources"]
    return CDXJIndexer


def index_path(archive_dir: str | os.PathLike[str]) -> Path:
    return Path(archive_dir) / "indexes" / INDEX_NAME


def warc_paths(archive_dir: str | os.PathLike[str]) -> list[Path]:
    """The closed WARC files of an archive, by name."""
    return sorted((Path(archive_dir) / "warc").glob("*.warc.gz"))


def index_lines(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Sorted CDXJ lines (with their newline) for the records of these WARC files."""
    out = io.StringIO()
    _indexer()(output=out, inputs=[str(p) for p in paths], records=RECORDS).process_all()
    return sorted(out.getvalue().splitlines(keepends=True))


class _Located:
    """What cdxj-indexer asks its record iterator while indexing a record: where it is."""

    __slots__ = ("offset", "length")

    def __init__(self, offset: int, length: int) -> None:
        self.offset, self.length = offset, length

    def get_record_offset(self) -> int:
        return self.offset

    def get_record_length(self) -> int:
        return self.length


# Printable ASCII with no blank at either end (or nothing): a head field warcio's parser reads
# back exactly as written. It strips blanks, decodes bytes, joins folded lines.
_PLAIN = re.compile(r"(?:[!-~](?:[ -~]*[!-~])?)?")


def _reads_back(record: ArcWarcRecord) -> bool:
    """Reading ``record`` back would give cdxj-indexer the values it has in memory."""
    if record.rec_type in ("response", "revisit") and not record.rec_headers.get_header("WARC-Payload-Digest"):
        return False  # cdxj-indexer would digest the payload, which is no longer there to read
    head = record.http_headers
    if head is None:
        return True
    return (bool(_PLAIN.fullmatch(head.statusline)) and bool(_PLAIN.fullmatch(head.protocol or ""))
            and all(":" not in name and _PLAIN.fullmatch(name) and _PLAIN.fullmatch(value)
                    for name, value in head.headers))


class _Lines(list[str]):
    write = list.append  # cdxj-indexer writes each line to an output


class RecordLines:
    """The CDXJ lines of records as they are written, by file: what ``index_lines`` would give
    for the file, made by cdxj-indexer's own code (``process_index_entry``) from the records in
    memory instead of from the file read back.

    Reading back parses every record's headers again: 0.88 s of CPU per 1000 posts of
    bench.throughput's site, against 0.15 s for these lines. A record whose heads would not read
    back as they are in memory (see ``_PLAIN``), with no payload digest, or that the indexer fails
    on, leaves its file to be read back: ``of`` gives None for it.
    """

    def __init__(self) -> None:
        self._indexer: CDXJIndexer | None = None  # made with the first line: cdxj-indexer's imports take 0.1 s
        self._lines: dict[str, _Lines] = {}
        self._read_back: set[str] = set()

    def add(self, record: ArcWarcRecord, filename: str, offset: int, length: int) -> None:
        """``record``, just written into ``filename`` at ``offset`` (``length`` bytes)."""
        if self._indexer is None:
            self._indexer = _indexer()(output=None, inputs=[], records=RECORDS)
        if filename in self._read_back or not self._indexer.filter_record(record):
            return
        lines = self._lines.setdefault(filename, _Lines())
        count = len(lines)
        try:
            if _reads_back(record):
                self._indexer.curr_filename = filename
                self._indexer.process_index_entry(_Located(offset, length), record, filename, lines)
                if len(lines) == count + 1:
                    return
        except Exception:  # noqa: BLE001 - a record cdxj-indexer cannot take from memory: it reads the file
            pass
        self._read_back.add(filename)
        del self._lines[filename]

    def of(self, filename: str) -> list[str] | None:
        """The unsorted lines of ``filename``'s records, or None: read it back."""
        return None if filename in self._read_back else list(self._lines.get(filename, ()))


def indexed_files(archive_dir: str | os.PathLike[str]) -> set[str]:
    path = index_path(archive_dir).with_name(INDEXED_NAME)
    if not path.exists() or not index_path(archive_dir).exists():
        return set()
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def _unique(lines: Iterable[str]) -> Iterator[str]:
    """Drop repeated lines (a file indexed twice after a crash between the two renames)."""
    last = None
    for line in lines:
        if line != last:
            yield line
        last = line


def _replace(path: Path, lines: Iterable[str]) -> int:
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as out:
            for line in lines:
                out.write(line)
                count += 1
            out.flush()
            os.fsync(out.fileno())
    except BaseException:  # a full disk: the old file stays, and no half-written copy beside it
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return count


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One index writer at a time (two runs may end together)."""
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield


def update_index(archive_dir: str | os.PathLike[str], known: Mapping[str, list[str]] | None = None) -> IndexUpdate:
    """Index the archive's WARC files that are not in the index yet and merge them in.

    ``known``: the lines of some of those files, by name, already made as they were written
    (``RecordLines``); only the others are read.
    """
    known = known or {}
    index = index_path(archive_dir)
    index.parent.mkdir(parents=True, exist_ok=True)
    with _locked(index.parent):
        done = indexed_files(archive_dir)
        pending = [p for p in warc_paths(archive_dir) if p.name not in done]
        if not pending:
            total = sum(1 for _ in index.open(encoding="utf-8")) if index.exists() else 0
            return IndexUpdate([], 0, total)
        new = sorted([line for p in pending if p.name in known for line in known[p.name]]
                     + index_lines(p for p in pending if p.name not in known))
        if index.exists():
            with index.open(encoding="utf-8") as old:
                total = _replace(index, _unique(heapq.merge(old, new)))
        else:
            total = _replace(index, _unique(new))
        names = sorted(done | {p.name for p in pending})
        _replace(index.with_name(INDEXED_NAME), (name + "\n" for name in names))
    return IndexUpdate([p.name for p in pending], len(new), total)
