"""A feed entry's enclosures: podcast audio, video, attached files.

RSS ``<enclosure>`` and Atom ``<link rel="enclosure">`` (feedparser's ``enclosures``), Media RSS
``<media:content>`` (``media_content``) and JSON Feed ``attachments``, one list in feed order,
each URL once. With ``enclosures: local`` the files are saved beside the post:
``local_name`` names them, ``player_html`` shows them in the post.
"""

from __future__ import annotations

import html
import mimetypes
import posixpath
import re
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote, unquote, urlsplit

from warcio.bufferedreaders import BufferedReader

from archive.warc.compat import install_brotli


@dataclass(frozen=True)
class Enclosure:
    url: str
    type: str | None = None
    length: int | None = None  # bytes, as the feed says (often 0 or missing)
    title: str | None = None

    def front_matter(self) -> dict[str, Any]:
        """The ``enclosures:`` entry of a post: the keys the feed gave."""
        out: dict[str, Any] = {"url": self.url}
        for key in ("type", "length", "title"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def _length(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace") or None


def _unique(found: list[Enclosure]) -> list[Enclosure]:
    seen: set[str] = set()
    out = []
    for enclosure in found:
        if enclosure.url.startswith(("http://", "https://")) and enclosure.url not in seen:
            seen.add(enclosure.url)
            out.append(enclosure)
    return out


def from_feedparser(entry: Any) -> list[Enclosure]:
    """Enclosures of a feedparser entry (RSS, Atom, Media RSS)."""
    found = []
    for link in entry.get("enclosures") or []:
        url = _text(link.get("href") or link.get("url"))
        if url:
            found.append(Enclosure(url, _text(link.get("type")), _length(link.get("length")), _text(link.get("title"))))
    for media in entry.get("media_content") or []:
        url = _text(media.get("url"))
        if url:
            found.append(Enclosure(url, _text(media.get("type")), _length(media.get("filesize") or media.get("fileSize")),
                                   _text(media.get("title"))))
    return _unique(found)


def from_json_feed(item: dict[str, Any]) -> list[Enclosure]:
    """Enclosures of a JSON Feed item (``attachments``: url, mime_type, title, size_in_bytes)."""
    found = []
    for attachment in item.get("attachments") or []:
        if isinstance(attachment, dict) and isinstance(attachment.get("url"), str):
            found.append(Enclosure(attachment["url"].strip(), _text(attachment.get("mime_type")),
                                   _length(attachment.get("size_in_bytes")), _text(attachment.get("title"))))
    return _unique(found)


# -- enclosures: local ------------------------------------------------------------------------

#: Types a file beside a post may be saved as (by extension): media and documents that run
#: nothing. Anything else (HTML, SVG, scripts) is saved as ``.bin``: Hexo publishes the post's
#: folder on the blog's origin, where an ``.html`` file would run its scripts.
_SAFE_TYPES = frozenset({"application/pdf", "application/zip", "application/epub+zip", "application/ogg",
                         "application/octet-stream", "text/plain"})
_PREFERRED_EXT = {"audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/x-m4a": ".m4a", "video/mp4": ".mp4",
                  "audio/ogg": ".ogg", "audio/wav": ".wav", "audio/x-wav": ".wav", "image/jpeg": ".jpg",
                  "application/octet-stream": ".bin", "text/plain": ".txt"}
_NOT_NAME = re.compile(r"[^\w.-]+", re.ASCII)
NAME_MAX = 80


def _safe(mime: str) -> bool:
    return mime.startswith(("audio/", "video/")) or mime in _SAFE_TYPES or (
        mime.startswith("image/") and mime != "image/svg+xml")


def local_name(url: str, content_type: str, taken: set[str]) -> str:
    """A file name for an enclosure saved beside its post: the URL's own name (``ep12.mp3``), made
    of ``[A-Za-z0-9_.-]``, with an extension its served type allows, unique among ``taken``."""
    stem, ext = posixpath.splitext(unquote(posixpath.basename(urlsplit(url).path)))
    stem = _NOT_NAME.sub("-", stem).strip(".-")[:NAME_MAX] or "enclosure"
    served = content_type.split(";", 1)[0].strip().lower()
    by_url = mimetypes.guess_type("x" + ext.lower())[0] or ""
    if _safe(by_url) and (served in ("", "application/octet-stream") or by_url.split("/")[0] == served.split("/")[0]):
        ext = ext.lower()
    elif _safe(served):
        ext = _PREFERRED_EXT.get(served) or mimetypes.guess_extension(served) or ".bin"
    else:
        ext = ".bin"
    name, n = stem + ext, 2
    while name in taken:
        name, n = f"{stem}-{n}{ext}", n + 1
    return name


def player_html(entries: list[dict[str, Any]]) -> str:
    """What a reader of the post sees of its saved enclosures: an ``<audio>`` or ``<video>`` player
    with the file's link, or the link alone. Each is a ``<figure>`` block, which Markdown renderers
    (CommonMark's HTML blocks: marked, markdown-it) pass through whole."""
    blocks = []
    for entry in entries:
        if not entry.get("file"):
            continue
        src = html.escape(quote(entry["file"]))
        label = html.escape(entry.get("title") or posixpath.basename(entry["file"]))
        kind = (mimetypes.guess_type(entry["file"])[0] or "").split("/")[0]
        media = f'<{kind} controls preload="metadata" src="{src}"></{kind}>' if kind in ("audio", "video") else ""
        blocks.append(f'<figure class="enclosure">{media}<figcaption><a href="{src}">{label}</a></figcaption></figure>')
    return "\n\n".join(blocks)


class UnsupportedEncoding(ValueError):
    """A ``Content-Encoding`` no reader here undoes (zstd, or several codings)."""


def decoded(stream: BinaryIO, content_encoding: str) -> BinaryIO:
    """``stream`` with its ``Content-Encoding`` undone as it is read (warcio's decoders: gzip,
    deflate, br), for a server that compressed a file though asked for ``identity``."""
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return stream
    coding = {"x-gzip": "gzip"}.get(coding, coding)
    install_brotli()
    if coding not in BufferedReader.get_supported_decompressors():
        raise UnsupportedEncoding(f"content-encoding {content_encoding!r}")
    return BufferedReader(stream, decomp_type=coding)  # type: ignore[return-value]
