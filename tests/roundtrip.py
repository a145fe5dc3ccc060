"""What a reader sees: the text a browser shows for some HTML, and Markdown rendered for real.

``shown_blocks`` reads HTML as a browser does (lexbor, an HTML5 parser, through selectolax; not
archive.html, the code under test) and returns the text of each block. ``Renderers`` renders
Markdown with marked as a Hexo site configures it (hexo-renderer-marked at its defaults: GFM,
breaks, autolinks, smartypants), in one Node process for the whole session, and with markdown-it
in CommonMark mode as ``postarc replay`` does.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from markdown_it import MarkdownIt
from selectolax.lexbor import LexborHTMLParser

from tests.helpers import HEXO

# Elements a browser does not draw the text of (scripting on: <noscript> too). Embedded documents
# and SVG are not text of the post's body: postarc drops them.
HIDDEN = frozenset({"head", "title", "script", "style", "template", "noscript", "iframe",
                    "embed", "svg", "math", "select", "textarea", "button", "input", "-comment", "!doctype"})
# Elements displayed as blocks by a browser's default style sheet, and line breaks.
BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog",
    "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hgroup", "hr", "legend", "li", "listing", "main", "menu", "nav", "ol", "p",
    "plaintext", "pre", "search", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "ul", "xmp", "br", "html",
})
# smartypants (marked, as Hexo configures it) turns straight quotes, "--", "---" and "..." into
# typographic ones: both sides are folded to the plain forms.
_TYPOGRAPHY = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2014": "---",
                             "\u2013": "--", "\u2026": "..."})
_SPACE = re.compile(r"\s+")
# Markdown syntax that a reader should never see unless the source showed it.
SYNTAX = ("**", "__", "\\", "](", "![", "``", "<", "&#", "&amp;", "&lt;")


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # drawn as nothing


def fold(text: str) -> str:
    return _SPACE.sub(" ", _CONTROL.sub("", text.translate(_TYPOGRAPHY))).strip()


def shown_blocks(html: str) -> list[str]:
    """The text of each block a browser draws for ``html`` (a fragment placed in a page's body)."""
    blocks: list[str] = []
    parts: list[str] = []
    pre = 0  # inside <pre>: each line of code is a block (a <br> there is a line too)

    def flush() -> None:
        text = fold("".join(parts))
        if text:
            blocks.append(text)
        parts.clear()

    stack: list = _children_of(LexborHTMLParser(html, is_fragment=True, fragment_tag="body").root)[::-1]  # nodes, and the tag names of blocks to close; iterative: posts nest deep
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            flush()
            pre -= node == "pre"
        elif node.tag == "-text":
            lines = (node.text_content or "").split("\n") if pre else [node.text_content or ""]
            for i, line in enumerate(lines):
                if i:
                    flush()
                parts.append(line)
        elif node.tag not in HIDDEN and "hidden" not in node.attributes:
            if node.tag in BLOCKS:
                flush()
                stack.append(node.tag)
                pre += node.tag == "pre"
            stack.extend(_children_of(node.child)[::-1])
    flush()
    return blocks


def _children_of(first):  # node.iter() walks a fragment's top-level nodes wrong: follow the links
    children = []
    while first is not None:
        children.append(first)
        first = first.next
    return children


class Renderers:
    """marked (in Hexo, through Node) and markdown-it (CommonMark, as the replay renders posts)."""

    def __init__(self, site: Path) -> None:
        (site / "source").mkdir(parents=True, exist_ok=True)
        (site / "node_modules").symlink_to(HEXO / "node_modules")
        shutil.copy(HEXO / "package.json", site / "package.json")
        (site / "_config.yml").write_text("title: postarc\n")
        self._node = subprocess.Popen(["node", str(HEXO / "render_markdown.js"), str(site)], cwd=site, text=True,
                                      encoding="utf-8", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._markdown_it = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

    def marked(self, documents: list[str]) -> list[str]:
        """Every document through Hexo's renderer: all written first, then all read (one round trip)."""
        assert self._node.stdin and self._node.stdout
        self._node.stdin.write("".join(json.dumps(doc) + "\n" for doc in documents))
        self._node.stdin.flush()
        out = []
        for _ in documents:
            line = self._node.stdout.readline()
            assert line, f"node render_markdown.js exited ({self._node.poll()})"
            out.append(json.loads(line))
        return out

    def markdown_it(self, documents: list[str]) -> list[str]:
        return [self._markdown_it.render(doc) for doc in documents]

    def close(self) -> None:
        if self._node.stdin:
            self._node.stdin.close()
        self._node.wait(timeout=30)


# Cloudflare's e-mail masking, which a browser running the page's script undoes (and postarc too).
_CF_EMAIL = re.escape("[email\xa0protected]").replace(re.escape("\xa0"), r"\s")


def _same_block(want: str, got: str) -> bool:
    if "protected]" not in want:
        return want == got
    pattern = r"\S+@\S+".join(re.escape(part) for part in re.split(_CF_EMAIL, want))
    return re.fullmatch(pattern, got) is not None


def differences(source_html: str, markdown: str, rendered: str) -> list[str]:
    """How what the reader sees of ``rendered`` differs from what a browser shows of the source."""
    want, got = shown_blocks(source_html), shown_blocks(rendered)
    problems = []
    if len(want) != len(got) or not all(map(_same_block, want, got)):
        first = next((i for i, (a, b) in enumerate(zip(want, got)) if not _same_block(a, b)), min(len(want), len(got)))
        problems.append(f"block {first}: source shows {want[first:first + 2]!r}, rendered {got[first:first + 2]!r}")
    source_text, shown_text = " ".join(want), " ".join(got)
    for syntax in SYNTAX:
        if shown_text.count(syntax) > source_text.count(syntax):
            problems.append(f"{syntax!r} shows as text")
    return problems
