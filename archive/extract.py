"""Choosing a post's body: the feed's HTML or the article page's main text.

Pure functions of strings, so a process pool can run them off Scrapy's reactor thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import trafilatura

from archive.html import clean_html, find_images, text_blocks

# A feed body shorter than this share of the page's main text is taken for a summary.
SUMMARY_RATIO = 0.6


@dataclass(frozen=True)
class Body:
    html: str  # cleaned HTML of the post body
    source: str  # "feed" or "page"
    image_urls: list[str]


def extract_page(page_html: str, page_url: str | None) -> str:
    """The main content of an article page as HTML (trafilatura), '' if none was found."""
    result = trafilatura.extract(
        page_html, url=page_url, output_format="html", include_images=True, include_links=True,
        include_tables=True, include_formatting=True, include_comments=False, favor_recall=True,
    )
    return result or ""


def _text_len(html: str) -> int:
    return sum(len(b) for b in text_blocks(html))


def choose_body(feed_html: str, base_url: str | None, page_html: str | None = None,
                page_url: str | None = None) -> Body:
    """The body that holds the post.

    The feed's HTML wins unless it is only a summary of what the page carries: a page that is
    boilerplate-only or truncated never replaces a complete feed body.
    """
    feed = clean_html(feed_html, base_url)
    chosen, source = feed, "feed"
    if page_html:
        page = clean_html(extract_page(page_html, page_url), page_url)
        if _text_len(feed) < SUMMARY_RATIO * _text_len(page):
            chosen, source = page, "page"
    images = [img.url for img in find_images(chosen)]
    return Body(html=chosen, source=source, image_urls=images)
