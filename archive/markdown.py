"""Markdown posts: safe paths, atomic files, the body (front matter: ``archive.frontmatter``).

Paths are derived from the post (never taken from it), so nothing can leave ``posts/``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import socket
import tempfile
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from archive.enclosures import player_html
from archive.frontmatter import render_post

SLUG_MAX = 48
# C0/C1 controls (except tab and newline, handled apart), DEL, bidi overrides and isolates,
# zero-width and BOM characters: invisible, and dangerous in titles and file names.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_NOT_SLUG = re.compile(r"[^\w]+", re.UNICODE)
TEMP_PREFIX = ".postarc-tmp-"
COPY_PIECE = 1 << 20  # a file copied by atomic_write goes in pieces of this size
_BEFORE_BLANK_LINE = re.compile(r"\n(?=[ \t]*\n)")
_HOST = socket.gethostname().replace("-", "_") or "host"  # as in WARC file names: no "-" inside


def clean_text(text: str) -> str:
    """A single-line, printable version of a title or author."""
    text = _INVISIBLE.sub("", text or "")
    text = re.sub(r"\s+", " ", text).strip()
    # Lone surrogates (from broken feeds) cannot be encoded as UTF-8.
    return text.encode("utf-8", "replace").decode("utf-8")


def slugify(title: str, key: str) -> str:
    """``<words-of-the-title>-<8 hex of key>``: readable, unique per key, safe on every OS.

    The hash suffix keeps two posts with one title apart and rules out reserved names
    (``CON``, ``NUL``…); only word characters and ``-`` survive, so no ``/``, ``\\`` or ``..``.
    """
    words = unicodedata.normalize("NFKC", clean_text(title)).lower()
    words = _NOT_SLUG.sub("-", words).strip("-_")[:SLUG_MAX].strip("-_")
    digest = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{words}-{digest}" if words else f"post-{digest}"


def post_path(date: datetime, slug: str) -> str:
    """``YYYY/MM/slug`` (without ``.md``), from the post's UTC date."""
    date = date.astimezone(timezone.utc)
    return f"{date:%Y}/{date:%m}/{slug}"


def inside(root: Path, relative: str) -> Path:
    """``root/relative``, refusing any path that would resolve outside ``root``."""
    real_root = _real_root(root)
    target = (real_root / relative).resolve()  # each time: a symlink on the way may lead out
    # Both are resolved, so a string prefix is the containment test (Path.parents builds a Path
    # per level); joining "" gives the root its trailing separator, and "/" keeps its one.
    if target != real_root and not str(target).startswith(os.path.join(real_root, "")):
        raise ValueError(f"path {relative!r} leaves {real_root}")
    return target


@functools.lru_cache(maxsize=64)
def _real_root(root: Path) -> Path:
    """``root`` resolved once per process: a crawl writes thousands of files under one root,
    which does not move while it runs (a resolve is an ``lstat`` per path component)."""
    return root.resolve()


def atomic_write(path: Path, data: bytes | BinaryIO, *, fsync: bool = True) -> None:
    """Write ``data`` (bytes, or a file copied from where it stands, in pieces) to ``path`` so
    that readers see the old file or the new one, never half.

    A temp file in the same directory, then ``os.replace``; a killed writer leaves only a
    ``.postarc-tmp-<host>-<pid>-*`` file, which ``remove_stale_temp_files`` clears. The rename
    alone is what a kill needs; ``fsync`` also flushes the file before it, for power loss.
    """
    prefix = f"{TEMP_PREFIX}{_HOST}-{os.getpid()}-"
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    except (FileNotFoundError, NotADirectoryError):
        # The folder is made only when missing (a post's first file), not tried before each
        # write: a mkdir that finds it is a failing syscall and a stat.
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                shutil.copyfileobj(data, f, COPY_PIECE)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temp_files(root: Path) -> int:
    """Delete the temp files that dead writers left under ``root``; returns how many.

    A temp file names its writer's host and pid: one of this host whose process is gone is
    stale; another host's (a worker sharing the archive) or a live writer's is left alone.
    """
    count = 0
    for tmp in root.rglob(TEMP_PREFIX + "*"):
        host, _, pid = tmp.name[len(TEMP_PREFIX):].rpartition("-")[0].rpartition("-")
        if host == _HOST and pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)
            count += 1
    return count


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def render_body(html: str, form: str, image_map: dict[str, str]) -> str:
    """The post body (``html`` as ``archive.extract.choose_body`` made it): Markdown (default)
    or the cleaned HTML in a ``<div>``, as the seed has it."""
    # Imported here: this runs in the pool's workers, and the crawl process, which imports this
    # module for paths and atomic files, has no use for markdownify and BeautifulSoup (0.1-0.2 s).
    from archive.html import to_html
    from archive.markdown_converter import to_markdown

    if form == "html":
        # One HTML block to Markdown renderers: a blank line would end it, and what follows (the
        # text of a <pre>, say) would be read as Markdown, "[x](javascript:…)" becoming a link. The
        # newline before a blank line becomes a character reference, which renders the same.
        body = _BEFORE_BLANK_LINE.sub("&#10;", to_html(html, image_map=image_map).strip())
        return f"<div>\n{body}\n</div>\n" if body else "<div>\n</div>\n"
    return to_markdown(html, image_map=image_map, cleaned=True)  # choose_body's HTML: clean


def render_file(fields: dict[str, Any], html: str, form: str, image_map: dict[str, str]) -> str:
    """A post file: ``fields`` as front matter, then ``render_body``'s body and a player for each
    saved enclosure. Run in the pool's workers with the body: the front matter's YAML was most
    of the CPU the crawl process spent on a post's file."""
    body = render_body(html, form, image_map)
    if players := player_html(fields["enclosures"] or []):
        body = f"{body.rstrip()}\n\n{players}\n"
    return render_post(fields, body)
