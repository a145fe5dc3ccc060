"""The article-page path against trafilatura alone: ``python -m bench.pages [DIR] [--json]``.

Serves the pages of DIR (default ``../shared/pages/readability``: Mozilla Readability's test pages,
each a folder with ``source.html``, a reference extraction ``expected.html`` and
``expected-metadata.json``) on 127.0.0.1, archives them all with one real ``postarc archive``
run, and scores on the same pages postarc's posts and trafilatura's own output at its defaults
(``trafilatura.extract(html)``; its Markdown output and its Markdown with images beside).

What is scored is what a reader sees:

- body text: postarc's Markdown (and trafilatura's) rendered by markdown-it, ``expected.html``
  read by lxml's HTML parser; text split into tokens (each CJK or Thai character is one, other
  text is words of letters and digits, NFKC-folded, case-folded); bag-of-tokens precision, recall
  and F1 per page, averaged over pages (nothing extracted scores 0);
- image recall: the images of ``expected.html`` found in the post, an image being found under
  any URL its ``<img>`` in the source names (src, srcset, lazy-loading attributes). URLs are compared without
  the scheme, and the reference's host (``fakehost``) and the bench server's are both dropped,
  since the reference resolved relative URLs against ``http://fakehost/test/page.html`` and the
  pages are served at ``/NAME/test/page.html``; averaged over pages whose reference has images;
- title, author, date: share of the pages whose metadata names one that agree. Titles and
  authors are compared NFKC- and case-folded with punctuation and spacing dropped (an author
  also without a leading "by"); an author agrees when one contains the other (bylines add roles
  and dates). A date agrees on its calendar day, in UTC or in the reference's own offset.

The human table also gives milliseconds of extraction per page, measured in this process:
postarc's page path (``archive.extract.choose_body``, then ``to_markdown``) and
``trafilatura.extract`` at its defaults.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from statistics import mean
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
import trafilatura
from dateutil.parser import isoparse
from dateutil.parser import parse as parse_date
from lxml import etree
from markdown_it import MarkdownIt

from archive.frontmatter import read_front_matter
from crawler.demo.server import Resource, SiteServer

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PAGES = REPO.parent.parent / "shared" / "pages" / "readability"
REFERENCE_URL = "http://fakehost/test/page.html"
METRICS = ("precision", "recall", "f1", "image_recall", "title", "author", "date")

_MD = MarkdownIt("commonmark").enable("table")
_TOKEN = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+")
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "img", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
})
_TITLE_SEPARATOR = re.compile(r"\s+[|\-–—·:»/]+\s+|\s*[_|·]\s*|\s+\[")
_SRCSET_URLS = re.compile(r"(?:^|,)\s*(\S+?)(?=,|\s|$)")
_BY = re.compile(r"^\s*by\s+", re.IGNORECASE)


@dataclass
class Page:
    name: str
    source: bytes
    text: str  # the reference's text as a reader sees it
    images: list[str]  # the reference's image URLs, normalised (see ``image_key``)
    aliases: dict[str, str]  # every URL an <img> of the source names (srcset, lazy attributes) -> its src
    title: str | None
    author: str | None
    date: str | None


@dataclass
class Output:
    """What one side made of one page."""

    text: str = ""
    images: list[str] = field(default_factory=list)
    title: str | None = None
    author: str | None = None
    date: str | None = None


# --- reading ---------------------------------------------------------------------------------


def html_text(html: str) -> tuple[str, list[str]]:
    """The text a browser shows of an HTML fragment (blocks apart) and its image URLs as written."""
    if not html.strip():
        return "", []
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    for el in list(root.iter("script", "style", "template")):
        el.drop_tree()  # keeps its tail
    parts: list[str] = []
    images: list[str] = []
    for event, el in etree.iterwalk(root, events=("start", "end")):
        block = el.tag in _BLOCKS
        if event == "start":
            if el.tag == "img" and el.get("src"):
                images.append(el.get("src"))
            parts += [" " * block, el.text or ""]
        else:
            parts += [" " * block, "" if el is root else el.tail or ""]
    return "".join(parts), images


def markdown_text(markdown: str) -> tuple[str, list[str]]:
    """What markdown-it shows of a Markdown body, and its image URLs."""
    return html_text(_MD.render(markdown))


def tokens(text: str) -> Counter[str]:
    return Counter(_TOKEN.findall(unicodedata.normalize("NFKC", text).casefold()))


def image_key(url: str, base: str, prefix: str = "") -> str:
    """An image URL as compared: resolved, without scheme, local hosts and the page's own folder."""
    parts = urlsplit(urljoin(base, url.strip()))
    host = parts.netloc
    if host == "fakehost" or host.startswith("127.0.0.1"):
        host = ""
    path = parts.path
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix):]
    return f"{host}{path}" + (f"?{parts.query}" if parts.query else "")


