"""A post's HTML fragment made clean, listed for images, and turned into Markdown.

Feed bodies are written for a browser running the aggregator's scripts: images hide their real
URL in lazy-loading attributes or behind a CORS proxy, code is laid out with ``<br>`` and
``&nbsp;``, Cloudflare masks e-mail addresses. Everything here first rebuilds the fragment as
a reader would see it (``clean_tree``), so the HTML, the image list, the Markdown and the text
blocks all describe the same content.

Parsing is an HTML5 parser (lexbor, through selectolax), as browsers read the markup, whose
tree reaches lxml's by its serialization read back by libxml2 (whole pages) or copied node by
node (fragments); sanitising is lxml_html_clean's ``Cleaner`` (lxml.html.clean moved to
that package in lxml 5.2; we configure it rather than walk the tree ourselves); Markdown is
markdownify with a subclass for what it lacks, in ``archive.markdown_converter`` (which imports
this module; this one does not import it).
"""

from __future__ import annotations

import html as html_lib
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

import lxml.html
from lxml import etree
from lxml.html import (HtmlComment, HtmlElement, HtmlElementClassLookup, HtmlEntity,
                       HtmlProcessingInstruction)
from lxml_html_clean import Cleaner
from selectolax.lexbor import LexborHTMLParser, LexborNode


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
_BLANK_LINES = re.compile(r"\n{3,}")
# Stands for a blank line inside code, so that collapsing blank lines leaves code alone. NUL
# cannot occur in the text: lxml refuses it and parse_document removes it.
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
    # Image URL -> the URL the source named for it, where the two differ (a CORS/image proxy
    # unwrapped): the WARC also records the image under the name (pipelines.aliases).
    named: dict[str, str] = field(default_factory=dict)


def clean_fragment(html: str, base_url: str | None = None, image_map: Mapping[str, str] | None = None) -> Fragment:
    """``to_html`` plus ``text_blocks`` and ``find_images`` of the result, from one parse."""
    named: dict[str, str] = {}
    body = clean_tree(html, base_url, named)
    if body is None:
        return Fragment("", [], [])
    if image_map is not None:
        for img in body.iter("img"):
            img.set("src", mapped_url(img.get("src", ""), image_map))
    images = _images_of(body)
    return Fragment(_inner_html(body), _texts_of(body), images,
                    {img.url: named[img.url] for img in images if img.url in named})


def clean_html(html: str, base_url: str | None = None) -> str:
    """The fragment as a reader sees it, safe to embed; '' when there is nothing."""
    body = clean_tree(html, base_url)
    return "" if body is None else _inner_html(body)


def to_html(html: str, base_url: str | None = None, image_map: Mapping[str, str] | None = None) -> str:
    """``clean_html`` with each image's src replaced through ``image_map`` (local copies)."""
    body = clean_tree(html, base_url)
    if body is None:
        return ""
    for img in body.iter("img"):
        img.set("src", mapped_url(img.get("src", ""), image_map))
    return _inner_html(body)


def find_images(html: str, base_url: str | None = None) -> list[Image]:
    """The http(s) images of the cleaned fragment in reading order, each URL once."""
    body = clean_tree(html, base_url)
    return [] if body is None else _images_of(body)


def _images_of(body: HtmlElement) -> list[Image]:
    images: dict[str, Image] = {}
    for img in body.iter("img"):
        url = img.get("src", "")
        if _HTTP_URL.match(url) and url not in images:
            images[url] = Image(url=url, alt=normalise_space(img.get("alt", "")))
    return list(images.values())


def text_blocks(html: str) -> list[str]:
    """The visible text of each block of the cleaned fragment, whitespace-normalised.

    Loose text between blocks and lines split by ``<br>`` count as blocks of their own, so
    that two bodies can be compared paragraph by paragraph whatever their markup.
    """
    body = clean_tree(html, None)
    return [] if body is None else _texts_of(body)


def _texts_of(body: HtmlElement) -> list[str]:
    return [text for text in map(normalise_space, block_texts_of(body)) if text]


# --- cleaning --------------------------------------------------------------------------------


