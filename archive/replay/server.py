"""Serving the replay app: the standard library's WSGI server, one thread per request.

The app is plain WSGI, so any WSGI server can host it; this one needs nothing installed.
"""

from __future__ import annotations

import logging
import socket
import socketserver
from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from archive.replay.app import ReplayApp
from archive.replay.wsgi import is_loopback_name

logger = logging.getLogger(__name__)


class _Handler(WSGIRequestHandler):
    timeout = 30  # a client that stops sending mid-request is dropped

    def get_environ(self) -> dict[str, Any]:
        env = super().get_environ()
        env["REQUEST_URI"] = self.path  # the target as sent: PATH_INFO has it percent-decoded
        return env

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        logger.info("%s %s", self.address_string(), format % args)


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn): a DNS query, which an
        # offline replay must not make and need not wait for.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
        self.setup_environ()


def is_loopback(host: str) -> bool:
    """A bind address only this machine can reach."""
    return is_loopback_name(host.lower())


def make_server(archive_dir: str | Path, host: str = "127.0.0.1", port: int = 8080) -> _Server:
    """A server for the archive, bound but not yet serving; ``port=0`` picks a free port."""
    app = ReplayApp(archive_dir, loopback_only=is_loopback(host))
    server_cls = _Server
    if ":" in host:
        server_cls = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
    server = server_cls((host, port), _Handler)
    server.set_app(app)
    app.start_background_work()
    return server


def serve(archive_dir: str | Path, host: str = "127.0.0.1", port: int = 8080,
          announce: Callable[[str], None] = print) -> None:
    """Serve until interrupted."""
    server = make_server(archive_dir, host, port)
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
    announce(f"postarc replay: serving {Path(archive_dir).resolve()} at http://{shown}:{bound_port}/")
    if not is_loopback(host):
        announce(f"postarc replay: WARNING: listening on {host}; anyone who can reach it can read the archive")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