def load_pages(folder: Path) -> list[Page]:
    pages = []
    for d in sorted(p for p in folder.iterdir() if (p / "source.html").is_file()):
        meta = json.loads((d / "expected-metadata.json").read_text(encoding="utf-8"))
        text, images = html_text((d / "expected.html").read_text(encoding="utf-8"))
        source = (d / "source.html").read_bytes()
        aliases = image_aliases(source)
        pages.append(Page(d.name, source, text,
                          list(dict.fromkeys(aliases.get(k, k) for k in (image_key(u, REFERENCE_URL) for u in images))),
                          aliases, meta.get("title"), meta.get("byline"), meta.get("publishedTime")))
    return pages


def image_aliases(source: bytes) -> dict[str, str]:
    """Each URL an image of the page names (src, srcset candidates, lazy-loading attributes,
    its <picture>'s sources) -> the key of the first: one image, whichever URL a side picked."""
    try:
        root = lxml.html.document_fromstring(source)
    except etree.ParserError:
        return {}
    aliases: dict[str, str] = {}
    for img in root.iter("img"):
        picture = next(img.iterancestors("picture"), None)
        holders = [img, *(picture.iter("source") if picture is not None else [])]
        urls = [url for el in holders for name, value in el.attrib.items()
                if "src" in name or "original" in name for url in _SRCSET_URLS.findall(value)]
        keys = [image_key(u, REFERENCE_URL) for u in urls if not u.startswith("data:")]
        for key in keys:
            aliases.setdefault(key, keys[0])
    return aliases


# --- the two sides ---------------------------------------------------------------------------


def page_path(name: str) -> str:
    return f"/{name}/test/page.html"


def run_postarc(pages: list[Page], work: Path) -> dict[str, Output]:
    """Archive every page with one ``postarc archive`` run; the posts it wrote, by page name."""
    routes = {page_path(p.name): Resource(p.source) for p in pages}
    with SiteServer(routes) as site:
        by_url = {site.url(page_path(p.name)): p.name for p in pages}
        run = subprocess.run(
            [sys.executable, "-m", "crawler.cli", "archive", "-", "--archive", str(work / "archive"),
             "--images", "remote", "--json", "-s", "LOG_LEVEL=WARNING"],
            input="\n".join(by_url), capture_output=True, text=True, cwd=REPO, timeout=1800)
    outputs: dict[str, Output] = {}
    for line in run.stdout.splitlines():
        if not line.startswith("{"):
            continue
        report = json.loads(line)
        name = by_url.get(report["url"])
        if name is None or not report["posts"]:
            continue
        fm, body = read_front_matter(Path(report["posts"][0]).read_text(encoding="utf-8"))
        text, images = markdown_text(body)
        date = fm.get("date")
        # A page without a date gets the time it was fetched: that is no date of the page's.
        if isinstance(date, datetime) and isinstance(fm.get("archived"), datetime) \
                and abs(fm["archived"] - date).total_seconds() < 86400:
            date = None
        outputs[name] = Output(text, [image_key(u, site.url(page_path(name)), f"/{name}") for u in images],
                               _str(fm.get("title")), _str(fm.get("author")), _str(date))
    if not outputs:
        raise SystemExit(f"bench.pages: postarc archive wrote no post (exit {run.returncode}): {run.stderr[-2000:]}")
    return outputs


def run_trafilatura(pages: list[Page], **options: Any) -> dict[str, Output]:
    """trafilatura at its defaults (plus ``options``) on each page, with its metadata."""
    outputs = {}
    for page in pages:
        html = page.source.decode("utf-8", "replace")
        result = trafilatura.extract(html, **options) or ""
        if options.get("output_format") == "markdown":
            text, images = markdown_text(result)
        else:
            text, images = result, []
        meta = trafilatura.extract_metadata(html)
        outputs[page.name] = Output(text, [image_key(u, REFERENCE_URL) for u in images],
                                    meta.title if meta else None, meta.author if meta else None,
                                    meta.date if meta else None)
    return outputs


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


# --- scoring ---------------------------------------------------------------------------------


def prf(found: str, expected: str) -> tuple[float, float, float]:
    got, want = tokens(found), tokens(expected)
    common = sum((got & want).values())
    if not common:
        return 0.0, 0.0, 0.0
    p, r = common / sum(got.values()), common / sum(want.values())
    return p, r, 2 * p * r / (p + r)