def clean_tree(html: str, base_url: str | None, named: dict[str, str] | None = None) -> HtmlElement | None:
    """Parse and clean; the returned <body> holds the clean fragment (None: nothing there).

    ``named`` gains unwrapped image URL -> the proxied URL the HTML named."""
    body = parse_body(html)
    if body is None:
        return None
    _decode_cf_emails(body)
    settle_images(body)
    _drop_hidden(body)
    _CLEANER(body)
    # Only a web page's URL is a base: the cleaner has taken javascript: links out, and resolving
    # against an entry link of "javascript:x" would make every relative link one again.
    if base_url and _HTTP_URL.match(base_url):
        body.make_links_absolute(base_url, resolve_base_href=False, handle_failures="ignore")
    for img in body.iter("img"):
        src = img.get("src", "")
        origin = unwrap_proxy(src)
        img.set("src", origin)
        if named is not None and origin != src and _HTTP_URL.match(src):
            named.setdefault(origin, src)
    normalise_pre(body)
    return body


def parse_document(html: str) -> HtmlElement | None:
    """The <html> root of a whole document, or of a fragment wrapped in one (None: nothing there).

    Read as a browser reads it (the HTML5 parsing algorithm, lexbor through selectolax): a "<"
    that opens no tag stays text ("a < b", "new Map<>()"), a stray "</p>" makes an empty
    paragraph, misnested and unclosed tags are repaired as browsers repair them. A fragment is
    parsed as a page's body would parse it (context <body>, standards mode). The result is an
    lxml tree, which the cleaner and trafilatura take, without comments and processing
    instructions (their tails stay).
    """
    return parse_sized(html)[0]


def parse_sized(html: str) -> tuple[HtmlElement | None, int]:
    """``parse_document``, and how many elements the tree holds."""
    text = html or ""
    markup: str | bytes | None = _xml_utf8(text)
    if markup is None:
        text = markup = _NOT_XML_CHAR.sub("", text)
    if not text or text.isspace():
        return None, 0
    if _DOCUMENT_START.match(text):
        source = LexborHTMLParser(markup)
        standards = _STANDARDS_DOCTYPE.match(text) is not None
        otherwise = ((_MAY_READ_OTHERWISE if standards else _MAY_READ_OTHERWISE_IN_QUIRKS).search(text) is not None
                     and source.css_first(_READ_OTHERWISE if standards else _READ_OTHERWISE_IN_QUIRKS) is not None)
        read = None if otherwise else _read_back(source.html or "", _XML_REFUSED_REFERENCE.search(text) is not None)
        if read is not None:
            root, elements = read, int(_COUNT_ELEMENTS(read))
        else:  # what libxml2 would build otherwise: copied, as slowly as every page once was
            root = _PARSER.makeelement("html")
            elements = 1 + _copy_children(source.root.first_child if source.root is not None else None, root)
    else:
        root = _PARSER.makeelement("html")
        source = LexborHTMLParser(markup, is_fragment=True, fragment_tag="body").root
        elements = 2 + _copy_children(source, etree.SubElement(root, "body"))
    if root.find("body") is None:
        etree.SubElement(root, "body")
        elements += 1
    return root, elements


