"""Enclosures (podcast audio, video, attachments) of RSS, Atom, Media RSS and JSON Feed entries
become front matter ``enclosures:``, read back by Hexo as the feed gave them."""

from __future__ import annotations

import io
import json
import math
import struct
import wave
from collections.abc import Iterator
from pathlib import Path

import lxml.html
import pytest

from crawler.demo.server import Resource, SiteServer
from tests.conftest import require_tool
from tests.helpers import Run, hexo_installed, hexo_load, postarc, posts_of, warc_records, warcio_check, write_sources
from tests.roundtrip import Renderers

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


# -- enclosures: local ------------------------------------------------------------------------

ITUNES_FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel>
  <title>Local Show</title><link>{base}/</link><itunes:author>Ada Host</itunes:author>
  <itunes:image href="{base}/cover.jpg"/><itunes:category text="Technology"/><itunes:explicit>no</itunes:explicit>
  <item>
    <title>Episode 1: a tone</title><guid isPermaLink="false">ep-1</guid><link>{base}/ep1</link>
    <pubDate>Tue, 05 Mar 2024 08:00:00 GMT</pubDate><itunes:duration>00:00:01</itunes:duration>
    <itunes:author>Ada Host</itunes:author><itunes:image href="{base}/ep1.jpg"/><itunes:episode>1</itunes:episode>
    <description>A second of A440.</description>
    <enclosure url="{media}/audio/ep1.wav" length="{wav_length}" type="audio/wav"/>
  </item>
  <item>
    <title>Episode 2: too long</title><guid isPermaLink="false">ep-2</guid><link>{base}/ep2</link>
    <pubDate>Tue, 12 Mar 2024 08:00:00 GMT</pubDate><itunes:duration>03:00:00</itunes:duration>
    <description>Over the cap, by its Content-Length.</description>
    <enclosure url="{media}/audio/ep2.mp3" length="0" type="audio/mpeg"/>
  </item>
  <item>
    <title>Episode 3: a stream</title><guid isPermaLink="false">ep-3</guid><link>{base}/ep3</link>
    <pubDate>Tue, 19 Mar 2024 08:00:00 GMT</pubDate>
    <description>Over the cap by the bytes received: no Content-Length.</description>
    <enclosure url="{media}/audio/ep3.mp3" type="audio/mpeg"/>
  </item>
</channel></rss>"""


def tone_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A short A440 tone, 8 kHz mono 16-bit PCM: a file Chromium plays (audio.duration == seconds)."""
    frames = b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * i / rate)))
                      for i in range(int(seconds * rate)))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


WAV = tone_wav()
OVER_CAP = 2 * 1024 * 1024  # the test's max_enclosure_mb is 1


@pytest.fixture(scope="module")
def podcast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, SiteServer, SiteServer, Run]]:
    """One crawl of a podcast with ``enclosures: local`` (the feed private: a key for its own host),
    its audio on another origin; two episodes over ``max_enclosure_mb``."""
    tmp = tmp_path_factory.mktemp("podcast")
    with SiteServer() as site, SiteServer() as media:
        media.routes.update({
            "/audio/ep1.wav": Resource(WAV, "audio/wav"),
            "/audio/ep2.mp3": Resource(bytes(OVER_CAP), "audio/mpeg"),
            "/audio/ep3.mp3": Resource(bytes(OVER_CAP), "audio/mpeg", chunked=True),
        })
        site.routes["/podcast.xml"] = Resource(
            ITUNES_FEED.format(base=site.base, media=media.base, wav_length=len(WAV)).encode(), "application/rss+xml")
        secrets = tmp / "secrets.yaml"
        secrets.write_text("FEED_KEY: k-3f9a1c\n")
        secrets.chmod(0o600)
        sources = write_sources(tmp, f"""\
defaults:
  enclosures: local
  max_enclosure_mb: 1
sources:
  - name: show
    url: "{site.base}/podcast.xml"
    headers: {{X-Api-Key: "${{FEED_KEY}}"}}
""")
        archive = tmp / "data"
        run = postarc("crawl", "--sources", str(sources), "--archive", str(archive), "--secrets", str(secrets))
        assert run.returncode == 0, run.stderr[-3000:]
        yield archive, site, media, run


