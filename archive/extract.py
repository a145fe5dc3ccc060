"""Choosing a post's body: the feed's HTML or the article page's main text.

The page's main text comes from trafilatura. Pure functions of strings, so a process pool can
run them off Scrapy's reactor thread.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

from lxml import etree
from lxml.html import HtmlElement

from archive.charset import decode_html
from archive.html import (BLOCK_TAGS, Fragment, clean_fragment, normalise_pre, parse_sized, settle_images,
                          keep_attributes, settle_names, unwrap_proxy)
from archive.stories import Sketch, page_canonical, sketch
from archive.versions import body_text

# A feed body shorter than this share of the page's main text may be a summary of it…
SUMMARY_RATIO = 0.6
# …and is one if at least this share of its text is found in the page (an excerpt, not other text).
SUMMARY_COVERAGE = 0.5
# Length of the character n-grams compared: long enough that unrelated text shares few of them.
SHINGLE = 8
# trafilatura's time grows faster than the page: ~2 s at 20 000 elements, minutes past 100 000
# (a hostile or runaway page would hold a worker for hours). Article pages have a few thousand.
PAGE_MAX_ELEMENTS = 30_000

# trafilatura's recall focus keeps what its balanced one cuts from tables, listings and long
# articles, but on some pages collapses to a few words (7 of ietf-1's 5900, a caption of an article):
# a result shorter than this many characters is extracted again with the balanced focus, which
# compares readability's and jusText's results and escalates to recall on its own (bench.pages).
RECALL_MIN_CHARS = 500

# How excerpts end ("…", "...", WordPress' "[…]"): not part of the page's text.
_TRAILING_ELLIPSIS = re.compile(r"\s*\[?(?:…+|\.{3,})\]?\s*$")

# trafilatura keeps an <img> only when its URL ends in an image extension (utils.is_image_file);
# CDNs often serve images without one. Images get a stand-in URL under this reserved (RFC 2606)
# domain for the extraction, and their own URL back afterwards.
_STAND_IN = "https://postarc.invalid/image/{}.png"

# trafilatura's TEI elements and renditions, as HTML.
_TEI_TAGS = {"item": "li", "quote": "blockquote", "lb": "br", "graphic": "img", "row": "tr", "ab": "p"}
_TEI_RENDITIONS = {"#b": "strong", "#i": "em", "#u": "u", "#t": "code", "#sub": "sub", "#sup": "sup"}
_HEADING = re.compile(r"h[1-6]")

# Elements whose content an HTML parser reads as text (the HTML standard's raw text, escapable
# raw text and the like): markup inside one in trafilatura's XML would become text in HTML.
_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
                       "noscript", "plaintext"})

# Elements whose loose text trafilatura drops: text between <br>s or after a block child.
_CONTAINERS = frozenset(BLOCK_TAGS - {"p", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tbody",
                                      "thead", "tfoot", "tr", "ul", "ol", "dl", "hr"})


class PageTooLarge(ValueError):
    """An article page with more elements than ``PAGE_MAX_ELEMENTS``: not extracted."""


@dataclass(frozen=True)
class Body:
    html: str  # cleaned HTML of the post body
    source: str  # "feed" or "page"
    image_urls: list[str]
    named: dict[str, str] = field(default_factory=dict)  # image URL -> the proxied URL named
    canonical: str | None = None  # the page's <link rel="canonical">, as archive.stories keys stories
    sketch: Sketch = (0, [])  # archive.stories' fingerprint of the body's text
    # archive.versions.body_text(html), for the version hash: made here, in the pool's worker,
    # where parsing the body again does not hold the crawl's reactor.
    version_text: str = ""


def extract_page(page_html: str, page_url: str | None) -> str:
    """The main content of an article page as clean HTML (trafilatura), '' if none was found."""
    return _page_fragment(page_html, page_url).html


def _page_fragment(page_html: str, page_url: str | None) -> Fragment:
    main, stand_ins = _page_main(page_html, page_url)
    return Fragment("", [], []) if main is None else clean_fragment(_tei_to_html(main), page_url, stand_ins)


def _page_main(page_html: str, page_url: str | None) -> tuple[etree._Element | None, dict[str, str]]:
    """trafilatura's main content of the page (its XML), and the images' stand-ins in it."""
    root, elements = parse_sized(page_html)
    if root is None:
        return None, {}
    if elements > PAGE_MAX_ELEMENTS:
        raise PageTooLarge(f"the page has {elements} elements, more than {PAGE_MAX_ELEMENTS} (PAGE_MAX_ELEMENTS)")
    stand_ins = _stand_in_images(root, page_url)
    _paragraphize(root)
    normalise_pre(root)
    _mark_code(root)
    main = _extract(root, page_url, favor_recall=True)
    if main is None or len(" ".join("".join(main.itertext()).split())) < RECALL_MIN_CHARS:
        balanced = _extract(root, page_url, favor_recall=False)
        main = main if balanced is None else balanced
    return main, stand_ins


def _text_bound(main: etree._Element) -> float:
    """At least the length of the text (``_Candidate.text``) that cleaning ``main`` can leave.

    Cleaning only takes text away, and the text's words are joined by single spaces: so its
    non-space characters, plus a space per word and per element boundary (where one block ends
    and the next begins), bound it. Unbounded where cleaning could make text: an element the
    HTML parser reads as raw text (its children's markup would become text), or a Cloudflare
    e-mail that ``clean_fragment`` decodes.
    """
    elements = 0
    for el in main.iter():
        elements += 1
        if el.tag in _RAW_TEXT or el.get("data-cfemail") is not None:
            return float("inf")
    words = "".join(main.itertext()).split()
    return sum(map(len, words)) + len(words) + elements


def _extract(root: HtmlElement, page_url: str | None, favor_recall: bool) -> etree._Element | None:
    """trafilatura's main content of the page as its XML <main> (it works on a copy of ``root``)."""
    # Imported here, not above: the crawl process imports this module to hand ``choose_body``
    # to the worker pool, and trafilatura's imports cost 0.2 s there, in every run.
    import trafilatura

    _install_prunes()
    options = dict(url=page_url, output_format="xml", include_images=True, include_links=True, include_tables=True,
                   include_formatting=True, include_comments=False, favor_recall=favor_recall)
    try:
        result = trafilatura.extract(root, **options)
    except etree.XMLSyntaxError:  # a name XML refuses, which trafilatura wrote and read back
        if not settle_names(root):
            raise
        result = trafilatura.extract(root, **options)
    return etree.fromstring(result.encode("utf-8")).find("main") if result else None


@functools.cache
def _install_prunes() -> None:
    """trafilatura's raw-tree prunes as walks (``archive.prune``), once per process that extracts."""
    from archive import prune  # it imports trafilatura: see _extract

    prune.install()


def choose_body(feed_html: str, base_url: str | None, page_html: str | bytes | None = None,
                page_url: str | None = None, page_encoding: str = "utf-8") -> Body:
    """The body that holds the post.

    The feed's HTML wins unless it is a summary of what the page carries: a page that is
    boilerplate only, truncated or about something else never replaces the feed's body.
    ``page_html`` may be the page as received, decoded here from ``page_encoding``: the crawl
    process hands it over undecoded (decoding it there, then pickling the text, which encodes it
    to UTF-8 again, cost it 1 % of its instructions).
    """
    if isinstance(page_html, bytes):
        page_html = decode_html(page_html, page_encoding)
    feed = _Candidate(clean_fragment(feed_html, base_url), "feed")
    chosen = feed
    if page_html:
        main, stand_ins = _page_main(page_html, page_url)
        # The page's fragment is cleaned only when its text may be long enough to matter: a feed
        # that carries the page's whole text wins at once (5 % of choose_body's instructions).
        if main is not None and len(feed.text) < SUMMARY_RATIO * _text_bound(main):
            page = _Candidate(clean_fragment(_tei_to_html(main), page_url, stand_ins), "page")
            if feed.summarises(page):
                chosen = page
    return Body(html=chosen.html, source=chosen.source, image_urls=chosen.image_urls, named=chosen.named,
                canonical=page_canonical(page_html, page_url), sketch=sketch(chosen.text),
                version_text=body_text(chosen.html))


class _Candidate:
    def __init__(self, fragment: Fragment, source: str) -> None:
        self.html = fragment.html
        self.source = source
        self.text = " ".join(fragment.texts)
        self.image_urls = [img.url for img in fragment.images]
        self.named = fragment.named

    def summarises(self, other: _Candidate) -> bool:
        """This body is a summary of ``other``: much shorter, and mostly found in it.

        A feed with no text at all (a photo post) is a summary only of a page that has text and
        every picture of its own.
        """
        if len(self.text) >= SUMMARY_RATIO * len(other.text):
            return False
        if not self.text:
            return set(self.image_urls) <= set(other.image_urls)
        return _coverage(_TRAILING_ELLIPSIS.sub("", self.text), other.text) >= SUMMARY_COVERAGE


def _coverage(part: str, whole: str) -> float:
    """Share of ``part``'s character n-grams found in ``whole``, whitespace ignored (CJK text has
    no words to compare)."""
    part, whole = "".join(part.split()), "".join(whole.split())
    if len(part) <= SHINGLE:
        return float(part in whole)
    mine = _shingles(part)
    return len(mine & _shingles(whole)) / len(mine)


def _shingles(text: str) -> set[str]:
    return {text[i:i + SHINGLE] for i in range(len(text) - SHINGLE + 1)}


def _stand_in_images(root: HtmlElement, base_url: str | None) -> dict[str, str]:
    """Give each image its real URL (lazy attributes, srcset, proxies) and then a stand-in that
    trafilatura keeps; returns stand-in -> real URL. Trackers and data: URIs go."""
    settle_images(root)
    stand_ins = {}
    for img in list(root.iter("img")):
        try:
            url = unwrap_proxy(urljoin(base_url or "", img.get("src", "").strip()))
        except ValueError:  # no URL at all ("//a>b", "http://[x"): not an image anyone can fetch
            url = ""
        if not url.lower().startswith(("http://", "https://")):
            img.drop_tree()
            continue
        stand_in = _STAND_IN.format(len(stand_ins))
        stand_ins[stand_in] = url
        keep_attributes(img, lambda name: name in ("alt", "title"))
        img.set("src", stand_in)
    return stand_ins


def _paragraphize(root: HtmlElement) -> None:
    """Wrap loose text runs of container elements in <p>s, as a reader sees them.

    trafilatura reads paragraphs, and drops text that sits directly in a <div> between <br>s or
    after a nested block (common in feed-born pages); as <p>s those runs are kept.
    """
    # The containers with a <br> or block child, found from those children: one walk that
    # libxml2 filters by tag, instead of a Python look at every child of every container. It
    # counts them and notes text after one, which tells most containers apart without a second
    # look at their children.
    breaks: dict[HtmlElement, int] = {}
    loose: set[HtmlElement] = set()
    for child in root.iter("br", *BLOCK_TAGS):
        parent = child.getparent()
        if parent is not None and parent.tag in _CONTAINERS:
            breaks[parent] = breaks.get(parent, 0) + 1
            if (child.tail or "").strip():
                loose.add(parent)
    for el, count in breaks.items():
        # Only blocks, apart only by whitespace (most of a page's containers): no run to wrap, and
        # the container stays as it is: without its <br>s trafilatura chose a side section of
        # some pages over their article (bench.pages). Wrapping one container changes no other's
        # children, so what the walk saw still holds.
        if count == len(el) and el not in loose and not (el.text or "").strip():
            continue
        _wrap_runs(el)


def _is_break(node: str | HtmlElement | None) -> bool:
    return node is None or (not isinstance(node, str) and isinstance(node.tag, str)
                            and (node.tag == "br" or node.tag in BLOCK_TAGS))


def _wrap_runs(el: HtmlElement) -> None:
    nodes: list[str | HtmlElement] = [el.text or ""]
    for child in el:
        nodes += [child, child.tail or ""]
        child.tail = None
    el.text = None
    del el[:]
    run: list[str | HtmlElement] = []
    for node in [*nodes, None]:
        if not _is_break(node):
            run.append(node)  # type: ignore[arg-type]
            continue
        if _has_content(run):
            paragraph = el.makeelement("p", {})
            for part in run:
                _append(paragraph, part)
            el.append(paragraph)
        run = []
        if node is not None and node.tag != "br":
            el.append(node)


def _has_content(run: list[str | HtmlElement]) -> bool:
    for part in run:
        if isinstance(part, str):
            if part.strip():
                return True
        elif not isinstance(part.tag, str):
            continue
        elif part.text_content().strip() or part.tag == "img" or next(part.iter("img"), None) is not None:
            return True
    return False


def _append(parent: HtmlElement, part: str | HtmlElement) -> None:
    if not isinstance(part, str):
        parent.append(part)
    elif len(parent):
        parent[-1].tail = (parent[-1].tail or "") + part
    else:
        parent.text = (parent.text or "") + part


def _mark_code(root: HtmlElement) -> None:
    """Every <pre> holds its text in one <code>: trafilatura turns other <pre>s into quotes,
    losing their line breaks."""
    for pre in root.iter("pre"):
        if len(pre) == 1 and pre[0].tag == "code" and not (pre.text or "").strip() and not (pre[0].tail or "").strip():
            continue
        code = pre.makeelement("code", {})
        code.text, pre.text = pre.text, None
        code.extend(list(pre))
        pre.append(code)


def _tei_to_html(main: etree._Element) -> str:
    """trafilatura's XML (TEI) body as HTML.

    Its own HTML output writes every list as <ul> and every <code> as <pre>, and pretty-prints
    into <pre>; from the XML, ordered lists, inline code and code indentation survive.
    """
    for el in main.iter(etree.Element):
        rend = el.get("rend", "")
        if el.tag == "list":
            el.tag = "ol" if rend == "ol" else "ul"
        elif el.tag == "head":
            el.tag = rend if _HEADING.fullmatch(rend) else "h3"
        elif el.tag == "hi":
            el.tag = _TEI_RENDITIONS.get(rend, "span")
        elif el.tag == "cell":
            el.tag = "th" if el.get("role") == "head" else "td"
        elif el.tag == "code":
            el.tag = "code" if "\n" not in el.xpath("string()") and _has_text_beside(el) else "pre"
        elif el.tag == "ref":
            el.tag = "a"
            el.set("href", el.get("target", ""))
        else:
            el.tag = _TEI_TAGS.get(el.tag, el.tag)
    main.tag = "div"
    return etree.tostring(main, method="html", encoding="unicode")


def _has_text_beside(el: etree._Element) -> bool:
    previous = el.getprevious()
    before = previous.tail if previous is not None else el.getparent().text
    return bool((before or "").strip() or (el.tail or "").strip())
