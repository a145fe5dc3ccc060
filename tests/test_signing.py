"""Signed, timestamped WACZ: ``postarc keygen``, ``export-wacz --sign --timestamp-url`` against a
TSA run by ``openssl ts`` on 127.0.0.1, and ``postarc verify --wacz`` on it, on an authsign-signed
one, and on copies each changed by one byte. The signature is also checked as ReplayWeb.page
checks it: WebCrypto's verify in headless Chromium."""

from __future__ import annotations

import base64
import datetime
import json
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import pytest

from archive.wacz import replace_digest
from crawler.demo.server import Resource, SiteServer
from tests import conftest
from tests.helpers import REPO, postarc
from tests.ports import refusing_port
from tests.tools import chromium_driver, require_tool
from tests.tsa import TSA, make_ca


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory):
    """(dir, signed WACZ, unsigned WACZ, TSA CA) from one demo crawl."""
    tmp = tmp_path_factory.mktemp("signing")
    run = postarc("demo", "--archive", str(tmp / "data"))
    assert run.returncode == 0, run.stderr[-3000:]
    run = postarc("keygen", str(tmp / "key.pem"))
    assert run.returncode == 0, run.stderr
    with TSA() as tsa:
        run = postarc("export-wacz", "--archive", str(tmp / "data"), "--sign", str(tmp / "key.pem"),
                      "--timestamp-url", tsa.url, str(tmp / "signed.wacz"))
        assert run.returncode == 0, run.stderr[-3000:]
        assert "signed and timestamped" in run.stdout and tsa.queries == 1
        shutil.copy(tsa.ca, tmp / "tsa-ca.pem")
    run = postarc("export-wacz", "--archive", str(tmp / "data"), str(tmp / "plain.wacz"))
    assert run.returncode == 0, run.stderr[-3000:]
    return tmp, tmp / "signed.wacz", tmp / "plain.wacz", tmp / "tsa-ca.pem"


def digest_of(wacz: Path) -> dict:
    with zipfile.ZipFile(wacz) as z:
        return json.loads(z.read("datapackage-digest.json"))


def verify(wacz: Path, *args: str):
    return postarc("verify", "--wacz", str(wacz), *args)


def test_keygen_writes_an_owner_only_key_outside_the_archive(tmp_path: Path):
    key = tmp_path / "k.pem"
    run = postarc("keygen", str(key))
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in key.read_bytes()
    before = key.read_bytes()
    run = postarc("keygen", str(key))
    assert run.returncode == 1 and "already exists" in run.stderr and key.read_bytes() == before
    (tmp_path / "data").mkdir()
    run = postarc("keygen", "--archive", str(tmp_path / "data"), str(tmp_path / "data" / "k.pem"))
    assert run.returncode != 0 and "inside the archive" in run.stderr
    assert not (tmp_path / "data" / "k.pem").exists()


def test_signed_export_verifies_everywhere(signed):
    tmp, wacz, _plain, ca = signed
    digest = digest_of(wacz)
    assert set(digest["signedData"]) == {"hash", "created", "software", "signature", "publicKey"}
    assert {"timeSignature", "timestampCert"} <= set(digest)
    run = verify(wacz, "--trust", str(ca))
    assert run.returncode == 0, run.stdout
    assert "by a trusted TSA" in run.stdout and "signature: anonymous, valid" in run.stdout
    run = verify(wacz)  # without a trust list: valid, the time only claimed
    assert run.returncode == 0 and "as the TSA claims" in run.stdout, run.stdout
    # py-wacz's own validator accepts it (it checks that signedData.created is datapackage's).
    check = subprocess.run([sys.executable, "-m", "wacz", "validate", "-f", str(wacz)], capture_output=True, text=True)
    assert check.returncode == 0 and "Validation succeeded" in check.stdout, check.stdout + check.stderr
    # OpenSSL checks the token over the signature string against the TSA's CA.
    (tmp / "sig.txt").write_text(digest["signedData"]["signature"], encoding="ascii")
    (tmp / "token.tsr").write_bytes(base64.b64decode(digest["timeSignature"]))
    ts = subprocess.run([require_tool("openssl"), "ts", "-verify", "-data", str(tmp / "sig.txt"), "-in",
                         str(tmp / "token.tsr"), "-CAfile", str(ca)], capture_output=True, text=True)
    assert ts.returncode == 0 and "Verification: OK" in ts.stdout, ts.stdout + ts.stderr


