"""Writing WARC/1.1 files with warcio.

One ``WarcFiles`` object owns the files of one process: it names them
``<PREFIX>-<timestamp>-<serial>-<host>-<pid>.warc.gz``, writes them as ``*.open`` and
renames them when closed, starts each with a ``warcinfo`` record and rotates at a size limit.
Every record is its own gzip member, flushed to the OS as soon as it is written, so a killed
process loses at most the record it was writing (``archive.warc.repair`` cuts it off).
"""

from __future__ import annotations

import fcntl
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from io import BytesIO, FileIO
from pathlib import Path
from typing import BinaryIO

from w3lib.url import safe_url_string
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.utils import Digester

from archive.cdxj import RecordLines
from archive.warc.compat import LevelWARCWriter, install_brotli

OPEN_SUFFIX = ".open"
WARC_SUFFIX = ".warc.gz"
#: Framing the HTTP client already undid: the stored body is de-chunked, so this header
#: would make replay tools de-chunk it a second time.
TRANSFER_FRAMING = "transfer-encoding"
# Payloads that deflate cannot shrink: stored in their gzip member (level 0). Measured on the
# benchmark's images: level 6 costs 7x the CPU of storing them, for a member 0.1 % larger.
_COMPRESSED_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/heic",
                               "application/zip", "application/gzip", "application/x-gzip", "application/pdf"})
_COMPRESSED_PREFIXES = ("video/", "audio/", "font/woff")
_PIECE = 1 << 20


@dataclass
class HttpExchange:
    """One HTTP request and the response to it, as they crossed the wire.

    ``body`` is the payload after transfer decoding (de-chunked) and before content decoding
    (still gzip/deflate/br as the server sent it); ``body_file``, when set, holds it instead (a
    file read from its start, never whole into memory: enclosures). ``url`` is written percent-encoded (a
    ``WARC-Target-URI`` is ASCII). ``request_target`` is the request line's
    target as sent (defaults to the URL's path and query). ``payload_digest``: the body's
    ``payload_digest`` when the caller has it already (it is not computed twice).
    """

    url: str
    method: str
    request_headers: list[tuple[str, str]]
    status: int
    reason: str
    response_headers: list[tuple[str, str]]
    body: bytes
    request_body: bytes = b""
    request_target: str | None = None
    request_protocol: str = "HTTP/1.1"
    protocol: str = "HTTP/1.1"
    ip_address: str | None = None
    date: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    payload_digest: str = ""
    body_file: BinaryIO | None = None

    @property
    def body_length(self) -> int:
        return os.fstat(self.body_file.fileno()).st_size if self.body_file is not None else len(self.body)


@dataclass(frozen=True)
class Written:
    """Where a record landed: enough to cite it (``WARC-Refers-To``) or read it back."""

    filename: str
    offset: int
    length: int
    record_id: str
    target_uri: str
    date: str
    payload_digest: str = ""


@dataclass(frozen=True)
class Original:
    """The record that first archived a payload: what a ``revisit`` record points at."""

    record_id: str
    target_uri: str
    date: str


def incompressible(headers: list[tuple[str, str]]) -> bool:
    """The response's body is compressed already: content-encoded, or of a compressed format."""
    for name, value in headers:
        name = name.lower()
        if name == "content-encoding" and value.strip().lower() not in ("", "identity"):
            return True
        if name == "content-type":
            ctype = value.split(";", 1)[0].strip().lower()
            if ctype in _COMPRESSED_TYPES or ctype.startswith(_COMPRESSED_PREFIXES):
                return True
    return False


def payload_digest(body: bytes) -> str:
    """The ``WARC-Payload-Digest`` warcio writes for this payload (``sha1:`` base32)."""
    digester = Digester("sha1")
    digester.update(body)
    return str(digester)


def file_digest(file: BinaryIO) -> str:
    """``payload_digest`` of a file's content, read in pieces from its start (rewound after)."""
    digester = Digester("sha1")
    file.seek(0)
    while piece := file.read(_PIECE):
        digester.update(piece)
    file.seek(0)
    return str(digester)


def request_line_target(url: str) -> str:
    """The request-target of an origin-form request line: path plus query."""
    scheme_sep = url.find("//")
    slash = url.find("/", scheme_sep + 2 if scheme_sep >= 0 else 0)
    target = url[slash:] if slash >= 0 else "/"
    return target.split("#", 1)[0]


