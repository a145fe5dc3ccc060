"""A small HTTP server for sample aggregators: the demo's, the tests' and the benchmarks'.

Serves a fixed map of paths on 127.0.0.1 (a free port) from a thread, with the behaviours
archiving must cope with: gzip content-encoding, chunked transfer, hotlink-protected images,
dead links. Real HTTP/1.1 over a real socket, so the crawler under test sees a real server.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class Resource:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    gzip: bool = False  # send Content-Encoding: gzip
    chunked: bool = False  # send Transfer-Encoding: chunked
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Hotlink check: a request with a Referer that starts with none of these gets 403 (no Referer passes).
    referer_required: str | tuple[str, ...] | None = None
    etag: str | None = None  # sent as ETag; a matching If-None-Match gets 304 Not Modified
    last_modified: str | None = None  # sent as Last-Modified; If-Modified-Since not older gets 304
    delay: float = 0.0  # seconds to wait before answering (a slow server)

    def validators(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in (("ETag", self.etag), ("Last-Modified", self.last_modified)) if v]

    def not_modified(self, headers) -> bool:
        """Whether a conditional request's validators match this resource (RFC 9110 §13.2.2)."""
        if self.etag and headers.get("If-None-Match"):
            return self.etag in [t.strip() for t in headers["If-None-Match"].split(",")]
        if self.last_modified and headers.get("If-Modified-Since"):
            try:
                return parsedate_to_datetime(headers["If-Modified-Since"]) >= parsedate_to_datetime(self.last_modified)
            except (TypeError, ValueError):
                return False
        return False

    def wire_body(self) -> bytes:
        """The body as it goes on the wire (compressed once, deterministically)."""
        return gzip.compress(self.body, mtime=0) if self.gzip else self.body


@dataclass
class Exchange:
    """One request as the server saw it: when it arrived and when its response was written
    (``time.monotonic()``), so tests can check what a client waited for."""

    path: str
    status: int
    arrived: float
    answered: float


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SiteServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = unquote(urlsplit(self.path).path)
        self.server.log.append((path, dict(self.headers.items())))
        arrived = time.monotonic()
        status = self._answer(path)
        self.server.exchanges.append(Exchange(path, status, arrived, time.monotonic()))

    def _answer(self, path: str) -> int:
        """Send the response for ``path``; returns its status."""
        res = self.server.routes.get(path) or self.server.routes.get(self.path)
        if isinstance(res, list):  # a sequence of answers: each request takes the next, the last stays
            res = res.pop(0) if len(res) > 1 else res[0]
        if res is not None and res.delay:
            time.sleep(res.delay)
        if res is not None and res.status == 200 and res.not_modified(self.headers):
            self.send_response(304)
            for name, value in res.validators():
                self.send_header(name, value)
            self.end_headers()
            return 304
        if res is None:
            res = Resource(b"<h1>404 Not Found</h1>", status=404)
        elif res.referer_required is not None:
            referer = self.headers.get("Referer")
            if referer is not None and not referer.startswith(res.referer_required):
                res = Resource(b"hotlinking forbidden", "text/plain", status=403)
        body = res.wire_body()
        self.send_response(res.status)
        self.send_header("Content-Type", res.content_type)
        for name, value in [*res.headers, *res.validators()]:
            self.send_header(name, value)
        if res.gzip:
            self.send_header("Content-Encoding", "gzip")
        if res.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 1000):
                part = body[i:i + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        return res.status

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class SiteServer(ThreadingHTTPServer):
    """``with SiteServer(routes) as site: site.url('/feed.xml')``"""

    daemon_threads = True

    def __init__(self, routes: dict[str, Resource] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.routes: dict[str, Resource | list[Resource]] = routes or {}
        self.log: list[tuple[str, dict[str, str]]] = []
        self.exchanges: list[Exchange] = []
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def start(self) -> SiteServer:
        self._thread = threading.Thread(target=self.serve_forever, name="site-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