def test_a_podcast_with_local_enclosures(podcast, tmp_path: Path):
    archive, site, media, run = podcast
    posts = {fm["title"]: (path, fm, body) for path, (fm, body) in posts_of(archive).items()}
    path, fm, body = posts["Episode 1: a tone"]
    slug = Path(path).stem
    assert fm["enclosures"] == [{"url": f"{media.base}/audio/ep1.wav", "type": "audio/wav", "length": len(WAV),
                                 "file": f"{slug}/ep1.wav"}]
    saved = archive / "posts" / Path(path).parent / slug / "ep1.wav"
    assert saved.read_bytes() == WAV
    # The WARC holds it as a response record like any other, whole.
    records = {rec.rec_headers.get_header("WARC-Target-URI"): (rec, payload) for _f, rec, payload in warc_records(archive)
               if rec.rec_type == "response"}
    rec, payload = records[f"{media.base}/audio/ep1.wav"]
    assert payload.endswith(WAV) and rec.http_headers.get_header("Content-Type") == "audio/wav"
    warcio_check(archive)
    # Over the cap: links only, one warning line each, nothing beside the post, no record.
    for title, name in (("Episode 2: too long", "ep2.mp3"), ("Episode 3: a stream", "ep3.mp3")):
        path2, fm2, body2 = posts[title]
        assert [set(e) for e in fm2["enclosures"]] == [{"url", "type"} | ({"length"} if name == "ep2.mp3" else set())]
        assert not (archive / "posts" / Path(path2).parent / Path(path2).stem / name).exists()
        assert "<audio" not in body2
        assert f"{media.base}/audio/{name}" not in records
        assert f"enclosure {media.base}/audio/{name} failed (too large: more than max_enclosure_mb (1)); " \
               "the post links it" in run.stderr
    assert "Traceback" not in run.stderr
    assert not list((archive / "posts").rglob(".postarc-tmp-*"))
    # The feed's key went to the feed's own host, and not to the media host.
    assert all(h.get("X-Api-Key") == "k-3f9a1c" for p, h in site.log if p == "/podcast.xml")
    assert media.log and not any("X-Api-Key" in h for _p, h in media.log)
    # The reader sees a player: Hexo's marked and the replay's markdown-it render the <audio>.
    require_tool("Hexo's node modules in tests/hexo (tests/install-tools: npm ci --prefix tests/hexo)",
                 hexo_installed())
    renderers = Renderers(tmp_path / "site")
    try:
        for html in (*renderers.marked([body]), *renderers.markdown_it([body])):
            audio = lxml.html.fragment_fromstring(html, create_parent="div").xpath("//figure/audio")
            assert [a.get("src") for a in audio] == [f"{slug}/ep1.wav"], html
            assert audio[0].get("controls") is not None
            assert audio[0].getparent().xpath("figcaption/a/@href") == [f"{slug}/ep1.wav"]
    finally:
        renderers.close()


def test_a_bad_enclosures_key_is_refused_before_any_request(site: SiteServer, tmp_path: Path):
    sources = write_sources(tmp_path, f"""\
defaults:
  enclosures: embed
sources:
  - {{name: show, url: "{site.base}/podcast.xml"}}
  - {{name: other, url: "{site.base}/other.xml", enclosures: local, max_enclosure_mb: 0}}
""")
    run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp_path / "data"))
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert f"{sources}:2: defaults.enclosures: Input should be 'link' or 'local'" in run.stderr
    assert f"{sources}:5: sources.1.max_enclosure_mb: Input should be greater than or equal to 1" in run.stderr
    assert not site.log
