"""Enclosures (podcast audio, video, attachments) of RSS, Atom, Media RSS and JSON Feed entries
become front matter ``enclosures:``, read back by Hexo as the feed gave them."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import struct
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import lxml.html
import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.demo.server import Resource, SiteServer
from tests.conftest import require_tool
from tests.faults import MB, PeakMemory
from tests.helpers import Run, hexo_installed, hexo_load, postarc, posts_of, warc_records, warcio_check, write_sources
from tests.replay_helpers import Replay, start_replay
from tests.roundtrip import Renderers
from tests.test_browser import CHROMEDRIVER, CHROMIUM, webdriver

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
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
     xmlns:media="http://search.yahoo.com/mrss/">
<channel>
  <title>Local Show</title><link>{base}/</link><itunes:author>Ada Host</itunes:author>
  <itunes:image href="{base}/cover.jpg"/><itunes:category text="Technology"/><itunes:explicit>no</itunes:explicit>
  <item>
    <title>Episode 1: a tone</title><guid isPermaLink="false">ep-1</guid><link>{base}/ep1</link>
    <pubDate>Tue, 05 Mar 2024 08:00:00 GMT</pubDate><itunes:duration>00:00:01</itunes:duration>
    <itunes:author>Ada Host</itunes:author><itunes:image href="{base}/ep1.jpg"/><itunes:episode>1</itunes:episode>
    <description>A second of A440.</description>
    <enclosure url="{media}/audio/ep1.wav" length="{wav_length}" type="audio/wav"/>
    <media:content url="{media}/audio/ep1-gzip.wav" type="audio/wav"/>
  </item>
  <item>
    <title>Episode 2: too long</title><guid isPermaLink="false">ep-2</guid>
    <pubDate>Tue, 12 Mar 2024 08:00:00 GMT</pubDate><itunes:duration>03:00:00</itunes:duration>
    <description>Over the cap, by its Content-Length.</description>
    <enclosure url="{media}/audio/ep2.mp3" length="0" type="audio/mpeg"/>
  </item>
  <item>
    <title>Episode 3: a stream</title><guid isPermaLink="false">ep-3</guid>
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
EPISODE_PAGE = """<!doctype html><html><head><title>Episode 1</title></head><body><article><h1>Episode 1: a tone</h1>
<p>A second of A440, to listen to here.</p><audio controls src="{media}/audio/ep1.wav"></audio></article></body></html>"""
OVER_CAP = 2 * MB  # the test's max_enclosure_mb is 1


@pytest.fixture(scope="module")
def podcast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, SiteServer, SiteServer, Run]]:
    """One crawl of a podcast with ``enclosures: local`` (the feed private: a key for its own host),
    its audio on another origin; two episodes over ``max_enclosure_mb``."""
    tmp = tmp_path_factory.mktemp("podcast")
    with SiteServer() as site, SiteServer() as media:
        media.routes.update({
            "/audio/ep1.wav": Resource(WAV, "audio/wav"),
            "/audio/ep1-gzip.wav": Resource(WAV, "audio/wav", gzip=True),  # though asked for identity
            "/audio/ep2.mp3": Resource(bytes(OVER_CAP), "audio/mpeg"),
            "/audio/ep3.mp3": Resource(bytes(OVER_CAP), "audio/mpeg", chunked=True),
        })
        site.routes["/ep1"] = Resource(EPISODE_PAGE.format(media=media.base).encode())
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
    follow_links: true
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
                                 "file": f"{slug}/ep1.wav"},
                                {"url": f"{media.base}/audio/ep1-gzip.wav", "type": "audio/wav",
                                 "file": f"{slug}/ep1-gzip.wav"}]
    folder = archive / "posts" / Path(path).parent / slug
    assert (folder / "ep1.wav").read_bytes() == WAV
    assert (folder / "ep1-gzip.wav").read_bytes() == WAV  # its gzip content-encoding undone
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
    (row,) = [line.split() for line in run.stderr.splitlines() if line.startswith("show ")]
    assert row[1:6] == ["3", "0", "0", "0", "2"]  # new, updated, same, merged, and the two enclosures failed
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
            assert [a.get("src") for a in audio] == [f"{slug}/ep1.wav", f"{slug}/ep1-gzip.wav"], html
            assert audio[0].get("controls") is not None
            assert audio[0].getparent().xpath("figcaption/a/@href") == [f"{slug}/ep1.wav"]
            assert audio[0].getparent().tag == "figure"
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


# -- a 300 MB enclosure, never whole in memory ------------------------------------------------

BIG = 300 * MB
PIECE = MB


def big_piece(i: int) -> bytes:
    """Piece ``i`` of the generated body: cheap to make, and no two pieces alike (a body put
    together in the wrong order, or cut, does not compare equal)."""
    return i.to_bytes(4, "big") * (PIECE // 4)


class _BigHandler(BaseHTTPRequestHandler):
    """Serves /big.mp3: 300 MB made on the fly (never on disk or whole in this process)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        if self.path != "/big.mp3":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", str(BIG))
        self.end_headers()
        for i in range(BIG // PIECE):
            self.wfile.write(big_piece(i))

    def log_message(self, *args: object) -> None:
        pass


def warc_headers(archive: Path) -> Iterator[tuple[str, object]]:
    """(file name, record) of every record, its payload left unread."""
    for path in sorted((archive / "warc").glob("*.warc.gz")):
        with path.open("rb") as f:
            for rec in ArchiveIterator(f):
                yield path.name, rec


def test_a_300_mb_enclosure_is_never_whole_in_memory(site: SiteServer, tmp_path: Path):
    big = ThreadingHTTPServer(("127.0.0.1", 0), _BigHandler)
    threading.Thread(target=big.serve_forever, daemon=True).start()
    try:
        media = f"http://127.0.0.1:{big.server_address[1]}"
        site.routes["/feed.xml"] = Resource(f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Long</title>
<item><title>The long one</title><guid>long-1</guid><description>Three hundred megabytes.</description>
<enclosure url="{media}/big.mp3" length="{BIG}" type="audio/mpeg"/></item></channel></rss>""".encode(),
                                            "application/rss+xml")
        sources = write_sources(tmp_path, f'sources:\n  - {{name: long, url: "{site.base}/feed.xml", enclosures: local}}\n')
        archive = tmp_path / "data"
        proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(sources),
                                 "--archive", str(archive)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with PeakMemory(proc.pid) as memory:
            stdout, stderr = proc.communicate(timeout=300)
    finally:
        big.shutdown()
        big.server_close()
    assert proc.returncode == 0, stderr[-3000:]
    # Any process that held the body whole (Scrapy's BytesIO, a record made in memory, a
    # read() before the copy) would have a high-water mark above the body's size.
    assert memory.largest < BIG * 2 // 3, f"a process of the crawl peaked at {memory.largest // MB} MB"
    (path, (fm, _body)), = posts_of(archive).items()
    saved = archive / "posts" / Path(path).parent / fm["enclosures"][0]["file"]
    with saved.open("rb") as f:
        assert all(f.read(PIECE) == big_piece(i) for i in range(BIG // PIECE)) and f.read() == b""
    # The WARC holds it whole (warcio check of a streamed record: the podcast test above).
    sizes = [rec.rec_headers.get_header("Content-Length") for _f, rec in warc_headers(archive)
             if rec.rec_type == "response" and rec.rec_headers.get_header("WARC-Target-URI") == f"{media}/big.mp3"]
    assert len(sizes) == 1 and int(sizes[0]) > BIG
    # Replay: the last megabyte of the record, read through but not held.
    server = start_replay(archive)
    try:
        with PeakMemory(server.proc.pid) as replay_memory:
            status, headers, body = server.get(f"/web/2030id_/{media}/big.mp3", headers={"Range": f"bytes=-{PIECE}"})
    finally:
        server.stop()
    assert (status, headers["Content-Range"]) == (206, f"bytes {BIG - PIECE}-{BIG - 1}/{BIG}")
    assert body == big_piece(BIG // PIECE - 1)
    assert replay_memory.largest < BIG // 2, f"the replay peaked at {replay_memory.largest // MB} MB"


# -- replay: ranges, and playing in Chromium ----------------------------------------------------


def chromium():
    """Headless Chromium as tests/test_browser.py drives it, allowed to play media unasked."""
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    return driver


@pytest.fixture(scope="module")
def replay(podcast) -> Iterator[Replay]:
    server = start_replay(podcast[0])
    yield server
    server.stop()


def test_replay_serves_byte_ranges_of_the_capture_and_of_the_file_beside_the_post(podcast, replay: Replay):
    archive, _site, media, _run = podcast
    (post,) = [p for p, (fm, _b) in posts_of(archive).items() if fm["title"] == "Episode 1: a tone"]
    n = len(WAV)
    for path in (f"/web/2030id_/{media.base}/audio/ep1.wav", f"/web/2030/{media.base}/audio/ep1.wav",
                 f"/posts/{post[:-3]}/ep1.wav"):
        status, headers, body = replay.get(path)
        assert (status, headers["Accept-Ranges"], body) == (200, "bytes", WAV)
        assert headers["Content-Type"] in ("audio/wav", "audio/x-wav")  # as archived; by extension beside the post
        for asked, first, last in (("bytes=0-", 0, n - 1), ("bytes=100-199", 100, 199), ("bytes=-44", n - 44, n - 1),
                                   (f"bytes={n - 10}-{n + 500}", n - 10, n - 1)):
            status, headers, body = replay.get(path, headers={"Range": asked})
            assert status == 206, (path, asked)
            assert headers["Content-Range"] == f"bytes {first}-{last}/{n}"
            assert int(headers["Content-Length"]) == last - first + 1 and body == WAV[first:last + 1]
        for asked in (f"bytes={n}-", "bytes=-0"):
            status, headers, _body = replay.get(path, headers={"Range": asked})
            assert (status, headers["Content-Range"]) == (416, f"bytes */{n}"), (path, asked)
        # Several ranges, or nonsense: the whole payload, as the RFC allows.
        for asked in ("bytes=0-1,5-6", "bytes=9-3", "pages=1-2"):
            assert replay.get(path, headers={"Range": asked})[0] == 200
        status, headers, body = replay.get(path, method="HEAD", headers={"Range": "bytes=10-19"})
        assert (status, headers["Content-Length"], body) == (206, "10", b"")


def test_chromium_plays_the_enclosure_from_the_post_and_from_the_capture(podcast, replay: Replay):
    require_tool("selenium (the test extra: pip install -e '.[test]')", webdriver)
    require_tool(f"Chromium at {CHROMIUM} (tests/install-tools: apt-get install chromium)", CHROMIUM.exists())
    require_tool(f"chromedriver at {CHROMEDRIVER} (tests/install-tools: apt-get install chromium-driver)",
                 CHROMEDRIVER.exists())
    archive, site, _media, _run = podcast
    (post,) = [p for p, (fm, _b) in posts_of(archive).items() if fm["title"] == "Episode 1: a tone"]
    driver = chromium()
    try:
        # The post page: its <audio> plays the file saved beside the post. The episode's page,
        # replayed: its <audio> plays the WARC's record, fed by Range requests.
        for page in (f"/posts/{post[:-3]}", f"/web/2030/{site.base}/ep1"):
            driver.get(replay.base + page)
            state = driver.execute_async_script("""
                const done = arguments[arguments.length - 1];
                const media = document.querySelector('audio, video');
                if (!media) { done(null); return; }
                const report = () => done({ready: media.readyState, duration: media.duration,
                                           error: media.error && media.error.code});
                if (media.readyState >= 1) report();
                else { media.addEventListener('loadedmetadata', report); media.addEventListener('error', report);
                       media.load(); }""")
            assert state is not None, f"no player on {page}"
            assert state["error"] is None and state["ready"] >= 1, (page, state)
            assert abs(state["duration"] - 1.0) < 0.01, (page, state)
    finally:
        driver.quit()
    log = replay.log.read_text(encoding="utf-8", errors="replace")
    assert re.search(r'"GET /web/2030/\S+/audio/ep1.wav HTTP/1.1" 206', log), log[-2000:]


def test_a_rebuild_saves_the_enclosure_again_from_the_warc(podcast, tmp_path: Path):
    archive = tmp_path / "data"
    shutil.copytree(podcast[0], archive)
    (post,) = [p for p, (fm, _b) in posts_of(archive).items() if fm["title"] == "Episode 1: a tone"]
    saved = [archive / "posts" / post[:-3] / name for name in ("ep1.wav", "ep1-gzip.wav")]
    for path in saved:
        path.unlink()
    run = postarc("reextract", "--archive", str(archive), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert [path.read_bytes() for path in saved] == [WAV, WAV] and "Traceback" not in run.stderr
    (fm, body), (before, _body) = posts_of(archive)[post], posts_of(podcast[0])[post]
    assert fm["enclosures"] == before["enclosures"] and '<audio controls preload="metadata" src=' in body


def test_an_enclosure_that_failed_for_now_is_fetched_by_the_next_run(site: SiteServer, tmp_path: Path):
    site.routes["/audio/ep.wav"] = [Resource(b"busy", "text/plain", status=503)] * 3 + [Resource(WAV, "audio/wav")]
    site.routes["/feed.xml"] = Resource(f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Busy</title>
<item><title>Busy CDN</title><guid>busy-1</guid><description>Later.</description>
<enclosure url="{site.base}/audio/ep.wav" type="audio/wav"/></item></channel></rss>""".encode(), "application/rss+xml")
    sources = write_sources(tmp_path, f'sources:\n  - {{name: busy, url: "{site.base}/feed.xml", enclosures: local}}\n')
    archive = tmp_path / "data"
    crawl = ("crawl", "--sources", str(sources), "--archive", str(archive), "-s", "POSTARC_RETRY_BACKOFF=0.05")
    first = postarc(*crawl)
    assert first.returncode == 0 and f"enclosure {site.base}/audio/ep.wav failed (HTTP 503)" in first.stderr
    (fm, _body), = posts_of(archive).values()
    assert "file" not in fm["enclosures"][0]
    second = postarc(*crawl)
    assert second.returncode == 0, second.stderr[-3000:]
    (path, (fm, body)), = posts_of(archive).items()
    assert fm["enclosures"][0]["file"].endswith("/ep.wav") and "<audio" in body
    assert (archive / "posts" / Path(path).parent / fm["enclosures"][0]["file"]).read_bytes() == WAV