def response_headers_for_warc(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers to store: all of them, in wire order, except the stale ``Transfer-Encoding``."""
    return [(k, v) for k, v in headers if k.lower() != TRANSFER_FRAMING]


def warc_date(date: datetime) -> str:
    return datetime_to_iso_date(date.astimezone(timezone.utc).replace(tzinfo=None), use_micros=True)


class WarcFiles:
    """Rotating, crash-tolerant WARC output for one process.

    The open file is held with an exclusive ``flock`` so that ``repair_open_files`` in another
    process can tell a live file from one a killed run left behind. ``fsync_records`` makes
    every record durable against power loss too (a killed *process* loses nothing flushed
    either way); files are always fsynced when closed. ``gzip_level`` is each record's
    compression level (1–9); a response whose body is compressed already is stored (level 0).
    With ``lines``, each record written is indexed there too (``lines.of(name)``).

    Not thread-safe: one thread at a time (``crawler.middlewares`` gives it a thread of its own).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        prefix: str = "POSTARC",
        max_size: int = 1_000_000_000,
        software: str = "postarc",
        info: dict[str, str] | None = None,
        fsync_records: bool = False,
        gzip_level: int = 9,
        lines: RecordLines | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        self.max_size = max_size
        self.software = software
        self.info = info or {}
        self.fsync_records = fsync_records
        self.gzip_level = gzip_level
        self.lines = lines
        # A process that writes br records reads them back too (reextract, warcio's checker):
        # warcio can decode them from now on.
        install_brotli()
        self.host = socket.gethostname().replace("-", "_") or "host"
        self.pid = os.getpid()
        self._serial = 0
        self._file: FileIO | None = None
        self._writer: LevelWARCWriter | None = None
        self._name = ""
        self._warcinfo_id = ""
        self.files_closed: list[str] = []

    # -- files -----------------------------------------------------------------------

    @property
    def current_name(self) -> str:
        return self._name

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        while True:
            name = f"{self.prefix}-{stamp}-{self._serial:05d}-{self.host}-{self.pid}{WARC_SUFFIX}"
            self._serial += 1
            path = self.directory / (name + OPEN_SUFFIX)
            if not path.exists() and not (self.directory / name).exists():
                break
        # Unbuffered: a record is written whole or cut off (see _write), never left half in a buffer.
        self._file = open(path, "xb", buffering=0)
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        self._writer = LevelWARCWriter(self.gzip_level, warc_version="1.1")
        self._name = name
        info = {"software": self.software, "format": "WARC File Format 1.1",
                "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
                "hostname": socket.gethostname(), **self.info}
        record = self._writer.create_warcinfo_record(name, info)
        self._warcinfo_id = record.rec_headers.get_header("WARC-Record-ID")
        self._write(record)

    def close(self) -> None:
        """Flush, fsync and rename ``*.open`` to its final name."""
        if self._file is None:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        os.replace(self.directory / (self._name + OPEN_SUFFIX), self.directory / self._name)
        self._file.close()  # after the rename: the lock covers it
        fsync_dir(self.directory)
        self.files_closed.append(self._name)
        self._file = None
        self._writer = None

    def _ensure_open(self) -> LevelWARCWriter:
        if self._file is not None and self._file.tell() >= self.max_size:
            self.close()
        if self._file is None:
            self._open()
        assert self._writer is not None
        return self._writer

    def _write(self, record, level: int | None = None, streamed: bool = False) -> Written:
        """Write ``record`` as one gzip member: made in memory and written in one piece, or
        ``streamed`` (a payload read from a file) into the file as it is compressed."""
        assert self._file is not None and self._writer is not None
        offset = self._file.tell()
        try:
            if streamed:
                self._writer.write_member(self._file, record, level)
            else:
                data = self._writer.record_bytes(record, level)
                with data.getbuffer() as view:
                    _write_all(self._file, view)
        except OSError:
            # The disk is full (or failing): cut off what got out of this record, so the file
            # still ends with a complete record and can be closed whole; the caller hears why.
            self._file.truncate(offset)
            self._file.seek(offset)
            raise
        if self.fsync_records:
            os.fsync(self._file.fileno())
        length = self._file.tell() - offset
        if self.lines is not None:
            self.lines.add(record, self._name, offset, length)
        h = record.rec_headers
        return Written(
            filename=self._name,
            offset=offset,
            length=length,
            record_id=h.get_header("WARC-Record-ID"),
            target_uri=h.get_header("WARC-Target-URI") or "",
            date=h.get_header("WARC-Date"),
            payload_digest=h.get_header("WARC-Payload-Digest") or "",
        )

    # -- records ---------------------------------------------------------------------

    def _base_headers(self, date: datetime) -> dict[str, str]:
        return {"WARC-Date": warc_date(date), "WARC-Warcinfo-ID": self._warcinfo_id}

    def write_exchange(self, ex: HttpExchange, original: Original | None = None) -> tuple[Written, Written]:
        """Write the ``response`` record and its ``request`` record; returns both locations.

        With ``original`` (the first capture of an identical payload) the response is written as
        a ``revisit`` record: the HTTP headers are kept, the body is not.
        """
        writer = self._ensure_open()
        http = StatusAndHeaders(f"{ex.status} {ex.reason}".rstrip(), response_headers_for_warc(ex.response_headers),
                                protocol=ex.protocol)
        headers = self._base_headers(ex.date)
        if ex.ip_address:
            headers["WARC-IP-Address"] = ex.ip_address
        if original is None:
            if ex.payload_digest:
                headers["WARC-Payload-Digest"] = ex.payload_digest
            if ex.body_file is not None:
                ex.body_file.seek(0)
            response = writer.create_warc_record(
                safe_url_string(ex.url), "response", payload=ex.body_file or BytesIO(ex.body), length=ex.body_length,
                warc_headers_dict=headers, http_headers=http)
        else:
            headers["WARC-Refers-To"] = original.record_id
            response = writer.create_revisit_record(
                safe_url_string(ex.url), ex.payload_digest or payload_digest(ex.body), original.target_uri, original.date,
                http_headers=http, warc_headers_dict=headers)
        target = ex.request_target or request_line_target(ex.url)
        req_http = StatusAndHeaders(f"{ex.method} {target} {ex.request_protocol}",
                                    ex.request_headers, is_http_request=True)
        req_headers = self._base_headers(ex.date)
        req_headers["WARC-Concurrent-To"] = response.rec_headers.get_header("WARC-Record-ID")
        request = writer.create_warc_record(
            safe_url_string(ex.url), "request", payload=BytesIO(ex.request_body), length=len(ex.request_body),
            warc_headers_dict=req_headers, http_headers=req_http)
        stored = original is None and incompressible(ex.response_headers)
        written = self._write(response, 0 if stored else None, streamed=original is None and ex.body_file is not None)
        return written, self._write(request)

    def write_alias(self, target_uri: str, original: Original, digest: str, status_line: str, protocol: str,
                    headers: list[tuple[str, str]]) -> Written:
        """A ``revisit`` of ``original``'s payload under another URI, with the original's HTTP head:
        the URL a page named for an image fetched under its unwrapped URL (an image proxy), so
        that replay finds the image where the page asks for it."""
        writer = self._ensure_open()
        http = StatusAndHeaders(status_line, response_headers_for_warc(headers), protocol=protocol)
        warc_headers = self._base_headers(datetime.now(timezone.utc))
        warc_headers["WARC-Refers-To"] = original.record_id
        record = writer.create_revisit_record(safe_url_string(target_uri), digest, original.target_uri, original.date,
                                              http_headers=http, warc_headers_dict=warc_headers)
        return self._write(record)

    def write_conversion(self, target_uri: str, refers_to: str, content: bytes,
                         content_type: str = "text/markdown; charset=utf-8",
                         extra: dict[str, str] | None = None) -> Written:
        """A ``conversion`` record: content derived from the record ``refers_to``."""
        writer = self._ensure_open()
        headers = self._base_headers(datetime.now(timezone.utc))
        headers["WARC-Refers-To"] = refers_to
        headers.update(extra or {})
        record = writer.create_warc_record(
            safe_url_string(target_uri), "conversion", payload=BytesIO(content), length=len(content),
            warc_content_type=content_type, warc_headers_dict=headers)
        return self._write(record)


def _write_all(file: FileIO, data: memoryview) -> None:
    """``FileIO.write`` may write less than asked (a disk filling up): write the rest, or raise."""
    while data:
        data = data[file.write(data):]


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
