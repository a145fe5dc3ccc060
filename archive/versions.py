"""Versions of a post: what counts as a change, and a word-level diff between two versions.

A change is a change of the title or of the extracted body's text (and the images it shows),
never of the page bytes: a page whose visit counter or clock ticks keeps one version. Every
version's Markdown is in the WARC files (its ``conversion`` record), so an earlier version is
read back from there, its images shared with the later ones (image files are named by URL).

The diff splits Han, kana and Hangul text into characters and other text into words, so a
changed word in Chinese marks that word, not the whole sentence between two spaces;
``difflib`` aligns the tokens.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lxml.html
from warcio.archiveiterator import ArchiveIterator

#: The hash of a version archived before versions were recorded (its extracted body is gone).
UNKNOWN_HASH = "unknown"

#: One token: a CJK character, a run of letters/digits, a run of spaces, or one other character.
_TOKEN = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]|[^\W_]+|\s+|.",
                    re.UNICODE | re.DOTALL)


def body_text(html: str) -> str:
    """The text a reader sees in a body, spaces collapsed; the images' URLs after it."""
    if not html.strip():
        return ""
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    images = [img.get("src", "") for img in root.iter("img")]
    return " ".join(root.text_content().split() + images)


def version_hash(title: str, text: str) -> str:
    """What identifies a version: the title and the extracted body's ``body_text``."""
    h = hashlib.sha256()
    for part in (" ".join(title.split()), text):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """``(op, text)`` runs: ``=`` kept, ``-`` deleted, ``+`` inserted; joined, each side reads back."""
    a, b = tokens(old), tokens(new)
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("=", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("-", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("+", "".join(b[j1:j2])))
    return out


def changes(diff: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """The runs of a diff that are not kept."""
    return ((op, text) for op, text in diff if op != "=")


def plain_diff(diff: list[tuple[str, str]]) -> str:
    """A diff for a terminal, as ``git diff --word-diff`` writes it: ``[-old-]{+new+}``."""
    marks = {"=": ("", ""), "-": ("[-", "-]"), "+": ("{+", "+}")}
    return "".join(marks[op][0] + text + marks[op][1] for op, text in diff)


def read_markdown(archive_dir: str | os.PathLike[str], filename: str, offset: int) -> str:
    """A version's Markdown: the ``conversion`` record at ``offset`` of WARC file ``filename``."""
    path = Path(archive_dir) / "warc" / Path(filename).name
    with path.open("rb") as f:
        f.seek(offset)
        record = next(iter(ArchiveIterator(f)))
        return record.content_stream().read().decode("utf-8")


@dataclass(frozen=True)
class Located:
    """Where a post's capture and its Markdown are, found by reading a WARC file."""

    capture_uri: str | None = None
    capture_date: str | None = None
    markdown_offset: int | None = None


def locate(archive_dir: str | os.PathLike[str], filename: str, record_id: str) -> Located:
    """The capture ``record_id`` in WARC file ``filename`` and the ``conversion`` citing it: for
    posts archived before the catalogue kept versions (read once, when such a post changes)."""
    uri = date = offset = None
    path = Path(archive_dir) / "warc" / Path(filename).name
    try:
        with path.open("rb") as f:
            records = ArchiveIterator(f)
            for record in records:
                headers = record.rec_headers
                if headers.get_header("WARC-Record-ID") == record_id:
                    uri, date = headers.get_header("WARC-Target-URI"), headers.get_header("WARC-Date")
                elif record.rec_type == "conversion" and headers.get_header("WARC-Refers-To") == record_id:
                    offset = records.get_record_offset()
    except OSError:
        pass
    return Located(uri, date, offset)
