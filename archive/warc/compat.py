"""Every adaptation of warcio in one place: what postarc needs that warcio 1.8 does not do.

- ``install_brotli``: warcio decodes ``Content-Encoding: br`` with brotlipy's interface only;
- ``LevelWARCWriter``: warcio compresses every record at level 9 and writes it itself.

Reading and writing code calls ``install_brotli`` before it needs it (not at import time), so a
process that imports only the replay app decodes ``br`` records as well as the crawler does.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from io import BytesIO
from typing import BinaryIO

import brotli
from warcio.bufferedreaders import BufferedReader
from warcio.warcwriter import GzippingWrapper, WARCWriter

# Payload pieces handed to zlib and hashlib (LevelWARCWriter._iter_stream).
_PIECE = 1 << 20


class _BrotliDecompressor:
    """warcio's reader drives decoders through zlib's interface (``decompress``, ``unused_data``).

    warcio registers ``brotli.Decompressor`` for ``Content-Encoding: br``, which only brotlipy's
    has; Google's Brotli (which Scrapy needs) calls it ``process``, so reading a ``br`` record's
    content fails (warcio issue #73). Registering this adapter lets warcio read them.
    """

    unused_data = None

    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def decompress(self, data: bytes) -> bytes:
        return self._decompressor.process(data)


def install_brotli() -> None:
    """Let warcio's readers decode ``br`` with Google's Brotli (idempotent, cheap)."""
    if not hasattr(brotli.Decompressor, "decompress"):
        BufferedReader.DECOMPRESSORS["br"] = _BrotliDecompressor


class _GzipMember(GzippingWrapper):
    """warcio's one-gzip-member-per-record wrapper, at a chosen compression level (warcio: 9)."""

    def __init__(self, out: BinaryIO, level: int) -> None:
        # Not super().__init__: it would build a level-9 compressor only to drop it (0.15 s per
        # 8000 records).
        self.out = out
        self.compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS + 16)


class _WriteAll:
    """An unbuffered file whose ``write`` writes everything or raises (a disk filling up
    makes ``FileIO.write`` write less than asked)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self.out.write(view):]

    def flush(self) -> None:
        self.out.flush()


class LevelWARCWriter(WARCWriter):
    """``WARCWriter`` whose records are gzip members compressed at ``level``, made in memory.

    warcio fixes the level at 9, which costs about twice the CPU of level 1 for WARC files a
    few percent smaller (docs/performance.md): the writer wraps each record itself. It hands
    the record back instead of writing it, so that ``WarcFiles`` writes it in one piece.
    """

    def __init__(self, level: int, **kwargs) -> None:
        super().__init__(None, gzip=False, **kwargs)
        self.level = level

    @staticmethod
    def _iter_stream(stream: BinaryIO) -> Iterator[bytes]:
        # warcio reads payloads in 16 KB pieces; each piece is a zlib and a hashlib call that
        # releases the GIL and must take it back from the reactor thread. Ours are in memory:
        # megabyte pieces mean 50x fewer hand-offs.
        while buf := stream.read(_PIECE):
            yield buf

    def write_member(self, out: BinaryIO, record, level: int | None = None) -> None:
        """The record as one gzip member at ``level``, written into ``out`` as it is compressed:
        a payload read from a file (an enclosure) never whole in memory."""
        self._write_warc_record(_GzipMember(_WriteAll(out), self.level if level is None else level), record)

    def record_bytes(self, record, level: int | None = None) -> BytesIO:
        """The record as one gzip member, at ``level`` (default: the writer's)."""
        out = BytesIO()
        self._write_warc_record(_GzipMember(out, self.level if level is None else level), record)
        return out
