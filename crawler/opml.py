"""OPML subscription lists (what feed readers import and export) to and from sources.

Read with lxml, entities unresolved and no network: an OPML file is someone else's XML.
Written as OPML 2.0 (http://opml.org/spec2.opml), one folder per first category.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

from lxml import etree

from crawler.sources import Source, SourcesFile


class OpmlError(ValueError):
    """An OPML file that cannot be read; the message says why."""


@dataclass
class Outline:
    """One subscription of an OPML file: its feed URL and the folders it sits in, outer first."""

    url: str
    title: str
    site: str | None = None
    folders: list[str] = field(default_factory=list)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def read_opml(path: Path) -> list[Outline]:
    """Every outline with an ``xmlUrl``, in document order, with its folders."""
    try:
        root = etree.parse(str(path), _parser()).getroot()
    except OSError as exc:
        raise OpmlError(f"cannot read: {exc}") from exc
    except etree.XMLSyntaxError as exc:
        raise OpmlError(f"not well-formed XML: {exc}") from exc
    if etree.QName(root).localname != "opml":
        raise OpmlError(f"root element is <{etree.QName(root).localname}>, not <opml>")
    body = root.find("body")
    if body is None:
        raise OpmlError("no <body> element")
    found: list[Outline] = []

    def walk(node: etree._Element, folders: list[str]) -> None:
        for child in node:
            if not isinstance(child.tag, str) or etree.QName(child).localname != "outline":
                continue
            label = (child.get("title") or child.get("text") or "").strip()
            url = (child.get("xmlUrl") or child.get("xmlurl") or "").strip()
            if url:
                found.append(Outline(url=url, title=label, site=(child.get("htmlUrl") or "").strip() or None,
                                     folders=list(folders)))
            walk(child, folders + [label] if label and not url else folders)

    walk(body, [])
    if not found:
        raise OpmlError("no outline with an xmlUrl (no feed to add)")
    return found


def slug_name(title: str, url: str, taken: set[str]) -> str:
    """A source name (``[\\w.-]+``) from the outline's title, else its URL's host; unique in ``taken``."""
    text = unicodedata.normalize("NFKC", title or re.sub(r"^\w+://", "", url)).lower()
    base = re.sub(r"[^\w.]+", "-", text).strip("-.")[:60].strip("-.") or "feed"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def write_opml(config: SourcesFile, title: str = "postarc sources") -> bytes:
    """OPML 2.0 of the sources: a folder per first category, feeds without one at the top."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(datetime.now(timezone.utc), usegmt=True)
    body = etree.SubElement(root, "body")
    folders: dict[str, etree._Element] = {}
    for source in config.sources:
        parent = body
        if source.categories:
            top = source.categories[0]
            if top not in folders:
                folders[top] = etree.SubElement(body, "outline", text=top, title=top)
            parent = folders[top]
        etree.SubElement(parent, "outline", _outline_attrs(config, source))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _outline_attrs(config: SourcesFile, source: Source) -> dict[str, str]:
    attrs = {"type": "rss", "text": source.name, "title": source.name, "xmlUrl": config.feed_url(source)}
    if source.site:
        attrs["htmlUrl"] = source.site
    return attrs
