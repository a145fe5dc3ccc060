"""Enclosures (podcast audio, video, attachments) of RSS, Atom, Media RSS and JSON Feed entries
become front matter ``enclosures:``, read back by Hexo as the feed gave them."""

from __future__ import annotations

import json
from pathlib import Path

from crawler.demo.server import Resource, SiteServer
from tests.conftest import require_tool
from tests.helpers import hexo_installed, hexo_load, postarc, posts_of, write_sources

PODCAST = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>The Archive Show</title><link>{base}/</link>
  <itunes:author>Ada Host</itunes:author><itunes:explicit>false</itunes:explicit>
  <itunes:image href="{base}/cover.jpg"/><itunes:category text="Technology"/>
  <item>
    <title>Episode 12: WARC files</title><guid isPermaLink="false">ep-12</guid>
    <link>{base}/ep12</link><pubDate>Tue, 05 Mar 2024 08:00:00 GMT</pubDate>
    <itunes:duration>00:42:17</itunes:duration><itunes:episode>12</itunes:episode>
    <itunes:image href="{base}/ep12.jpg"/>
    <description>Show notes: what a WARC file holds.</description>
    <enclosure url="{base}/media/ep12.mp3" length="40599296" type="audio/mpeg"/>
  </item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
  <title>Video blog</title><id>urn:vb</id><updated>2024-03-05T08:00:00Z</updated>
  <entry>
    <title>Talk: feeds</title><id>urn:vb:1</id><updated>2024-03-05T08:00:00Z</updated>
    <link rel="alternate" href="{base}/talk"/>
    <link rel="enclosure" href="{base}/media/talk.webm" type="video/webm" length="1048576" title="The talk, WebM"/>
    <media:content url="{base}/media/talk.mp4" type="video/mp4" fileSize="2097152" medium="video"/>
    <media:content url="{base}/media/talk.webm" type="video/webm"/>
    <content type="html">&lt;p&gt;The talk, in two formats.&lt;/p&gt;</content>
  </entry>
</feed>"""


def json_feed(base: str) -> bytes:
    return json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "Files",
        "items": [{"id": "f1", "url": f"{base}/f1", "title": "Slides", "content_html": "<p>Slides attached.</p>",
                   "date_published": "2024-03-05T08:00:00Z",
                   "attachments": [{"url": f"{base}/media/slides.pdf", "mime_type": "application/pdf",
                                    "title": "Slides: PDF", "size_in_bytes": 5120},
                                   {"url": "ftp://old.example/slides.pdf", "mime_type": "application/pdf"}]}],
    }).encode()


def test_enclosures_of_every_feed_kind_reach_the_front_matter(site: SiteServer, tmp_path: Path):
    site.routes.update({
        "/podcast.xml": Resource(PODCAST.format(base=site.base).encode(), "application/rss+xml"),
        "/atom.xml": Resource(ATOM.format(base=site.base).encode(), "application/atom+xml"),
        "/feed.json": Resource(json_feed(site.base), "application/feed+json"),
    })
    sources = write_sources(tmp_path, f"""\
sources:
  - {{name: podcast, url: "{site.base}/podcast.xml"}}
  - {{name: video, url: "{site.base}/atom.xml"}}
  - {{name: files, url: "{site.base}/feed.json"}}
""")
    archive = tmp_path / "data"
    run = postarc("crawl", "--sources", str(sources), "--archive", str(archive))
    assert run.returncode == 0, run.stderr[-3000:]
    by_title = {fm["title"]: fm for fm, _body in posts_of(archive).values()}
    media = f"{site.base}/media"
    expected = {
        "Episode 12: WARC files": [{"url": f"{media}/ep12.mp3", "type": "audio/mpeg", "length": 40599296}],
        "Talk: feeds": [{"url": f"{media}/talk.webm", "type": "video/webm", "length": 1048576, "title": "The talk, WebM"},
                        {"url": f"{media}/talk.mp4", "type": "video/mp4", "length": 2097152}],
        "Slides": [{"url": f"{media}/slides.pdf", "type": "application/pdf", "length": 5120, "title": "Slides: PDF"}],
    }
    assert {t: fm.get("enclosures") for t, fm in by_title.items()} == expected
    assert not any(path.startswith("/media/") for path, _h in site.log)  # link mode: not fetched
    require_tool("Hexo's node modules in tests/hexo (tests/install-tools: npm ci --prefix tests/hexo)",
                 hexo_installed())
    loaded = {p["title"]: p["enclosures"] for p in hexo_load(archive / "posts", tmp_path / "site")}
    assert loaded == expected  # Hexo reads the list as written