def test_untrusted_tsa_and_unsigned(signed):
    tmp, wacz, plain, _ca = signed
    other, _key = make_ca(tmp, "other-ca")
    run = verify(wacz, "--trust", str(other))
    assert run.returncode == 1 and "timestamp: TSA CN=tsa is not trusted" in run.stdout, run.stdout
    run = verify(plain)
    assert run.returncode == 0 and "not signed" in run.stdout, run.stdout
    run = verify(wacz, "--trust", str(tmp / "missing.pem"))
    assert run.returncode != 0 and "--trust" in run.stderr and "Traceback" not in run.stderr
    out = tmp / "unstamped.wacz"
    run = postarc("export-wacz", "--archive", str(tmp / "data"), "--sign", str(tmp / "key.pem"),
                  "--timestamp-url", f"http://127.0.0.1:{refusing_port()}/tsr", str(out))
    assert run.returncode == 1 and "unreachable" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert not out.exists() and not list(tmp.glob("unstamped.wacz*"))


def rewrite(src: Path, dst: Path, name: str, change: Callable[[bytes], bytes] | None) -> None:
    """Copy the zip with member ``name`` changed (None: left out), the zip itself kept whole."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == name:
                if change is None:
                    continue
                data = change(data)
            zout.writestr(info, data)


def flip(offset: int) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        out = bytearray(data)
        out[offset % len(out)] ^= 0x01
        return bytes(out)
    return change


def in_digest(path: tuple[str, ...], offset: int) -> Callable[[bytes], bytes]:
    """One character of a digest string changed to another valid one (base64 stays base64)."""
    def change(data: bytes) -> bytes:
        digest = json.loads(data)
        holder = digest
        for key in path[:-1]:
            holder = holder[key]
        text = holder[path[-1]]
        i = offset % len(text)
        holder[path[-1]] = text[:i] + ("B" if text[i] != "B" else "C") + text[i + 1:]
        return json.dumps(digest, indent=2).encode()
    return change


def test_one_byte_changed_anywhere_is_named(signed):
    """Each case through archive.wacz_verify (what the command prints), one through the command."""
    from cryptography import x509

    from archive.wacz_verify import verify_wacz

    tmp, wacz, _plain, ca = signed
    trust = x509.load_pem_x509_certificates(ca.read_bytes())
    with zipfile.ZipFile(wacz) as z:
        names = z.namelist()
    warc = next(n for n in names if n.startswith("archive/"))
    cases = [
        (warc, flip(5000), f"{warc}: changed"),
        ("indexes/index.cdx.gz", flip(40), "indexes/index.cdx.gz: changed"),
        ("indexes/index.idx", flip(30), "indexes/index.idx: changed"),
        ("pages/pages.jsonl", flip(120), "pages/pages.jsonl: changed"),
        ("pages/pages.jsonl", None, "pages/pages.jsonl: missing"),
        ("datapackage.json", flip(200), "datapackage.json: changed"),
        ("datapackage-digest.json", in_digest(("hash",), 20), "datapackage.json: changed"),
        ("datapackage-digest.json", in_digest(("signedData", "hash"), 20), "signs another hash"),
        ("datapackage-digest.json", in_digest(("signedData", "signature"), 10), "bad signature"),
        ("datapackage-digest.json", in_digest(("signedData", "publicKey"), 100), "bad signature"),
        ("datapackage-digest.json", in_digest(("signedData", "created"), 18), "created differs"),
        ("datapackage-digest.json", in_digest(("timeSignature",), 700), "timestamp: token does not verify"),
        ("datapackage-digest.json", in_digest(("timestampCert",), 300), "timestampCert: not a PEM"),
    ]
    for n, (name, change, reason) in enumerate(cases):
        bad = tmp / f"bad{n}.wacz"
        rewrite(wacz, bad, name, change)
        report = verify_wacz(bad, trust)
        assert any(reason in problem for problem in report.problems), (name, reason, report.problems)
    # A byte of the zip file itself, inside the stored WARC: the zip's CRC names it.
    raw = bytearray(wacz.read_bytes())
    with zipfile.ZipFile(wacz) as z:
        info = z.getinfo(warc)
    raw[info.header_offset + 30 + len(warc.encode()) + len(info.extra) + 1000] ^= 0x01
    (tmp / "crc.wacz").write_bytes(bytes(raw))
    assert any(f"{warc}: damaged in the zip" in p for p in verify_wacz(tmp / "crc.wacz", trust).problems)
    # A member nobody listed; the command prints the finding and fails.
    shutil.copy(wacz, tmp / "extra.wacz")
    with zipfile.ZipFile(tmp / "extra.wacz", "a") as z:
        z.writestr("archive/extra.warc.gz", b"x")
    run = verify(tmp / "extra.wacz")
    assert run.returncode == 1 and "archive/extra.warc.gz: in the zip but not listed" in run.stdout, run.stdout
    assert "1 problem(s)" in run.stdout


def test_authsign_domain_signed_wacz_verifies(signed):
    """authsign's own code makes the domain form: its key and CSR, a cert from our CA, its signature
    and its RFC 3161 Timestamper (rfc3161ng) against our TSA."""
    conftest.require_tool("authsign (the test extra: pip install -e '.[test]')", find_spec("authsign"))
    from authsign import crypto
    from authsign.signer import Timestamper
    from cryptography import x509

    tmp, _wacz, plain, tsa_ca = signed
    ca_pem, ca_key_path = make_ca(tmp, "domain-ca")
    ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    ca_key = crypto.load_private_key(ca_key_path.read_bytes(), None)
    key = crypto.create_ecdsa_private_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = crypto.create_signed_cert(crypto.create_csr("archive.example", key), ca_cert, ca_key,
                                     now - datetime.timedelta(minutes=1), now + datetime.timedelta(days=1))
    with zipfile.ZipFile(plain) as z:
        digest = json.loads(z.read("datapackage-digest.json"))
        created = json.loads(z.read("datapackage.json"))["created"]
    signature = crypto.sign(digest["hash"], key)
    with TSA() as tsa:
        time_signature, _when, ts_pem = Timestamper(url=tsa.url)(signature)
        shutil.copy(tsa.ca, tmp / "tsa2-ca.pem")
    digest["signedData"] = {
        "hash": digest["hash"], "created": created, "software": "authsigner test", "signature": signature,
        "domain": "archive.example", "domainCert": crypto.get_as_pem(cert).decode() + ca_pem.read_text(),
        "timeSignature": time_signature.decode(), "timestampCert": ts_pem,
    }
    domain_wacz = tmp / "domain.wacz"
    shutil.copy(plain, domain_wacz)
    replace_digest(domain_wacz, digest)
    trust = tmp / "trust.pem"
    trust.write_text(ca_pem.read_text() + (tmp / "tsa2-ca.pem").read_text())
    run = verify(domain_wacz, "--trust", str(trust))
    assert run.returncode == 0, run.stdout
    assert "signature: by archive.example, valid" in run.stdout and "by a trusted TSA" in run.stdout
    run = verify(domain_wacz, "--trust", str(tmp / "tsa2-ca.pem"))  # the domain's CA not trusted
    assert run.returncode == 1 and "domain certificate not trusted" in run.stdout, run.stdout


VERIFY_JS = """
const [hash, signature, publicKey, done] = arguments;
const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
// As ReplayWeb.page (wabac.js src/wacz/certutils.ts) verifies an anonymous signature.
crypto.subtle.importKey("spki", bytes(publicKey), {name: "ECDSA", namedCurve: "P-384"}, true, ["verify"])
  .then((key) => crypto.subtle.verify({name: "ECDSA", hash: "SHA-256"}, key, bytes(signature),
                                      new TextEncoder().encode(hash)))
  .then((ok) => done(ok), (err) => done(String(err)));