def _fold(text: str | None) -> str:
    return "".join(_TOKEN.findall(unicodedata.normalize("NFKC", text or "").casefold()))


def title_agrees(found: str | None, expected: str) -> bool:
    """Equal, or equal to the other's part before or after a separator ("Title | Site")."""
    if not found:
        return False
    short, long = sorted((found, expected), key=len)
    want = _fold(short)
    return want == _fold(long) or any(
        want in (_fold(long[:cut.start()]), _fold(long[cut.end():])) for cut in _TITLE_SEPARATOR.finditer(long))


def author_agrees(found: str | None, expected: str) -> bool:
    a, b = _fold(_BY.sub("", found or "")), _fold(_BY.sub("", expected))
    return bool(a and b) and (a in b or b in a)


def date_agrees(found: str | None, expected: str) -> bool:
    if not found:
        return False
    try:
        want = isoparse(expected)
        got = parse_date(found)
    except (ValueError, OverflowError):
        return False
    days = {want.date()}
    if want.tzinfo is not None:
        days.add(want.astimezone(timezone.utc).date())
    if got.tzinfo is not None and want.tzinfo is not None:
        return got.astimezone(want.tzinfo).date() in days or got.astimezone(timezone.utc).date() in days
    return got.date() in days


def score(pages: list[Page], outputs: dict[str, Output]) -> dict[str, float]:
    """Each of METRICS, averaged over the pages it applies to."""
    rows = [(page, outputs.get(page.name, Output())) for page in pages]
    text_rows = [prf(out.text, page.text) for page, out in rows if tokens(page.text)]
    image_rows = [len(set(page.images) & {page.aliases.get(k, k) for k in out.images}) / len(page.images)
                  for page, out in rows if page.images]

    def share(check: Callable[[str | None, str], bool], attr: str) -> float:
        agree = [check(getattr(out, attr), getattr(page, attr)) for page, out in rows if getattr(page, attr)]
        return mean(agree) if agree else 0.0

    return {
        "precision": mean(r[0] for r in text_rows), "recall": mean(r[1] for r in text_rows),
        "f1": mean(r[2] for r in text_rows), "image_recall": mean(image_rows) if image_rows else 0.0,
        "title": share(title_agrees, "title"), "author": share(author_agrees, "author"),
        "date": share(date_agrees, "date"),
    }


def extraction_ms(pages: list[Page], extract: Callable[[str, str], object]) -> float:
    """Mean milliseconds of ``extract(html, url)`` per page, in this process."""
    start = time.process_time()
    for page in pages:
        extract(page.source.decode("utf-8", "replace"), REFERENCE_URL)
    return (time.process_time() - start) * 1000 / len(pages)


def _postarc_extract(html: str, url: str) -> object:
    from archive.extract import choose_body
    from archive.markdown_converter import to_markdown

    return to_markdown(choose_body("", url, html, url).html)


def _rounded(figures: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in figures.items()}


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="?", type=Path, default=DEFAULT_PAGES, help="folder of page folders")
    parser.add_argument("--json", action="store_true", help="last line of stdout: the figures as JSON")
    parser.add_argument("--keep", type=Path, help="archive here (kept) instead of a temporary folder")
    args = parser.parse_args(list(argv) if argv is not None else None)
    pages = load_pages(args.pages)
    if not pages:
        raise SystemExit(f"bench.pages: no page folders in {args.pages}")
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        sides = {
            "postarc": score(pages, run_postarc(pages, work)),
            "trafilatura": score(pages, run_trafilatura(pages)),
            "trafilatura markdown": score(pages, run_trafilatura(pages, output_format="markdown")),
            "trafilatura md+images": score(pages, run_trafilatura(pages, output_format="markdown",
                                                                  include_images=True, url=REFERENCE_URL)),
        }
    ms = {"postarc": extraction_ms(pages, _postarc_extract),
          "trafilatura": extraction_ms(pages, lambda html, url: trafilatura.extract(html))}
    print(f"{len(pages)} pages from {args.pages}")
    print(f"{'':24}" + "".join(f"{m:>13}" for m in METRICS) + f"{'ms/page':>10}")
    for side, figures in sides.items():
        print(f"{side:24}" + "".join(f"{figures[m]:13.3f}" for m in METRICS)
              + (f"{ms[side]:10.1f}" if side in ms else ""))
    if args.json:
        print(json.dumps({"pages": len(pages), "postarc": _rounded(sides["postarc"]),
                          "trafilatura": _rounded(sides["trafilatura"])}))


if __name__ == "__main__":
    main()