def _xml_utf8(text: str) -> bytes | None:
    """``text`` in UTF-8 if it holds only characters XML allows (most pages), else None.

    What lexbor reads is UTF-8 (selectolax encodes a str itself): encoding it here, and looking
    at the bytes for what XML refuses (C0 controls, U+FFFE/U+FFFF; a lone surrogate cannot be
    encoded), costs a quarter of the instructions ``_NOT_XML_CHAR`` takes to scan the text.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    if len(data.translate(None, _C0_NOT_XML)) != len(data) or b"\xef\xbf\xbe" in data or b"\xef\xbf\xbf" in data:
        return None
    return data


_C0_NOT_XML = bytes(c for c in range(0x20) if c not in b"\t\n\r")


def _read_back(serialized: str, refused_characters: bool) -> HtmlElement | None:
    """A whole page as lexbor built it, from its serialization read by libxml2.

    Both in C: copying a page's tree node by node in Python (``_copy_children``) took 4.2 ms of a
    bench page, twice both parses (1.9 ms). libxml2 builds lexbor's markup as written, but for
    pages ``_READ_OTHERWISE`` finds (``parse_sized`` copies those) and what is undone here:
    void elements libxml2 does not know (their "content" goes after them) and ``<template>``
    content (inert in a browser; lexbor's tree holds it apart). ``refused_characters``: the page
    has character references to characters XML cannot hold (``&#1;``), which lexbor decoded and
    lxml would refuse in every later edit. None if libxml2 stopped short of the end (a fatal
    error: nesting deeper than its limit).
    """
    if not serialized:
        return None
    if refused_characters:
        serialized = _NOT_XML_CHAR.sub("", serialized)
    parser = _document_parser()
    root = lxml.html.document_fromstring(serialized, parser=parser)
    if any(error.level == etree.ErrorLevels.FATAL for error in parser.error_log):
        return None
    for el in root.iter(_VOID_UNKNOWN_TO_LIBXML2):
        if el.text or len(el):
            _hoist_content(el)
    for template in root.iter("template"):
        template.text = None
        template[:] = []
    if _BRACE_ATTRIBUTE.search(serialized):
        _drop_brace_attributes(root)
    return root


def _drop_brace_attributes(root: HtmlElement) -> None:
    """Attributes named with a "{" go, as ``_copy_children`` leaves them out: lxml's API takes
    such a name for a namespace (``{uri}name``) and refuses it, even to delete it by, which the
    cleaner does (``class="lazy"{`` names one "{", a typo real pages hold)."""
    for el in root.iter(etree.Element):
        if any("{" in name for name in el.keys()):
            keep_attributes(el, lambda name: "{" not in name)


def keep_attributes(el: HtmlElement, keep: Callable[[str], bool]) -> None:
    """Only ``el``'s attributes whose names ``keep`` takes stay, in their order: cleared and set
    again, since lxml's API refuses some names HTML5 reads (a "{") even to delete them by."""
    kept = [(name, value) for name, value in el.items() if keep(name)]
    el.attrib.clear()
    for name, value in kept:
        el.set(name, value)


def _hoist_content(el: HtmlElement) -> None:
    """Move what libxml2 put inside a void element to just after it, as HTML5 reads it."""
    parent, children, tail = el.getparent(), list(el), el.tail or ""
    el.tail, el.text = el.text, None
    at = parent.index(el)
    for offset, child in enumerate(children, 1):
        parent.insert(at + offset, child)  # moves it, with its tail
    last = children[-1] if children else el
    last.tail = (last.tail or "") + tail


# "<!DOCTYPE html>": standards mode, where a <table> closes a <p> as libxml2 closes it.
_STANDARDS_DOCTYPE = re.compile(r"\s*<!doctype\s+html\s*>", re.IGNORECASE)
# Trees libxml2 would build otherwise from lexbor's serialization (the page is copied instead):
# what follows a <plaintext> is text, and MathML or SVG holding an element with an HTML raw-text
# name holds markup in it (libxml2 reads both as text); in quirks mode, a <table> inside a <p>
# (libxml2 closes the <p>). One lexbor CSS pass, 0.4 ms a page. SVG's own <title>, <style> and
# <script> are not looked for: common in icons, and never shown.
_RAW_TEXT_NAMES = ("textarea", "xmp", "iframe", "noembed", "noframes", "noscript", "template", "plaintext")
_READ_OTHERWISE = ", ".join(["plaintext", "math style", "math script", "math title",
                             *(f"{space} {name}" for space in ("math", "svg") for name in _RAW_TEXT_NAMES)])
_READ_OTHERWISE_IN_QUIRKS = _READ_OTHERWISE + ", p table"
# The start tags without which those selectors match nothing: most pages have none, and looking
# for them in the markup (0.1 ms of a bench page) spares the CSS pass (0.4 ms). Letters as
# classes: re.IGNORECASE took a third longer.
def _start_tag(*names: str) -> re.Pattern[str]:
    return re.compile("<(?:" + "|".join("".join(f"[{c}{c.upper()}]" for c in name) for name in names) + ")")


_MAY_READ_OTHERWISE = _start_tag("plaintext", "math", "svg")
_MAY_READ_OTHERWISE_IN_QUIRKS = _start_tag("plaintext", "math", "svg", "table")
# HTML5's void elements that libxml2's HTML parser reads as containers.
_VOID_UNKNOWN_TO_LIBXML2 = ("embed", "source", "track", "wbr", "keygen")
# An attribute whose name holds a "{", as lexbor writes it (` a{b="`, `{{attr}}=""`), in 0.15 ms
# of a bench page: bounded, for minified scripts' braces, which match now and then and cost a walk.
_BRACE_ATTRIBUTE = re.compile(r'\{[^\s=>"]{0,64}="')
_COUNT_ELEMENTS = etree.XPath("count(//*)")
# A character reference to what XML cannot hold: C0 controls but tab, LF and CR; U+FFFE, U+FFFF
# (HTML5 decodes them as such; a NUL, a surrogate or past U+10FFFF becomes U+FFFD).
_XML_REFUSED_REFERENCE = re.compile(
    r"&#(?:[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]|[fF]{3}[eEfF])(?![0-9a-fA-F])"
    r"|0*(?:[0-8]|1[124-9]|2[0-9]|3[01]|6553[45])(?![0-9]))")


def settle_names(root: HtmlElement) -> bool:
    """Make ``root``'s names ones XML with namespaces reads back: an element named otherwise
    gives way to its content (as ``_copy_children`` does), an attribute so named goes; True if
    any did.

    HTML5 takes almost anything for a name (``<d&#1;iv>``: references are not decoded there;
    ``<svg:rect>`` outside SVG: a prefix nothing declares) and libxml2 reads it back as it is;
    only what writes the tree as XML minds (trafilatura, which reads its own result back), so
    this runs when that fails rather than over every page.
    """
    changed = False
    for el in list(root.iter(etree.Element)):
        if not _QNAME.match(el.tag):
            el.drop_tag()
            changed = True
        elif any(not _QNAME.match(name) for name in el.keys()):
            keep_attributes(el, lambda name: _QNAME.match(name) is not None)
            changed = True
    return changed


# A name XML with namespaces reads back: no colon but after the one prefix that needs no
# declaration (``xml:lang``), and not ``xmlns``, which would declare one.
_QNAME = re.compile(r"(?!xmlns\Z)(?:xml:)?[^\W\d][\w.-]*\Z")


def _copy_children(first: LexborNode | None, parent: HtmlElement) -> int:
    """``first`` and its following siblings, with their subtrees, appended to ``parent``.

    Iterative (posts nest hundreds deep). Comments and processing instructions are left out. An element whose name lxml
    refuses (``<d;>``, ``<string,\xa0string>``: names a browser accepts) gives way to its content,
    and attributes with such names are dropped; characters XML cannot hold (which character
    references can still produce: ``&#1;``) are removed. One loop with no calls of ours per
    node: it runs for every node of every page. Returns the number of elements made.
    """
    # _Element.set, not HtmlElement.set: lxml.html's override is a Python call per attribute.
    sub_element, set_attribute, not_xml, names = etree.SubElement, etree._Element.set, _NOT_XML_CHAR, _NAME_OK
    # (node, the element it goes into, the element the next text is the tail of: None for
    # into's text, True for not known). Knowing it saves len(into), a walk of into's children.
    stack: list[tuple[LexborNode | None, HtmlElement, HtmlElement | bool | None]] = [(first, parent, True)]
    elements = 0
    while stack:
        node, into, last = stack.pop()
        if last is True:
            last = into[-1] if len(into) else None
        while node is not None:
            tag = node.tag
            if tag == "-text":
                text = node.text_content
                if text:
                    # Joined before the assignment: lxml drops the old text before it checks the new.
                    if last is None:
                        joined = (into.text or "") + text
                        try:
                            into.text = joined
                        except ValueError:  # a character XML cannot hold (lxml checks every string)
                            into.text = not_xml.sub("", joined)
                    else:
                        joined = (last.tail or "") + text
                        try:
                            last.tail = joined
                        except ValueError:
                            last.tail = not_xml.sub("", joined)
            elif tag is not None and tag[0] not in "-!":  # None: a processing instruction
                child = node.first_child
                ok = names.get(tag)
                if ok is None:
                    ok = names[tag] = _ATTRIBUTE_NAME.match(tag) is not None
                if ok:
                    el = sub_element(into, tag)
                    elements += 1
                    attributes = node.attributes
                    if attributes:
                        for name, value in attributes.items():
                            ok = names.get(name)
                            if ok is None:
                                ok = names[name] = _ATTRIBUTE_NAME.match(name) is not None
                            if ok:
                                try:
                                    set_attribute(el, name, value or "")
                                except ValueError:
                                    set_attribute(el, name, not_xml.sub("", value))
                    if child is not None:
                        stack.append((node.next, into, el))
                        node, into, last = child, el, None
                        continue
                    last = el
                elif child is not None:
                    stack.append((node.next, into, True))  # the children take the element's place
                    node = child
                    continue
            node = node.next
    return elements


# Whether lxml takes a tag or attribute name, by name: pages repeat a few dozen of them.
_NAME_OK: dict[str, bool] = {}


class _HTMLParser(etree.HTMLParser):
    """Makes lxml.html's element classes, looked up in C.

    lxml.html.HTMLParser asks a Python method for the class of every element object it hands
    out, half the time of walking a page's tree. A namespace lookup with the same
    table gives the same classes.
    """

    _lookup = etree.ElementNamespaceClassLookup(etree.ElementDefaultClassLookup(
        element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity))
    _lookup.get_namespace(None).update(HtmlElementClassLookup()._element_classes)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.set_element_class_lookup(self._lookup)


_PARSER = _HTMLParser()
_THREAD = threading.local()


def _document_parser() -> _HTMLParser:
    """This thread's parser for ``_read_back``: its ``error_log`` is of its own last parse.

    huge_tree: pages nest deeper than libxml2's default limit of 256 levels (posts nest hundreds
    deep) and can hold text nodes over its 10 MB; what lexbor read, libxml2 must read back whole.
    Comments and processing instructions are not built at all, rather than stripped by a walk
    afterwards; the text around one joins up: React pages put "<!-- -->" inside sentences ("And
    <!-- -->winter…").
    """
    parser = getattr(_THREAD, "parser", None)
    if parser is None:
        parser = _THREAD.parser = _HTMLParser(huge_tree=True, remove_comments=True, remove_pis=True)
    return parser


def parse_body(html: str) -> HtmlElement | None:
    """The <body> of a fragment or of a whole document (trafilatura returns those)."""
    root = parse_document(html)
    return None if root is None else root.find("body")


def _inner_html(el: HtmlElement) -> str:
    children = "".join(lxml.html.tostring(child, encoding="unicode") for child in el)
    return (html_lib.escape(el.text or "", quote=False) + children).strip()


def _drop_hidden(root: HtmlElement) -> None:
    """Elements with the ``hidden`` attribute are not shown by browsers (nor kept here); the
    cleaner would drop the attribute and show them."""
    for el in root.xpath(".//*[@hidden]"):
        el.drop_tree()


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
    """Give every <img> its real src; drop tracking pixels, source-less images, <picture>, and
    the <object> wrappers that hide images."""
    for img in list(root.iter("img")):
        src = _real_src(img)
        if src is None or _is_pixel(img):
            img.drop_tree()
        else:
            img.set("src", src)
    for picture in list(root.iter("picture")):
        for source in list(picture.iter("source")):
            source.drop_tag()
        picture.drop_tag()
    # An <object> that embeds nothing shows its content, as here ``List<Object>`` in code does;
    # the cleaner and trafilatura would drop it with the images inside.
    for obj in list(root.iter("object")):
        if not obj.get("data") and obj.find(".//img") is not None:
            obj.drop_tag()


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
    nested <pre>s (trafilatura writes <pre><pre>) become one; images inside code go between
    the pieces of it (code keeps only text: trafilatura and Markdown would drop them)."""
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
    for pre in list(root.iter("pre")):
        _split_out_images(pre)
    for pre in root.iter("pre"):
        # An HTML parser drops the newline right after <pre>, and lxml writes none extra: a
        # leading newline would be lost at each re-reading of the cleaned HTML.
        pre.text = pre.text and pre.text.lstrip("\r\n")


def _split_out_images(pre: HtmlElement) -> None:
    """``<pre>a<div><img></div>b</pre>`` -> ``<pre>a</pre><div><img></div><pre>b</pre>``."""
    holders = [child for child in pre if child.tag == "img" or child.find(".//img") is not None]
    if not holders:
        return
    pieces: list[HtmlElement] = []
    piece = pre.makeelement("pre", pre.attrib)
    piece.text = pre.text
    for child in list(pre):
        if child in holders:
            tail, child.tail = child.tail, None
            pieces += [piece, child]
            piece = pre.makeelement("pre", pre.attrib)
            piece.text = tail
        else:
            piece.append(child)
    pieces.append(piece)
    kept = [el for el in pieces if el.tag != "pre" or "".join(el.itertext()).strip()]
    kept[-1].tail = pre.tail
    parent = pre.getparent()
    at = parent.index(pre)
    parent.remove(pre)
    for offset, el in enumerate(kept):
        parent.insert(at + offset, el)


def block_texts_of(root: HtmlElement) -> Iterator[str]:
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
    # split() knows the whitespace a \s+ regex knows (str.isspace): half the cost of sub and strip.
    return " ".join(text.split())


def mapped_url(url: str, image_map: Mapping[str, str] | None) -> str:
    return image_map.get(url, url) if image_map else url


def tidy_markdown(markdown: str) -> str:
    """No trailing spaces, one blank line between blocks (code keeps up to two), one final newline.

    Split on "\\n" only: str.splitlines() would also break lines at U+2028, U+0085 and the like.
    """
    lines = [line.rstrip() for line in markdown.split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).replace(CODE_BLANK, "")
    text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    return text + "\n" if text else ""