"""


def test_webcrypto_verifies_the_signature_as_replayweb_page_does(signed):
    _tmp, wacz, _plain, _ca = signed
    signed_data = digest_of(wacz)["signedData"]
    with SiteServer() as site, chromium_driver() as driver:
        site.routes["/"] = Resource(b"<!doctype html><title>verify</title>")
        driver.get(site.base + "/")  # 127.0.0.1 is a secure context: crypto.subtle is there
        args = (signed_data["hash"], signed_data["signature"], signed_data["publicKey"])
        assert driver.execute_async_script(VERIFY_JS, *args) is True
        other = signed_data["hash"][:-1] + ("0" if signed_data["hash"][-1] != "0" else "1")
        assert driver.execute_async_script(VERIFY_JS, other, *args[1:]) is False


RWP = REPO / "tests" / "replaywebpage" / "package"  # tests/install-tools unpacks it
SHOWN_TEXT = """
function walk(n, out) {  // ReplayWeb.page draws in shadow roots
  if (n.nodeType === 3) out.push(n.textContent);
  if (n.shadowRoot) walk(n.shadowRoot, out);
  for (const c of n.childNodes) walk(c, out);
  return out;
}
return walk(document.body, []).join(" ").replace(/\\s+/g, " ");
"""


def test_replayweb_page_opens_the_export_and_shows_its_public_key(signed, tmp_path: Path):
    import functools
    import threading
    import time
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    conftest.require_tool("ReplayWeb.page in tests/replaywebpage (tests/install-tools unpacks it)",
                          (RWP / "ui.js").is_file())
    _tmp, wacz, _plain, _ca = signed
    for name in ("index.html", "ui.js", "sw.js"):
        (tmp_path / name).symlink_to(RWP / name)
    (tmp_path / "signed.wacz").symlink_to(wacz)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    signed_data = digest_of(wacz)["signedData"]
    try:
        with chromium_driver() as driver:
            driver.get(f"{base}/index.html?source={base}/signed.wacz")
            deadline = time.monotonic() + 60
            text = ""
            while "Observer Public Key" not in text and time.monotonic() < deadline:
                time.sleep(1)
                text = driver.execute_script(SHOWN_TEXT)
            assert f"Observer Public Key Copy {signed_data['publicKey']}" in text, text[:2000]
            assert "Created With postarc" in text
            # Its info pane counts any signature as verified: check it as its code does, on its page.
            args = (signed_data["hash"], signed_data["signature"], signed_data["publicKey"])
            assert driver.execute_async_script(VERIFY_JS, *args) is True
    finally:
        server.shutdown()
        server.server_close()


def test_an_anonymous_p256_signature_is_valid_but_said_to_be_refused_by_replaywebpage(signed, tmp_path: Path):
    """Another tool's P-256 key: the signature holds, and verify says ReplayWeb.page won't show it."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from archive.wacz import signed_digest

    _tmp, wacz, plain, _ca = signed
    p256 = tmp_path / "p256.wacz"
    shutil.copy(plain, p256)
    with zipfile.ZipFile(p256) as z:
        datapackage = z.read("datapackage.json")
    replace_digest(p256, signed_digest(datapackage, ec.generate_private_key(ec.SECP256R1())))
    run = verify(p256)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "signature: anonymous, valid" in run.stdout
    assert "secp256r1; ReplayWeb.page verifies P-384" in run.stdout
    assert "ReplayWeb.page verifies" not in verify(wacz).stdout  # postarc's own P-384 signature
