"""Serve a folder of static files on 127.0.0.1 for the benchmarks: nginx, else Python.

nginx runs as a foreground child with its own prefix, config, pid and log files in a
temporary folder, so it needs no system setup and leaves nothing behind. ``gzip_static``
sends ``X.gz`` content-encoded for ``X`` when the client accepts gzip. Where nginx is not
installed, a threaded Python server in its own process does the same; it costs the machine
CPU that nginx would not, so the benchmark reports which server it used.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONF = """\
{user}worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    types {{ text/html html; application/rss+xml xml; image/png png; text/plain txt; }}
    default_type application/octet-stream;
    charset utf-8;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    gzip_static on;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
{listen}
        root {root};
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_on(hosts: list[str]) -> int:
    """A port free on every one of ``hosts`` (loopback addresses)."""
    while True:
        port = free_port()
        try:
            for host in hosts:
                with socket.socket() as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue


def _wait_listening(hosts: list[str], port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    pending = list(hosts)
    while pending and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): {log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection((pending[0], port), timeout=0.2).close()
            pending.pop(0)
        except OSError:
            time.sleep(0.05)
    if pending:
        raise RuntimeError(f"server did not listen on {pending[0]}:{port}")


class StaticServer:
    """``with StaticServer(root, port) as server: server.kind`` ("nginx 1.22.1" or "python").

    Serves on ``port`` of each of ``hosts`` (loopback addresses: 127.0.0.2 is another host to
    a crawler's per-domain politeness, and still this machine).
    """

    def __init__(self, root: Path, port: int, *, use_nginx: bool = True, hosts: list[str] | None = None) -> None:
        self.root = root.resolve()
        self.port = port
        self.hosts = hosts or ["127.0.0.1"]
        self.nginx = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") if use_nginx else None
        self.kind = "python"
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> StaticServer:
        self._tmp = tempfile.TemporaryDirectory(prefix="postarc-server-")
        tmp = Path(self._tmp.name)
        log = tmp / "error.log"
        if self.nginx:
            # Started by root, nginx's workers would run as "nobody", who may not read a private
            # temporary folder: run them as the owner of the files instead.
            user = f"user {pwd.getpwuid(self.root.stat().st_uid).pw_name};\n" if os.geteuid() == 0 else ""
            conf = tmp / "nginx.conf"
            listen = "\n".join(f"        listen {host}:{self.port};" for host in self.hosts)
            conf.write_text(CONF.format(user=user, tmp=tmp, listen=listen, root=self.root))
            version = subprocess.run([self.nginx, "-v"], capture_output=True, text=True).stderr.strip()
            self.kind = version.replace("nginx version: ", "").replace("/", " ")
            cmd = [self.nginx, "-p", str(tmp), "-c", str(conf), "-e", str(log), "-g", "daemon off;"]
        else:
            cmd = [sys.executable, "-m", "bench.nginx", str(self.root), str(self.port), *self.hosts]
        with log.open("ab") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _wait_listening(self.hosts, self.port, self.proc, log)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> StaticServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _GzipStaticHandler(SimpleHTTPRequestHandler):
    """``SimpleHTTPRequestHandler`` plus nginx's ``gzip_static`` and keep-alive."""

    protocol_version = "HTTP/1.1"
    extensions_map = {".html": "text/html; charset=utf-8", ".xml": "application/rss+xml; charset=utf-8",
                      ".png": "image/png", ".txt": "text/plain; charset=utf-8"}

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        gz = path.with_name(path.name + ".gz")
        if "gzip" not in self.headers.get("Accept-Encoding", "") or not gz.is_file():
            return super().send_head()
        f = gz.open("rb")
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(gz.stat().st_size))
        self.end_headers()
        return f

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve(root: str, port: int, hosts: list[str]) -> None:
    handler = lambda *a: _GzipStaticHandler(*a, directory=root)  # noqa: E731
    servers = [ThreadingHTTPServer((host, port), handler) for host in hosts or ["127.0.0.1"]]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
