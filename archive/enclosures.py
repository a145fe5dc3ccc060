"""A feed entry's enclosures: podcast audio, video, attached files.

RSS ``<enclosure>`` and Atom ``<link rel="enclosure">`` (feedparser's ``enclosures``), Media RSS
``<media:content>`` (``media_content``) and JSON Feed ``attachments``, one list in feed order,
each URL once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
