"""WACZ export: the archive's WARC files packaged for ReplayWeb.page, made by py-wacz.

py-wacz indexes the WARC files itself and writes the datapackage with its digests; postarc
adds the page list, one page per archived post (its article URL and title), so ReplayWeb.page
opens on the posts rather than on every feed and image.

With a key, ``datapackage-digest.json`` gets the anonymous ``signedData`` of the WACZ signing
recommendation (archive.signing) and, with a timestamp server, an RFC 3161 token over the
signature beside it, as ``timeSignature`` and ``timestampCert`` (docs/provenance.md says why
there and not in ``signedData``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from archive.catalogue import Catalogue
from archive.cdxj import index_path, warc_paths
from archive.signing import public_key_b64, sign_p1363
from archive.timestamp import TimestampError, request_token

DIGEST_NAME = "datapackage-digest.json"


class ExportError(Exception):
    """The archive cannot be exported (nothing to export, or py-wacz refused)."""


@dataclass(frozen=True)
class Export:
    path: Path
    warc_files: int
    pages: int
    signed: bool = False
    timestamped: bool = False


def _captured_urls(archive_dir: Path) -> set[str]:
    index = index_path(archive_dir)
    if not index.exists():
        return set()
    urls = set()
    with index.open(encoding="utf-8") as lines:
        for line in lines:
            fields = json.loads(line.split(" ", 2)[2])
            if str(fields.get("status", "")).startswith("2"):
                urls.add(fields["url"])
    return urls


def post_pages(archive_dir: Path) -> list[dict[str, str]]:
    """``pages.jsonl`` entries: each catalogued post whose article page was captured (2xx)."""
    if not (archive_dir / "state.sqlite").exists():
        return []
    captured = _captured_urls(archive_dir)
    catalogue = Catalogue.of_archive(archive_dir)
    try:
        seen, pages = set(), []
        for post in catalogue.posts():
            if post.link in captured and post.link not in seen:
                seen.add(post.link)
                pages.append({"url": post.link, "title": post.title})
        return pages
    finally:
        catalogue.close()


def signed_digest(datapackage: bytes, key: ec.EllipticCurvePrivateKey, timestamp_url: str = "") -> dict:
    """``datapackage-digest.json`` for these ``datapackage.json`` bytes, signed (and timestamped)."""
    digest = "sha256:" + hashlib.sha256(datapackage).hexdigest()
    signature = sign_p1363(key, digest)
    signed = {"hash": digest, "created": json.loads(datapackage)["created"], "software": f"postarc {version('postarc')}",
              "signature": signature, "publicKey": public_key_b64(key)}
    result = {"path": "datapackage.json", "hash": digest, "signedData": signed}
    if timestamp_url:
        token = request_token(timestamp_url, signature.encode("ascii"))
        result["timeSignature"] = token.response_b64
        result["timestampCert"] = token.cert_pem
    return result


def replace_digest(path: Path, digest: dict) -> None:
    """Rewrite the zip with a new digest member (py-wacz wrote its own last; zips cannot edit)."""
    rewritten = path.with_name(path.name + ".signed")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(rewritten, "w") as dst:
        for info in src.infolist():
            if info.filename == DIGEST_NAME:
                continue
            copy = zipfile.ZipInfo(info.filename, info.date_time)
            copy.compress_type, copy.file_size = info.compress_type, info.file_size
            with src.open(info) as r, dst.open(copy, "w", force_zip64=info.file_size >= zipfile.ZIP64_LIMIT) as w:
                shutil.copyfileobj(r, w, 1 << 20)
        info = zipfile.ZipInfo(DIGEST_NAME, src.getinfo(DIGEST_NAME).date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        dst.writestr(info, json.dumps(digest, indent=2))
    os.replace(rewritten, path)


def sign_wacz(path: str | os.PathLike[str], key: ec.EllipticCurvePrivateKey, timestamp_url: str = "") -> dict:
    """Sign a WACZ in place; returns the digest written. ExportError if the TSA fails."""
    path = Path(path)
    with zipfile.ZipFile(path) as z:
        datapackage = z.read("datapackage.json")
    try:
        digest = signed_digest(datapackage, key, timestamp_url)
    except TimestampError as exc:
        raise ExportError(str(exc)) from None
    replace_digest(path, digest)
    return digest


def export_wacz(archive_dir: str | os.PathLike[str], out: str | os.PathLike[str], title: str = "",
                key: ec.EllipticCurvePrivateKey | None = None, timestamp_url: str = "") -> Export:
    """Write ``out`` (a ``.wacz``) from the archive's closed WARC files; atomic: temp then rename."""
    archive_dir, out = Path(archive_dir), Path(out)
    warcs = warc_paths(archive_dir)
    if not warcs:
        raise ExportError(f"{archive_dir}: no WARC files to export")
    # Imported here: importing py-wacz changes cdxj-indexer's defaults for the whole process.
    from wacz.main import main as wacz_main

    pages = post_pages(archive_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp")
    with tempfile.TemporaryDirectory(prefix="postarc-wacz-") as tmp:
        args = ["create", "-o", str(tmp_out), "--title", title or f"postarc archive {archive_dir.resolve().name}"]
        if pages:
            pages_file = Path(tmp) / "pages.jsonl"
            lines = [{"format": "json-pages-1.0", "id": "pages", "title": "Posts"}, *pages]
            pages_file.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in lines), encoding="utf-8")
            args += ["-p", str(pages_file)]
        else:
            args += ["--detect-pages"]
        # py-wacz reports progress with print(); keep stdout for our own result.
        with contextlib.redirect_stdout(sys.stderr):
            code = wacz_main(args + [str(p) for p in warcs])
    if code != 0:
        tmp_out.unlink(missing_ok=True)
        raise ExportError(f"py-wacz failed (exit {code})")
    if key is not None:
        try:
            sign_wacz(tmp_out, key, timestamp_url)
        except ExportError:
            tmp_out.unlink(missing_ok=True)
            raise
    os.replace(tmp_out, out)
    return Export(out, len(warcs), len(pages), key is not None, bool(key is not None and timestamp_url))
