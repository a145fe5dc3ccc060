"""A post's HTML fragment made clean, listed for images, and turned into Markdown.

Feed bodies are written for a browser running the aggregator's scripts: images hide their real
URL in lazy-loading attributes or behind a CORS proxy, code is laid out with ``<br>`` and
``&nbsp;``, Cloudflare masks e-mail addresses. Everything here first rebuilds the fragment as
a reader would see it (``_clean_tree``), so the HTML, the image list, the Markdown and the text
blocks all describe the same content.

Parsing is lxml.html; sanitising is lxml_html_clean's ``Cleaner`` (lxml.html.clean moved to
that package in lxml 5.2; we configure it rather than walk the tree ourselves); Markdown is
markdownify with a small subclass for what it lacks (``archive.markdown_converter``).
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

import lxml.html
from lxml import etree
from lxml.html import (HtmlComment, HtmlElement, HtmlElementClassLookup, HtmlEntity,
                       HtmlProcessingInstruction)
from lxml_html_clean import Cleaner


@dataclass(frozen=True)
class Image:
    url: str  # absolute origin URL
    alt: str


# Characters XML (hence lxml) refuses: C0 controls, surrogates, U+FFFE/U+FFFF.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DOCUMENT_START = re.compile(r"\s*(?:<!doctype|<\?xml|<html[\s>])", re.IGNORECASE)
_HTTP_URL = re.compile(r"https?://", re.IGNORECASE)
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_CF_EMAIL_PATH = "/cdn-cgi/l/email-protection"
_CF_EMAIL_HREF = re.compile(re.escape(_CF_EMAIL_PATH) + r"#([0-9a-f]+)", re.IGNORECASE)
_SRCSET_URL = re.compile(r"[\s,]*(\S+)")
_SRCSET_DESCRIPTOR = re.compile(r"([^,]*),?")
_SIZE_DESCRIPTOR = re.compile(r"(\d+(?:\.\d+)?)[wx]", re.IGNORECASE)
_ATTRIBUTE_NAME = re.compile(r"[^\W\d][\w.:-]*\Z")
_LEADING_INT = re.compile(r"\s*(\d+)")
_WHITESPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")
# Stands for a blank line inside code, so that collapsing blank lines leaves code alone. NUL
# cannot occur in the text: lxml refuses it and _parse_body removes it.
CODE_BLANK = "\x00"

# Most preferred first: srcset candidates beat these, these beat a plain src.
LAZY_SRC_ATTRS = ("data-original", "data-actualsrc", "data-src", "data-lazy-src", "data-original-src")
SRCSET_ATTRS = ("data-srcset", "srcset")

# Block-level elements: each starts a new text block and a new Markdown paragraph.
BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "div", "dl",
    "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "ul",
})

# referrerpolicy is kept: origins behind the unwrapped proxies often refuse a foreign Referer.
SAFE_ATTRS = frozenset({
    "href", "src", "alt", "title", "width", "height", "colspan", "rowspan", "start", "lang",
    "dir", "cite", "datetime", "referrerpolicy", "poster",
})

_CLEANER = Cleaner(
    style=True,  # <style> and style="" (inline_style follows style)
    safe_attrs=SAFE_ATTRS,  # drops class/id/data-*/on*: layout divs stay, but inert
    kill_tags={"noscript", "iframe", "svg", "template", "canvas", "base"},
)


def unwrap_proxy(url: str) -> str:
    """The origin URL behind a CORS/image proxy prefix, e.g. ``https://p.dev/?http://x/y.jpg``.

    A proxied URL carries the origin as its whole query string or as its ``url=`` parameter;
    nested proxies are unwrapped too. Any other URL comes back unchanged.
    """
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        return url
    _, has_query, query = url.partition("?")
    if not has_query:
        return url
    for candidate in (query, unquote(query)):
        if _HTTP_URL.match(candidate):
            return unwrap_proxy(candidate)
    for key, value in parse_qsl(query):
        if key == "url" and _HTTP_URL.match(value):
            return unwrap_proxy(value)
    return url


@dataclass(frozen=True)
class Fragment:
    """A cleaned fragment with what is read off it: its text blocks and images."""

    html: str
    texts: list[str]
    images: list[Image]


def clean_fragment(html: str, base_url: str | None = None, image_map: Mapping[str, str] | None = None) -> Fragment:
    """``to_html`` plus ``text_blocks`` and ``find_images`` of the result, from one parse."""
    body = _clean_tree(html, base_url)
    if body is None:
        return Fragment("", [], [])
    if image_map is not None:
        for img in body.iter("img"):
            img.set("src", mapped_url(img.get("src", ""), image_map))
    return Fragment(_inner_html(body), _texts_of(body), _images_of(body))


def clean_html(html: str, base_url: str | None = None) -> str:
    """The fragment as a reader sees it, safe to embed; '' when there is nothing."""
    body = _clean_tree(html, base_url)
    return "" if body is None else _inner_html(body)


def to_html(html: str, base_url: str | None = None, image_map: Mapping[str, str] | None = None) -> str:
    """``clean_html`` with each image's src replaced through ``image_map`` (local copies)."""
    body = _clean_tree(html, base_url)
    if body is None:
        return ""
    for img in body.iter("img"):
        img.set("src", mapped_url(img.get("src", ""), image_map))
    return _inner_html(body)


