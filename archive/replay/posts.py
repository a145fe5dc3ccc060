"""The posts: the listing (``/``, filtered and searched) and each post rendered (``/posts/``).

A post's page shows its Markdown rendered with markdown-it, its links into the archive, and
the captures it was made from; the files beside it (images, the ``.md`` itself) are served as
they are, sandboxed like captures, since they came from the web.
"""

from __future__ import annotations

import mimetypes
import re
from functools import partial
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from archive.catalogue import VersionRow
from archive.frontmatter import read_front_matter
from archive.replay.captures import CaptureReplay
from archive.replay.index import Capture
from archive.replay.library import BadQuery, Filters, Library
from archive.replay.ranges import ranged, read_file_range
from archive.replay.records import NotArchived
from archive.replay.rewrite import archive_path, is_http_url, rewrite_fragment
from archive.replay.search import SearchIndex
from archive.replay.ui import Templates
from archive.replay.wsgi import ARCHIVE_CSP, HttpError, Request, Response, unquote_path
from archive.versions import read_markdown, word_diff

SEARCH_RESYNC = 30  # seconds between two search index syncs triggered by requests


def _is_file(path: Path) -> bool:
    """``Path.is_file`` that also says no to names the file system refuses (ENAMETOOLONG…)."""
    try:
        return path.is_file()
    except OSError:
        return False


class PostPages:
    """The posts of one archive, as the catalogue lists them and as ``posts/`` holds them."""

    def __init__(self, archive: Path, library: Library, search: SearchIndex, captures: CaptureReplay,
                 templates: Templates) -> None:
        self.posts_dir = archive / "posts"
        self.library = library
        self.search = search
        self.captures = captures
        self.templates = templates
        self.markdown = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

    def home(self, request: Request) -> Response:
        try:
            filters = Filters.from_params(request.params())
        except BadQuery as exc:
            raise HttpError(400, "Bad query", str(exc)) from exc
        if filters.q:
            self.search.sync_in_background(max_age=SEARCH_RESYNC)
        listing = self.library.listing(filters)
        sources, categories = self.library.choices()
        return self.templates.render("index.html", listing=listing, filters=filters, sources=sources,
                                     categories=categories, search_progress=self.search.progress)

    def _inside_posts(self, relative: str) -> Path:
        """``posts/<relative>``; anything that could leave ``posts/`` is refused."""
        parts = relative.split("/")
        if any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
            raise HttpError(404, "Not found", "No such file in the archive.")
        root = self.posts_dir.resolve()
        target = (root / relative).resolve()  # follows symlinks: a link out of posts/ is refused too
        if not target.is_relative_to(root):
            raise HttpError(404, "Not found", "No such file in the archive.")
        return target

    def post_or_file(self, request: Request, rest: str) -> Response:
        relative = unquote_path(rest)
        md = self._inside_posts(relative + ".md") if not relative.endswith(".md") else None
        if md is not None and _is_file(md):
            return self.post_page(relative, md, request.params())
        target = self._inside_posts(relative)
        if not _is_file(target):
            raise HttpError(404, "Not found", "No such post or file in the archive.")
        ctype = "text/markdown; charset=utf-8" if target.suffix == ".md" else (
            mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        # Files beside posts came from the web (an SVG can hold scripts): sandboxed like captures.
        # Streamed, ranges too: an enclosure beside its post may be hundreds of MB, and players seek.
        return ranged(request, target.stat().st_size, partial(read_file_range, target), ctype, [], ARCHIVE_CSP)

    def _version_body(self, version: VersionRow) -> str | None:
        if not version.markdown_filename or version.markdown_offset is None:
            return None
        try:
            markdown = read_markdown(self.posts_dir.parent, version.markdown_filename, version.markdown_offset)
        except (OSError, StopIteration, UnicodeDecodeError):
            return None
        return read_front_matter(markdown)[1]

    def versions(self, row: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        """The post's versions, each linked to its capture, and the diff of two (``?from=&to=``)."""
        versions = self.library.versions(row["source"], row["guid"]) if row else []
        listed = [{"n": n, "captured": v.captured, "hash": v.content_hash, "title": v.title,
                   "href": archive_path(re.sub(r"\D", "", v.capture_date or "")[:14], v.capture_uri)
                   if v.capture_uri and v.capture_date else None}
                  for n, v in enumerate(versions, 1)]
        view: dict[str, Any] = {"list": listed, "diff": None}
        if len(versions) < 2:
            return view
        try:
            new = int(params.get("to") or len(versions))
            old = int(params.get("from") or new - 1)
        except ValueError:
            raise HttpError(400, "Bad query", "from and to are version numbers") from None
        if not (1 <= old <= len(versions) and 1 <= new <= len(versions)):
            raise HttpError(400, "Bad query", f"versions are numbered 1 to {len(versions)}")
        a, b = (self._version_body(versions[n - 1]) for n in (old, new))
        view.update({"old": old, "new": new, "readable": a is not None and b is not None,
                     "title_diff": word_diff(versions[old - 1].title, versions[new - 1].title),
                     "diff": word_diff(a, b) if a is not None and b is not None else []})
        return view

    def post_page(self, path: str, md: Path, params: dict[str, str] | None = None) -> Response:
        meta, body = read_front_matter(md.read_bytes().decode("utf-8", "replace"))
        row = self.library.post(path) or {}
        link = str(meta.get("link") or row.get("link") or "")
        archived = str(row.get("updated") or row.get("archived") or meta.get("archived") or "")
        stamp = re.sub(r"\D", "", archived)[:14].ljust(14, "0") if archived else "99991231235959"
        base = link if is_http_url(link) else "http://invalid/"
        body_html = rewrite_fragment(self.markdown.render(body), base, stamp)
        captures: list[Capture] = []
        original: Capture | None = None
        if self.captures.index_usable():
            captures = self.captures.index.captures(link) if is_http_url(link) else []
            original = self._original_capture(row, [link, str(meta.get("source") or "")])
        return self.templates.render("post.html", path=path, meta=meta, row=row, body_html=body_html, link=link,
                                     captures=captures, original=original, name=Path(path).name,
                                     versions=self.versions(row, params or {}))

    def _original_capture(self, row: dict[str, Any], urls: list[str]) -> Capture | None:
        """The capture the post was made from: the record the catalogue names, among the
        captures of its link and its feed in the WARC file the catalogue names."""
        record_id, filename = row.get("record_id"), row.get("warc_filename")
        if not record_id or not filename:
            return None
        for url in urls:
            if not is_http_url(url):
                continue
            for capture in self.captures.index.captures(url):
                if capture.filename == filename:
                    try:
                        if self.captures.reader.record_id(capture) == record_id:
                            return capture
                    except NotArchived:
                        continue
        return None
