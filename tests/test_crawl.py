"""End to end: a local aggregator crawled by the real engine into WARC files and Markdown posts."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.demo.server import Resource, SiteServer
from crawler.demo.site import build_routes, sources_yaml
from tests.helpers import postarc, posts_of, warc_records, warcio_check, write_sources
from tests.ports import refusing_port

FRONT_MATTER_KEYS = {"title", "categories", "author", "comments", "date", "link", "guid", "source",
                     "archived", "warc"}


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory):
    """One crawl of the demo aggregator, shared by the assertions below."""
    tmp = tmp_path_factory.mktemp("crawl")
    with SiteServer() as site:
        site.routes.update(build_routes(site.base))
        sources = write_sources(tmp, sources_yaml(site.base))
        run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp / "data"))
        yield tmp / "data", site, run


def test_crawl_exits_zero_and_reports(crawled):
    _archive, _site, run = crawled
    assert run.returncode == 0, run.stderr[-3000:]
    assert "demo-hot" in run.stderr and "posts: 5" in run.stderr


def test_every_entry_becomes_a_post_with_front_matter(crawled):
    archive, _site, _run = crawled
    posts = posts_of(archive)
    assert len(posts) == 5
    by_guid = {fm["guid"]: fm for fm, _body in posts.values()}
    assert set(by_guid) == {"demo-harbour", "demo-rust-release", "demo-dead-link",
                            "tag:demo,2024:atom-release-notes", "demo-json-feed-post"}
    for fm, body in posts.values():
        assert FRONT_MATTER_KEYS <= set(fm), fm
        assert fm["comments"] is False
        assert body.strip()
    # RFC 822 GMT, naive in the source's zone (Asia/Shanghai), ISO with offset.
    assert by_guid["demo-harbour"]["date"].isoformat() == "2022-04-29T00:12:15+00:00"
    assert by_guid["demo-rust-release"]["date"].isoformat() == "2024-07-25T06:08:07+00:00"
    assert by_guid["tag:demo,2024:atom-release-notes"]["date"].isoformat() == "2024-03-02T01:30:00+00:00"
    assert by_guid["demo-harbour"]["categories"] == ["新媒体", "示例", "热门"]
    assert by_guid["tag:demo,2024:atom-release-notes"]["categories"] == ["Demo Blog"]


def test_dates_are_written_as_utc_with_z(crawled):
    archive, _site, _run = crawled
    for md in (archive / "posts").rglob("*.md"):
        lines = md.read_text(encoding="utf-8").splitlines()
        date_line = next(line for line in lines if line.startswith("date: "))
        assert date_line.endswith("Z"), date_line


def test_dead_article_link_still_yields_the_post_from_the_feed(crawled):
    archive, _site, _run = crawled
    posts = {fm["guid"]: body for fm, body in posts_of(archive).values()}
    assert "feed 里带着全文" in posts["demo-dead-link"]


def test_images_are_saved_beside_the_post_and_linked_relatively(crawled):
    archive, _site, _run = crawled
    for rel, (fm, body) in posts_of(archive).items():
        assert fm.get("headimg"), rel
        image = (archive / "posts" / rel).parent / fm["headimg"]
        assert image.is_file() and image.read_bytes().startswith(b"\x89PNG"), image
        assert f"]({fm['headimg']})" in body


def test_code_blocks_keep_their_lines(crawled):
    archive, _site, _run = crawled
    body = next(b for fm, b in posts_of(archive).values() if fm["guid"] == "demo-rust-release")
    assert "static CONFIG: LazyLock<String> = LazyLock::new(|| {\n" in body
    assert "\n    std::env::var" in body


def test_every_warc_file_is_valid_closed_and_starts_with_warcinfo(crawled):
    archive, _site, _run = crawled
    warcio_check(archive)
    assert not list((archive / "warc").glob("*.open"))
    records = warc_records(archive)
    first_by_file = {}
    for name, rec, _payload in records:
        first_by_file.setdefault(name, rec.rec_type)
    assert set(first_by_file.values()) == {"warcinfo"}


def test_the_warcio_check_command_accepts_every_file(crawled):
    """The command line itself, not our in-process Checker (which gets archive.warc.compat's br decoder):
    content-encodings are asked for that every warcio decodes."""
    archive, _site, _run = crawled
    files = [str(p) for p in sorted((archive / "warc").glob("*.warc.gz"))]
    check = subprocess.run([sys.executable, "-c", "from warcio.cli import main; main()", "check", "-v", *files],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    assert "digest pass" in check.stdout and "fail" not in check.stdout.replace("digest pass", "")
    sent = {rec.http_headers.get_header("Accept-Encoding") for _n, rec, _p in warc_records(archive)
            if rec.rec_type == "request"}
    assert sent == {"gzip, deflate"}


def test_every_response_has_its_request_and_ip(crawled):
    archive, _site, _run = crawled
    records = warc_records(archive)
    responses = {rec.rec_headers["WARC-Record-ID"]: rec for _n, rec, _p in records if rec.rec_type == "response"}
    requests = {rec.rec_headers["WARC-Concurrent-To"] for _n, rec, _p in records if rec.rec_type == "request"}
    assert responses and set(responses) == requests
    for rec in responses.values():
        assert rec.rec_headers["WARC-IP-Address"] == "127.0.0.1"
        assert rec.rec_headers["WARC-Payload-Digest"].startswith("sha1:")
    uris = {rec.rec_headers["WARC-Target-URI"] for rec in responses.values()}
    assert any(u.endswith("/robots.txt") for u in uris)
    assert any(u.endswith("/img/harbour.png") for u in uris)
    assert any(u.endswith("/gone/dead-link") for u in uris)


def test_gzip_and_chunked_payloads_are_stored_as_sent(crawled):
    archive, site, _run = crawled
    stored = {rec.rec_headers["WARC-Target-URI"]: (rec, payload)
              for _n, rec, payload in warc_records(archive) if rec.rec_type == "response"}
    # Atom feed and article pages go out gzip-encoded; the WARC keeps the compressed bytes.
    for path in ("/atom.xml", "/posts/harbour.html"):
        rec, payload = stored[site.url(path)]
        assert payload == site.routes[path].wire_body()
        assert rec.http_headers.get_header("Content-Encoding") == "gzip"
        assert gzip.decompress(payload) == site.routes[path].body
    # The RSS feed goes out chunked: stored de-chunked, without a stale Transfer-Encoding.
    rec, payload = stored[site.url("/rss.xml")]
    assert payload == site.routes["/rss.xml"].body
    assert rec.http_headers.get_header("Transfer-Encoding") is None
    # Images are binary and untouched.
    rec, payload = stored[site.url("/img/chart.png")]
    assert payload == site.routes["/img/chart.png"].body


def test_each_post_has_a_conversion_record_citing_its_capture(crawled):
    archive, _site, _run = crawled
    records = warc_records(archive)
    ids = {rec.rec_headers["WARC-Record-ID"] for _n, rec, _p in records}
    conversions = [(rec, payload) for _n, rec, payload in records if rec.rec_type == "conversion"]
    assert len(conversions) == 5
    for rec, payload in conversions:
        assert rec.rec_headers["WARC-Refers-To"] in ids
        assert payload.startswith(b"---\n")


def test_hostile_titles_stay_inside_posts(site: SiteServer, tmp_path: Path):
    titles = ["../../../../etc/passwd", "..\\..\\evil", "/abs/path", "CON", "a\x00b\x07c",
              "---\ntitle: injected\n---", "it's \"quoted\": yes", "‮gnp.exe", "😀" * 300, ""]
    items = "".join(
        f"<item><title><![CDATA[{t}]]></title><link>{site.base}/p/{i}</link><guid>g{i}</guid>"
        f"<description>&lt;p&gt;body {i}&lt;/p&gt;</description></item>" for i, t in enumerate(titles))
    site.routes["/feed.xml"] = Resource(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode(),
        "application/rss+xml")
    sources = write_sources(tmp_path, f"sources:\n  - name: hostile\n    url: {site.base}/feed.xml\n")
    archive = tmp_path / "data"
    run = postarc("crawl", "--sources", str(sources), "--archive", str(archive), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    posts = posts_of(archive)
    assert len(posts) == len(titles)
    created = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(archive in p.parents or p == sources for p in created), created
    for rel, (fm, _body) in posts.items():
        assert "\x00" not in rel and "\u202e" not in rel and ".." not in rel
        assert "\n" not in fm["title"] and "\x00" not in fm["title"]
        assert len(Path(rel).name.encode()) < 255
    titles_out = sorted(fm["title"] for fm, _b in posts.values())
    assert "it's \"quoted\": yes" in titles_out
    assert "--- title: injected ---" in titles_out


def test_bad_sources_file_is_refused_naming_the_line(tmp_path: Path):
    sources = write_sources(tmp_path, "sources:\n  - name: ok\n    url: http://127.0.0.1:9/feed\n"
                                      "  - name: bad\n    url: ftp://nope\n")
    run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp_path / "data"))
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "postarc: bad sources file", f"{sources}:5: sources.1.url: url must be http(s)://… or rsshub://route"]
    assert not (tmp_path / "data" / "warc").exists()


def test_failed_source_gives_non_zero_exit_and_keeps_the_others(demo_site: SiteServer, tmp_path: Path):
    sources = write_sources(tmp_path, f"""sources:
  - name: good
    url: {demo_site.base}/feed.json
  - name: missing
    url: {demo_site.base}/no-such-feed.xml
  - name: refused
    url: http://127.0.0.1:{refusing_port()}/feed.xml
  - name: not-a-feed
    url: {demo_site.base}/posts/harbour.html
""")
    run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp_path / "data"))
    assert run.returncode == 3, run.stderr[-2000:]
    assert "source missing failed: failed: HTTP 404" in run.stderr
    assert "source refused failed" in run.stderr and "Connection" in run.stderr
    assert "source not-a-feed failed" in run.stderr
    assert len(posts_of(tmp_path / "data")) == 1


def test_demo_command(tmp_path: Path):
    """The demo keeps Scrapy's log in DIR/logs/ as crawl does, and ends with the table, the
    archive's layout and the next command to try."""
    run = postarc("demo", "--archive", "demo", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Dumping Scrapy stats" not in run.stderr + run.stdout and "[scrapy." not in run.stderr
    assert "dead-link failed (HTTP 404)" in run.stderr  # warnings still show
    (log,) = (tmp_path / "demo" / "logs").glob("crawl-*.log")
    assert "Dumping Scrapy stats" in log.read_text(encoding="utf-8")
    table = run.stdout.split("\n\n", 1)[0].splitlines()
    assert table[0].split() == ["source", "new", "upd", "same", "merged", "fail", "bytes", "status"]
    assert [row.split()[0] for row in table[1:]] == ["demo-hot", "demo-blog", "demo-zhihu"]
    assert "Archived 5 posts" in run.stdout
    for part in ("\n  posts/ ", "\n  warc/ ", "\n  indexes/ ", "\n  state.sqlite ", "\n  logs/ ", log.name):
        assert part in run.stdout
    assert run.stdout.rstrip().endswith("postarc replay --archive demo")
    warcio_check(tmp_path / "demo")


def test_no_console_is_open_or_even_loaded(crawled):
    """Scrapy's telnet console and remote control (both run Python code sent to them) stay off;
    the remote control is not even imported (crawler.consoles)."""
    archive, _site, _run = crawled
    log = next((archive / "logs").glob("*.log")).read_text(encoding="utf-8")
    enabled = log.split("Enabled extensions:", 1)[1].split("]", 1)[0]
    assert "CoreStats" in enabled and "RemoteControl" not in enabled and "TelnetConsole" not in enabled


def test_remote_control_loads_when_asked_for():
    from scrapy.settings import Settings

    from crawler.consoles import REMOTE_CONTROL, UnloadedRemoteControl

    for asked in (False, True):
        settings = Settings()
        settings.setmodule("crawler.settings", priority="project")
        settings.set("REMOTE_CONTROL_ENABLED", asked, priority="cmdline")
        UnloadedRemoteControl().update_settings(settings)
        assert (REMOTE_CONTROL in settings.getdict("EXTENSIONS_BASE")) is asked
