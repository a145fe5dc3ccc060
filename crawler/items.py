"""The item every spider yields and every pipeline fills in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from archive.charset import decode_html
from archive.enclosures import Enclosure
from archive.policy import content_hash
from archive.stories import Sketch
from archive.warc.writer import Written


@dataclass
class Post:
    """One post: what the feed (and the article page) said, then what the pipelines derived."""

    # From the spider.
    source: str
    feed_url: str
    title: str
    guid: str
    link: str | None
    author: str
    categories: list[str]
    feed_html: str
    fetched_at: datetime
    date_raw: str | None = None
    updated_raw: str | None = None
    timezone: str = "UTC"
    gmt_is: str | None = None
    enclosures: list[Enclosure] = field(default_factory=list)  # front matter ``enclosures:``
    page_url: str | None = None
    page_html: str | None = None  # the page as text, where the crawl process reads it (postarc archive)
    # The page as received (decompressed) and the encoding Scrapy settled for it: decoded where it
    # is read (``page_text``), for its body in the worker pool (``archive.extract.choose_body``).
    page_body: bytes | None = None
    page_encoding: str = "utf-8"
    page_error: str | None = None
    page_etag: str | None = None  # the page's validators, for the next revisit
    page_last_modified: str | None = None
    revisit: bool = False  # the page was fetched again though the feed entry is unchanged
    capture: Written | None = None  # the response record the post came from
    # When the Markdown was written: front matter ``archived``/``updated`` and the catalogue
    # share it (``postarc reextract`` sets it to the time it rebuilds).
    written_at: datetime | None = None
    requested_url: str | None = None  # ``postarc archive``: the URL asked for that gave this post
    rebuilt: bool = False  # made again by ``postarc reextract`` from the WARC files, not fetched
    # Per-source output options (None = the crawl's settings).
    images_mode: str | None = None
    image_proxy: str | None = None
    enclosures_mode: str = "link"  # the source's ``enclosures:``: link | local
    max_enclosure_bytes: int = 0  # the source's ``max_enclosure_mb``, in bytes (0: no cap)
    dedup: str = "across"  # one post per story across feeds, or "within" one feed only (sources.yaml)

    # From the pipelines.
    date: datetime | None = None
    date_source: str = ""
    path: str = ""  # posts/-relative path of the Markdown file, without ".md"
    is_update: bool = False
    content_hash: str = ""  # of the raw entry or page: unchanged means nothing to do
    version_hash: str = ""  # of the title and extracted body: unchanged means no new version
    earlier_versions: list[dict[str, str | None]] = field(default_factory=list)  # front matter versions:
    # Archivings in a row of this version that lacked its page or an image (the dedup pipeline
    # reads the count so far, the catalogue pipeline stores the new one).
    incomplete_runs: int = 0
    body_html: str = ""
    version_text: str = ""  # archive.versions.body_text(body_html): pipelines.extract sets both
    body_source: str = ""
    page_canonical: str | None = None  # the article page's <link rel="canonical"> (archive.stories)
    sketch: Sketch = (0, [])  # the body's fingerprint (archive.stories)
    # The story's feeds and categories when more than one feed carried it (pipelines.stories).
    story_sources: list[str] = field(default_factory=list)
    story_categories: list[str] = field(default_factory=list)
    image_urls: list[str] = field(default_factory=list)
    image_paths: dict[str, str] = field(default_factory=dict)  # image URL -> posts/-relative file
    image_named: dict[str, str] = field(default_factory=dict)  # image URL -> proxied URL the HTML named
    # Image URL -> its response record and HTTP head (status line, headers) as fetched this run.
    image_captures: dict[str, tuple[Written, str, str, list[tuple[str, str]]]] = field(default_factory=dict)
    image_failures: list[str] = field(default_factory=list)
    enclosure_files: dict[str, str] = field(default_factory=dict)  # enclosure URL -> posts/-relative file
    # The page and image URLs among those failures that a later run may get (a 503, a timeout;
    # not a 404): the post is archived again until it is whole (POSTARC_RETRY_INCOMPLETE).
    missing: list[str] = field(default_factory=list)
    markdown_file: str = ""  # posts/-relative
    markdown: str = ""
    warc_filename: str = ""

    def page_text(self) -> str | None:
        """The article page as text: ``page_html``, else ``page_body`` decoded as Scrapy decodes it."""
        if self.page_html is None and self.page_body is not None:
            return decode_html(self.page_body, self.page_encoding)
        return self.page_html


def post_hash(post: Post) -> str:
    """The post's ``archive.policy.content_hash`` (a post without feed text: its page's)."""
    return content_hash(post.title, post.link, post.feed_html or post.page_text())
