"""Reading a capture back out of the WARC files: status, headers and payload as received.

A ``revisit`` record (identical-payload-digest profile) carries no payload; the payload is that
of the earlier capture with the same digest, which ``WARC-Refers-To-Target-URI`` and
``WARC-Refers-To-Date`` point at (or, failing those, the same URL).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader, ChunkedDataReader
from warcio.recordloader import ArcWarcRecord
from warcio.timeutils import iso_date_to_timestamp

from archive.replay.index import Capture, CdxjIndex, timestamp_datetime
from archive.replay.ranges import read_stream
from archive.warc.compat import install_brotli


class NotArchived(LookupError):
    """The archive holds no usable capture for this request."""


@dataclass(frozen=True)
class StoredPayload:
    """Where a response record's payload is: read piece by piece (a range of it too), never whole."""

    path: Path
    offset: int  # of the record in its WARC file
    length: int

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The payload as a stream, read as its record's gzip member is inflated."""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            yield next(iter(ArchiveIterator(f))).raw_stream

    def read(self, start: int, count: int) -> Iterator[bytes]:
        """``count`` bytes of the payload from ``start``; the record's gzip member is inflated
        from its start (a member cannot be seeked into) but not kept."""
        with self.open() as stream:
            yield from read_stream(stream, start, count)

    def read_all(self) -> bytes:
        return b"".join(self.read(0, self.length))


@dataclass
class Replayed:
    """One capture, as the server sent it: the body still content-encoded, de-chunked."""

    capture: Capture  # the index line asked for (a revisit's own line for a revisit)
    record_id: str
    date: str  # WARC-Date
    target_uri: str
    status: int
    reason: str
    protocol: str
    headers: list[tuple[str, str]]
    body: bytes
    ip_address: str | None = None
    original: Capture | None = None  # for a revisit: where the payload came from
    warc_headers: dict[str, str] = field(default_factory=dict)
    payload: StoredPayload | None = None  # loaded with stream=True: the body is left there, unread

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def decoded_body(self) -> bytes:
        """The body with its ``Content-Encoding`` undone (ValueError if it cannot be)."""
        install_brotli()  # warcio's br decoder needs it, in whatever process hosts the replay
        body = self.body
        codings = [c.strip().lower() for c in (self.header("Content-Encoding") or "").split(",") if c.strip()]
        for coding in reversed(codings):
            if coding == "identity":
                continue
            if coding not in BufferedReader.get_supported_decompressors():
                raise ValueError(f"unsupported content-encoding {coding!r}")
            try:
                body = BufferedReader(BytesIO(body), decomp_type=coding).read()
            except Exception as exc:  # zlib.error, brotli.error: a corrupt or mislabelled body
                raise ValueError(f"cannot decode {coding}: {exc}") from exc
        return body


def _warc_path(warc_dir: Path, filename: str) -> Path:
    """A file named by the index, which must be a plain name inside ``warc/``."""
    if not filename or filename != Path(filename).name or filename in (".", ".."):
        raise NotArchived(f"index names an unusable WARC file {filename!r}")
    path = (warc_dir / filename).resolve()
    if not path.is_relative_to(warc_dir.resolve()) or not path.is_file():
        raise NotArchived(f"WARC file {filename!r} is not in the archive")
    return path


def _http_parts(record: ArcWarcRecord) -> tuple[int, str, str, list[tuple[str, str]]]:
    http = record.http_headers
    if http is None:  # a resource record: the block is the document
        ctype = record.rec_headers.get_header("Content-Type") or "application/octet-stream"
        return 200, "OK", "HTTP/1.1", [("Content-Type", ctype)]
    parts = http.statusline.split(" ", 1)
    code = parts[0] if parts[0].isdigit() else "0"
    return int(code), parts[1] if len(parts) > 1 else "", http.protocol or "HTTP/1.1", list(http.headers)


def _payload(record: ArcWarcRecord, headers: list[tuple[str, str]]) -> tuple[bytes, list[tuple[str, str]]]:
    """The body as received on the wire (still content-encoded), and the headers that fit it.

    A chunked body stored as is gets de-chunked (and loses ``Transfer-Encoding``), which is
    what an HTTP client hands on; the content-encoding stays as stored.
    """
    chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)
    if chunked:
        body = ChunkedDataReader(record.raw_stream).read()
        headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
    else:
        body = record.raw_stream.read()
    return body, headers


class ArchiveReader:
    """Loads captures found in ``index`` from the WARC files of ``archive_dir``."""

    def __init__(self, archive_dir: str | os.PathLike[str], index: CdxjIndex) -> None:
        self.warc_dir = Path(archive_dir) / "warc"
        self.index = index

    def record_id(self, capture: Capture) -> str:
        """The ``WARC-Record-ID`` of a capture (reads its header only)."""
        with _warc_path(self.warc_dir, capture.filename).open("rb") as f:
            f.seek(capture.offset)
            record = next(iter(ArchiveIterator(f)), None)
            return record.rec_headers.get_header("WARC-Record-ID") if record else ""

    def load(self, capture: Capture, stream: bool = False) -> Replayed:
        """Status, headers and body of ``capture``; a revisit gets its original's payload. With
        ``stream``, a payload stored as is (not chunked) is left in the file: ``Replayed.payload``
        says where, and ``body`` is empty."""
        path = _warc_path(self.warc_dir, capture.filename)
        with path.open("rb") as f:
            f.seek(capture.offset)
            try:
                record = next(iter(ArchiveIterator(f)), None)
            except Exception as exc:  # warcio raises ArchiveLoadFailed and friends
                raise NotArchived(f"unreadable record at {capture.filename}:{capture.offset}: {exc}") from exc
            if record is None or record.rec_type not in ("response", "revisit", "resource"):
                raise NotArchived(f"no response record at {capture.filename}:{capture.offset}")
            h = record.rec_headers
            status, reason, protocol, headers = _http_parts(record)
            original, payload, body = None, None, b""
            if record.rec_type == "revisit":
                original = self._original(capture, h.get_header("WARC-Refers-To-Target-URI"),
                                          h.get_header("WARC-Refers-To-Date"))
                source = self.load(original, stream)
                if record.http_headers is None:
                    status, reason, protocol, headers = source.status, source.reason, source.protocol, source.headers
                body, payload = source.body, source.payload
                headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
            elif stream and isinstance(getattr(record.raw_stream, "limit", None), int) and not any(
                    k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers):
                payload = StoredPayload(path, capture.offset, record.raw_stream.limit)
            else:
                body, headers = _payload(record, headers)
            return Replayed(
                capture=capture, record_id=h.get_header("WARC-Record-ID") or "", date=h.get_header("WARC-Date") or "",
                target_uri=h.get_header("WARC-Target-URI") or capture.url, status=status, reason=reason,
                protocol=protocol, headers=headers, body=body, ip_address=h.get_header("WARC-IP-Address"),
                original=original, warc_headers=dict(h.headers), payload=payload)

    def _original(self, revisit: Capture, target: str | None, date: str | None) -> Capture:
        """The non-revisit capture with the revisit's payload digest, nearest the date it names."""
        wanted = iso_date_to_timestamp(date) if date else revisit.timestamp
        candidates = [c for c in self.index.captures(target or revisit.url)
                      if not c.is_revisit and c.digest == revisit.digest]
        if not candidates:
            raise NotArchived(f"revisit of {revisit.url}: the original payload is not in the archive")
        when = timestamp_datetime(wanted)
        return min(candidates, key=lambda c: abs((c.when - when).total_seconds()))
