"""A raw-socket HTTP/1.1 server for wire-level tests: every byte of every response is the test's.

``http.server`` normalises what it sends (its own reason phrases, a ``Server`` and ``Date``
header, header case); WARC fidelity tests need exact status lines, header case and order,
HTTP/1.0 answers and repeated headers, and the raw request heads the client sent.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: A route that answers on the connection itself (``tests.faults``: stalls, resets, streams);
#: it returns whether the connection may carry another request.
Behaviour = Callable[[socket.socket], bool]


def message(status_line: str, headers: list[tuple[str, str]], body: bytes, *, chunked: bool = False) -> bytes:
    """A whole response: status line, headers as given, then the body (framed as asked)."""
    head = [status_line] + [f"{k}: {v}" for k, v in headers]
    if chunked:
        head.append("Transfer-Encoding: chunked")
        framed = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 700]), body[i:i + 700])
                          for i in range(0, len(body), 700)) + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
        framed = body
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + framed


def ok(body: bytes, content_type: str = "text/html; charset=utf-8", **kwargs: object) -> bytes:
    return message("HTTP/1.1 200 OK", [("Content-Type", content_type)], body, **kwargs)  # type: ignore[arg-type]


NOT_FOUND = message("HTTP/1.1 404 Not Found", [("Content-Type", "text/plain")], b"no such page")


@dataclass
class RawSite:
    """``with RawSite() as site: site.routes['/p'] = ok(b'...')``; targets are matched as sent."""

    routes: dict[str, bytes | Behaviour] = field(default_factory=dict)
    delay: float = 0.0  # seconds before every answer but robots.txt
    requests: list[bytes] = field(default_factory=list)  # raw request heads, in arrival order

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def url(self, target: str) -> str:
        return self.base + target

    def heads_for(self, target: str) -> list[bytes]:
        return [h for h in self.requests if h.split(b" ", 2)[1] == target.encode()]

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._answer(conn)
        except OSError:  # the client went away (a killed crawl)
            pass

    def _answer(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                self.requests.append(head + b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode("latin-1")
                if self.delay and target != "/robots.txt":
                    time.sleep(self.delay)
                answer = self.routes.get(target, NOT_FOUND)
                if callable(answer):
                    if not answer(conn):
                        return
                    continue
                conn.sendall(answer)
                status_head = answer.split(b"\r\n\r\n", 1)[0].lower()
                if status_head.startswith(b"http/1.0") or b"\r\nconnection: close" in status_head:
                    return

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def __enter__(self) -> RawSite:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
