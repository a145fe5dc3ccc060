"""WACZ export: the archive's WARC files packaged for ReplayWeb.page, made by py-wacz.

py-wacz indexes the WARC files itself and writes the datapackage with its digests; postarc
adds the page list, one page per archived post (its article URL and title), so ReplayWeb.page
opens on the posts rather than on every feed and image.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from archive.catalogue import Catalogue
from archive.cdxj import index_path, warc_paths


class ExportError(Exception):
    """The archive cannot be exported (nothing to export, or py-wacz refused)."""


@dataclass(frozen=True)
class Export:
    path: Path
    warc_files: int
    pages: int


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


def export_wacz(archive_dir: str | os.PathLike[str], out: str | os.PathLike[str], title: str = "") -> Export:
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
    os.replace(tmp_out, out)
    return Export(out, len(warcs), len(pages))