def find_images(html: str, base_url: str | None = None) -> list[Image]:
    """The http(s) images of the cleaned fragment in reading order, each URL once."""
    body = _clean_tree(html, base_url)
    return [] if body is None else _images_of(body)


def _images_of(body: HtmlElement) -> list[Image]:
    images: dict[str, Image] = {}
    for img in body.iter("img"):
        url = img.get("src", "")
        if _HTTP_URL.match(url) and url not in images:
            images[url] = Image(url=url, alt=normalise_space(img.get("alt", "")))
    return list(images.values())


def to_markdown(html: str, base_url: str | None = None, image_map: Mapping[str, str] | None = None) -> str:
    """GitHub-flavoured Markdown of the cleaned fragment; ``image_map`` relinks images."""
    body = _clean_tree(html, base_url)
    if body is None:
        return ""
    # The whole <body>: a bare fragment like "a.jpg" would make BeautifulSoup warn it looks like a path.
    source = lxml.html.tostring(body, encoding="unicode")
    try:
        # Imported here: markdownify and BeautifulSoup (0.13 s to import) are for the pool's
        # workers; the crawl's own process, which imports this module too, never needs them.
        from archive.markdown_converter import PostConverter

        markdown = PostConverter(image_map or {}).convert(source)
    except RecursionError:
        # markdownify recurses once per nesting level; soup nested hundreds deep keeps its text.
        markdown = "\n\n".join(text for text in map(normalise_space, _block_texts(body)) if text)
    return _tidy_markdown(markdown)


def text_blocks(html: str) -> list[str]:
    """The visible text of each block of the cleaned fragment, whitespace-normalised.

    Loose text between blocks and lines split by ``<br>`` count as blocks of their own, so
    that two bodies can be compared paragraph by paragraph whatever their markup.
    """
    body = _clean_tree(html, None)
    return [] if body is None else _texts_of(body)


def _texts_of(body: HtmlElement) -> list[str]:
    return [text for text in map(normalise_space, _block_texts(body)) if text]


# --- cleaning --------------------------------------------------------------------------------


def _clean_tree(html: str, base_url: str | None) -> HtmlElement | None:
    """Parse and clean; the returned <body> holds the clean fragment (None: nothing there)."""
    body = _parse_body(html)
    if body is None:
        return None
    _decode_cf_emails(body)
    settle_images(body)
    _drop_unnamable_attributes(body)
    _CLEANER(body)
    if base_url:
        body.make_links_absolute(base_url, resolve_base_href=False, handle_failures="ignore")
    for img in body.iter("img"):
        img.set("src", unwrap_proxy(img.get("src", "")))
    normalise_pre(body)
    return body


