"""WARC/1.1 files as the archive of record, written with warcio.

One ``WarcFiles`` object owns the files of one process: it names them as design.md says
(``<PREFIX>-<timestamp>-<serial>-<host>-<pid>.warc.gz``), writes them as ``*.open`` and
renames them when closed, starts each with a ``warcinfo`` record and rotates at a size limit.
Every record is its own gzip member, flushed as soon as it is written, so a killed process
loses at most the record it was writing.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from io import BufferedWriter, BytesIO
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

OPEN_SUFFIX = ".open"
HOP_BY_HOP = {"transfer-encoding"}


@dataclass
class HttpExchange:
    """One HTTP request and the response to it, as they crossed the wire."""

    url: str
    method: str
    request_headers: list[tuple[str, str]]
    status: int
    reason: str
    response_headers: list[tuple[str, str]]
    body: bytes
    request_body: bytes = b""
    protocol: str = "HTTP/1.1"
    ip_address: str | None = None
    date: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    dechunked: bool = False


@dataclass(frozen=True)
class Written:
    """Where a record landed: enough to cite it (``WARC-Refers-To``) or read it back."""

    filename: str
    offset: int
    length: int
    record_id: str
    target_uri: str
    date: str


def request_line_target(url: str) -> str:
    """The request-target of an origin-form request line: path plus query."""
    scheme_sep = url.find("//")
    slash = url.find("/", scheme_sep + 2 if scheme_sep >= 0 else 0)
    return url[slash:] if slash >= 0 else "/"


def response_headers_for_warc(
    headers: list[tuple[str, str]], dechunked: bool
) -> list[tuple[str, str]]:
    """Headers to store: all of them, in order, except a stale ``Transfer-Encoding``.

    The HTTP client hands us a de-chunked body; keeping ``Transfer-Encoding: chunked`` would
    make replay tools try to de-chunk it again.
    """
    if not dechunked:
        return list(headers)
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]


class WarcFiles:
    """Rotating, crash-tolerant WARC output for one process."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        prefix: str = "POSTARC",
        max_size: int = 1_000_000_000,
        software: str = "postarc",
        info: dict[str, str] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        self.max_size = max_size
        self.software = software
        self.info = info or {}
        self.host = socket.gethostname().replace("-", "_") or "host"
        self.pid = os.getpid()
        self._serial = 0
        self._file: BufferedWriter | None = None
        self._writer: WARCWriter | None = None
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
            name = f"{self.prefix}-{stamp}-{self._serial:05d}-{self.host}-{self.pid}.warc.gz"
            self._serial += 1
            path = self.directory / (name + OPEN_SUFFIX)
            if not path.exists() and not (self.directory / name).exists():
                break
        self._file = open(path, "xb")
        self._writer = WARCWriter(self._file, gzip=True, warc_version="1.1")
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
        self._file.close()
        final = self.directory / self._name
        os.replace(self.directory / (self._name + OPEN_SUFFIX), final)
        self.files_closed.append(self._name)
        self._file = None
        self._writer = None

    def _ensure_open(self) -> WARCWriter:
        if self._file is not None and self._file.tell() >= self.max_size:
            self.close()
        if self._file is None:
            self._open()
        assert self._writer is not None
        return self._writer

    def _write(self, record) -> Written:
        assert self._file is not None and self._writer is not None
        offset = self._file.tell()
        self._writer.write_record(record)
        self._file.flush()
        h = record.rec_headers
        return Written(
            filename=self._name,
            offset=offset,
            length=self._file.tell() - offset,
            record_id=h.get_header("WARC-Record-ID"),
            target_uri=h.get_header("WARC-Target-URI") or "",
            date=h.get_header("WARC-Date"),
        )

    # -- records ---------------------------------------------------------------------

    def _base_headers(self, date: datetime) -> dict[str, str]:
        return {
            "WARC-Date": datetime_to_iso_date(date.astimezone(timezone.utc).replace(tzinfo=None), use_micros=True),
            "WARC-Warcinfo-ID": self._warcinfo_id,
        }

    def write_exchange(self, ex: HttpExchange) -> tuple[Written, Written]:
        """Write the ``response`` record and its ``request`` record; returns both locations."""
        writer = self._ensure_open()
        status_line = f"{ex.status} {ex.reason}".strip()
        http = StatusAndHeaders(status_line, response_headers_for_warc(ex.response_headers, ex.dechunked),
                                protocol=ex.protocol)
        headers = self._base_headers(ex.date)
        if ex.ip_address:
            headers["WARC-IP-Address"] = ex.ip_address
        response = writer.create_warc_record(
            ex.url, "response", payload=BytesIO(ex.body), length=len(ex.body),
            warc_headers_dict=headers, http_headers=http)
        req_http = StatusAndHeaders(f"{ex.method} {request_line_target(ex.url)} {ex.protocol}",
                                    ex.request_headers, is_http_request=True)
        req_headers = self._base_headers(ex.date)
        req_headers["WARC-Concurrent-To"] = response.rec_headers.get_header("WARC-Record-ID")
        request = writer.create_warc_record(
            ex.url, "request", payload=BytesIO(ex.request_body), length=len(ex.request_body),
            warc_headers_dict=req_headers, http_headers=req_http)
        written = self._write(response)
        return written, self._write(request)

    def write_conversion(self, target_uri: str, refers_to: str, content: bytes,
                         content_type: str = "text/markdown; charset=utf-8",
                         extra: dict[str, str] | None = None) -> Written:
        """A ``conversion`` record: content derived from the record ``refers_to``."""
        writer = self._ensure_open()
        headers = self._base_headers(datetime.now(timezone.utc))
        headers["WARC-Refers-To"] = refers_to
        headers.update(extra or {})
        record = writer.create_warc_record(
            target_uri, "conversion", payload=BytesIO(content), length=len(content),
            warc_content_type=content_type, warc_headers_dict=headers)
        return self._write(record)

