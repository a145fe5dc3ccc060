"""A throwaway RFC 3161 timestamp authority on 127.0.0.1: a CA and a TSA made with openssl,
answered by ``openssl ts -reply`` behind a tiny HTTP server (RFC 3161's HTTP transport)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.tools import require_tool

CONFIG = """\
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(dir: Path, name: str) -> tuple[Path, Path]:
    """A self-signed P-256 CA: (certificate, key)."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
             "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=dir)
    return dir / f"{name}.pem", dir / f"{name}.key"


def issue(dir: Path, name: str, ca: str, extensions: str) -> Path:
    """A P-256 certificate for CN=name signed by the CA ``ca`` (its .pem and .key in ``dir``)."""
    (dir / f"{name}.ext").write_text(extensions)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=dir)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-days", "30", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=dir)
    return dir / f"{name}.pem"


class TSA:
    """``with TSA() as tsa``: ``tsa.url`` answers timestamp queries; ``tsa.ca`` is its root."""

    def __init__(self) -> None:
        require_tool("openssl")
        self.dir = Path(tempfile.mkdtemp(prefix="postarc-tsa-"))
        self.ca, _ = make_ca(self.dir, "ca")
        issue(self.dir, "tsa", "ca", "extendedKeyUsage = critical, timeStamping\n")
        (self.dir / "serial").write_text("01\n")
        self.config = self.dir / "tsa.cnf"
        self.config.write_text(CONFIG.format(dir=self.dir))
        self.queries = 0
        self._lock = threading.Lock()
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                query = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = tsa.reply(query)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/tsr"

    def reply(self, query: bytes) -> bytes:
        with self._lock:  # openssl ts keeps its serial number in a file
            self.queries += 1
            (self.dir / "query.tsq").write_bytes(query)
            _openssl("ts", "-reply", "-config", str(self.config), "-queryfile", "query.tsq",
                     "-out", "reply.tsr", cwd=self.dir)
            return (self.dir / "reply.tsr").read_bytes()

    def __enter__(self) -> TSA:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)