def parse_document(html: str) -> HtmlElement | None:
    """The <html> root of a whole document, or of a fragment wrapped in one (None: nothing there)."""
    text = _NOT_XML_CHAR.sub("", html or "")
    if not text.strip():
        return None
    if not _DOCUMENT_START.match(text):
        # Without the wrapper libxml2 would put leading text into an invented <p>.
        text = f"<html><body>{text}</body></html>"
    # Bytes with an explicit encoding: a str with an XML encoding declaration is refused, and a
    # <meta charset> inside the fragment must not re-decode it. One parser per call: thread-safe.
    # huge_tree: past 256 levels (unclosed <font>s suffice) libxml2 would silently drop the rest.
    parser = _HTMLParser(encoding="utf-8", huge_tree=True)
    try:
        root = lxml.html.document_fromstring(text.encode("utf-8"), parser=parser)
    except etree.ParserError:  # "Document is empty": only comments or the like
        return None
    _drop_unnamable_elements(root)
    return root


class _HTMLParser(etree.HTMLParser):
    """lxml.html's parser with the same element classes, looked up in C.

    lxml.html.HTMLParser asks a Python method for the class of every element object it hands
    out, half the time of walking a page's tree. A namespace lookup with the same
    table (the HTML parser lowercases tag names, as that method does) gives the same classes.
    """

    _lookup = etree.ElementNamespaceClassLookup(etree.ElementDefaultClassLookup(
        element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity))
    _lookup.get_namespace(None).update(HtmlElementClassLookup()._element_classes)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.set_element_class_lookup(self._lookup)


def _parse_body(html: str) -> HtmlElement | None:
    """The <body> of a fragment or of a whole document (trafilatura returns those)."""
    root = parse_document(html)
    return None if root is None else root.find("body")


def _inner_html(el: HtmlElement) -> str:
    children = "".join(lxml.html.tostring(child, encoding="unicode") for child in el)
    return (html_lib.escape(el.text or "", quote=False) + children).strip()


def _drop_unnamable_elements(root: HtmlElement) -> None:
    """libxml2 makes elements of broken tags such as ``<d;>``, which XML tools cannot read back
    once written (trafilatura re-parses its output and raises): such an element gives way to its
    content."""
    for el in [el for el in root.iter(etree.Element) if not _ATTRIBUTE_NAME.match(el.tag)]:
        el.drop_tag()


def _drop_unnamable_attributes(root: HtmlElement) -> None:
    """libxml2 accepts attribute names such as '0' or '{' that lxml then refuses to delete."""
    for el in root.iter(etree.Element):
        if not all(_ATTRIBUTE_NAME.match(name) for name in el.attrib):
            named = {name: value for name, value in el.attrib.items() if _ATTRIBUTE_NAME.match(name)}
            el.attrib.clear()
            el.attrib.update(named)


def _decode_cf_emails(root: HtmlElement) -> None:
    """Undo Cloudflare's e-mail masking ('[email protected]' + XOR-encoded address)."""
    for a in root.iter("a"):
        match = _CF_EMAIL_HREF.search(a.get("href", ""))
        email = _decode_cf_email(match.group(1)) if match else None
        if email:
            a.set("href", "mailto:" + email)
    for el in root.findall(".//*[@data-cfemail]"):
        email = _decode_cf_email(el.get("data-cfemail", ""))
        if email is None:
            continue
        del el[:]
        el.text = email
        if el.tag != "a":
            el.drop_tag()
        elif _CF_EMAIL_PATH in el.get("href", ""):
            el.set("href", "mailto:" + email)


def _decode_cf_email(hex_data: str) -> str | None:
    """The first byte is the XOR key of the others; None if it does not decode to text."""
    try:
        data = bytes.fromhex(hex_data)
        email = bytes(b ^ data[0] for b in data[1:]).decode("utf-8")
    except (ValueError, IndexError):
        return None
    return email if email and not _NOT_XML_CHAR.search(email) else None


def settle_images(root: HtmlElement) -> None:
    """Give every <img> its real src; drop tracking pixels, source-less images, <picture>."""
    for img in list(root.iter("img")):
        src = _real_src(img)
        if src is None or _is_pixel(img):
            img.drop_tree()
        else:
            img.set("src", src)
    for picture in list(root.iter("picture")):
        for source in list(picture.iter("source")):
            source.drop_tag()  # libxml2 does not know <source> is void: it holds what follows
        picture.drop_tag()


def _real_src(img: HtmlElement) -> str | None:
    """Largest srcset candidate, else a lazy-loading attribute, else src; data: URIs last."""
    srcsets = [img.get(attr) for attr in SRCSET_ATTRS]
    picture = next(img.iterancestors("picture"), None)
    if picture is not None:
        srcsets += [source.get(attr) for source in picture.iter("source") for attr in SRCSET_ATTRS]
    candidates = [_largest_candidate(srcsets), *(img.get(attr) for attr in LAZY_SRC_ATTRS), img.get("src")]
    urls = [url.strip() for url in candidates if url and url.strip()]
    remote = [url for url in urls if not url.lower().startswith("data:")]
    return (remote or urls or [None])[0]


def _largest_candidate(srcsets: Iterable[str | None]) -> str | None:
    candidates = [candidate for srcset in srcsets if srcset for candidate in _srcset_candidates(srcset)]
    return max(candidates)[1] if candidates else None


def _srcset_candidates(srcset: str) -> Iterator[tuple[float, str]]:
    """(size, url) per candidate, parsed as the HTML spec does: URLs may contain commas."""
    pos = 0
    while match := _SRCSET_URL.match(srcset, pos):
        url, pos = match.group(1), match.end()
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            described = _SRCSET_DESCRIPTOR.match(srcset, pos)
            descriptor, pos = described.group(1), described.end()
        size = _SIZE_DESCRIPTOR.search(descriptor)
        if url:
            yield (float(size.group(1)) if size else 1.0), url


def _is_pixel(img: HtmlElement) -> bool:
    """A 1x1 (or 0-wide) image is a tracker, not content."""
    for attr in ("width", "height"):
        size = _LEADING_INT.match(img.get(attr, ""))
        if size and int(size.group(1)) <= 1:
            return True
    return False


def normalise_pre(root: HtmlElement) -> None:
    """Code laid out as 'line<br>' (often followed by a newline) and &nbsp; becomes plain text;
    nested <pre>s (trafilatura writes <pre><pre>) become one."""
    for pre in list(root.iter("pre")):
        if next(pre.iterancestors("pre"), None) is not None:
            pre.drop_tag()
    for pre in root.iter("pre"):
        for br in list(pre.iter("br")):
            if not (br.tail or "").startswith(("\n", "\r\n")):
                br.tail = "\n" + (br.tail or "")
            br.drop_tag()
        for el in pre.iter():
            el.text = el.text and el.text.replace("\xa0", " ")
            if el is not pre:
                el.tail = el.tail and el.tail.replace("\xa0", " ")


def _block_texts(root: HtmlElement) -> Iterator[str]:
    """Raw text of each run between block boundaries and line breaks, in document order."""
    parts: list[str] = []
    for event, el in etree.iterwalk(root, events=("start", "end")):
        if el.tag in BLOCK_TAGS or (el.tag == "br" and event == "start"):
            yield "".join(parts)
            parts.clear()
        if event == "start":
            parts.append(el.text or "")
        elif el is not root:
            parts.append(el.tail or "")
    yield "".join(parts)


def normalise_space(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def mapped_url(url: str, image_map: Mapping[str, str] | None) -> str:
    return image_map.get(url, url) if image_map else url


def _tidy_markdown(markdown: str) -> str:
    """No trailing spaces, one blank line between blocks (code keeps up to two), one final newline.

    Split on "\\n" only: str.splitlines() would also break lines at U+2028, U+0085 and the like.
    """
    lines = [line.rstrip() for line in markdown.split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).replace(CODE_BLANK, "")
    text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    return text + "\n" if text else ""
