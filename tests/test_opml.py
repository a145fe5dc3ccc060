"""``postarc sources import | export | list``: OPML as five feed readers write it, in and out.

The fixtures in tests/opml/ follow the shapes FreshRSS, Miniflux, Feedly, Inoreader and
NetNewsWire export (folders as outlines, OPML 1.0 to 2.0, their own attributes).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from crawler.demo.server import Resource, SiteServer
from crawler.sources import load_sources
from tests.helpers import postarc, write_sources

OPML = Path(__file__).parent / "opml"

SOURCES = """\
# my feeds: kept as written
rsshub: https://rsshub.app
defaults:
  every: 1h   # hourly
sources:
  - name: lwn          # already here
    url: https://lwn.net/headlines/rss
    categories: [Linux]
"""


def test_five_readers_exports_import_with_folders_sites_and_comments_kept(tmp_path: Path):
    sources = write_sources(tmp_path, SOURCES)
    outputs = []
    for reader in ("freshrss", "miniflux", "feedly", "inoreader", "netnewswire"):
        run = postarc("sources", "import", str(OPML / f"{reader}.opml"), "--sources", str(sources))
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout)
    text = sources.read_text(encoding="utf-8")
    assert text.startswith(SOURCES.replace("  - name: lwn", "  - name: lwn")), text  # nothing above moved
    assert "# hourly" in text and "# already here" in text
    by_url = {s.url: s for s in load_sources(sources).sources}
    assert by_url["https://lwn.net/headlines/rss"].name == "lwn"  # kept, not added twice
    assert "skipped  https://lwn.net/headlines/rss  (already listed)" in outputs[0] + outputs[1]
    ars = by_url["https://feeds.arstechnica.com/arstechnica/index"]
    assert (ars.name, ars.categories, ars.site) == ("ars-technica", ["Science & Tech"], "https://arstechnica.com/")
    assert by_url["https://sspai.com/feed"].name == "少数派"
    assert by_url["https://sspai.com/feed"].categories == ["设计"]
    # Inoreader's two feeds of one title get two names; NetNewsWire's nesting gives two categories.
    assert by_url["https://daringfireball.net/feeds/json"].name == "daring-fireball-2"
    assert by_url["https://swift.org/atom.xml"].categories == ["Apple", "Developer"]
    assert by_url["https://inessential.com/xml/rss.xml"].categories == []
    assert len(by_url) == 9
    assert all(s.every == "1h" for s in by_url.values())  # defaults still apply to what was added

    again = postarc("sources", "import", str(OPML / "netnewswire.opml"), "--sources", str(sources))
    assert again.returncode == 0 and "0 added, 2 skipped" in again.stderr
    assert sources.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("body, reason", [
    (b"<opml><body><outline text='x' xmlUrl='https://a/f'", "not well-formed XML"),
    (b"<!doctype html><html><body><p>Sign in</p></body></html>", "not well-formed XML"),
    (b"<rss version='2.0'><channel/></rss>", "not <opml>"),
    (b"<opml version='2.0'><head/><body><outline text='Empty folder'/></body></opml>", "no outline with an xmlUrl"),
])
def test_bad_opml_is_refused_in_one_line_and_the_sources_file_is_untouched(tmp_path: Path, body: bytes,
                                                                          reason: str):
    sources = write_sources(tmp_path, SOURCES)
    before = (sources.read_bytes(), sources.stat().st_mtime_ns)
    bad = tmp_path / "bad.opml"
    bad.write_bytes(body)
    run = postarc("sources", "import", str(bad), "--sources", str(sources))
    assert run.returncode == 2
    assert run.stderr.startswith(f"postarc: bad OPML: {bad}: ") and reason in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert (sources.read_bytes(), sources.stat().st_mtime_ns) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def big_opml() -> tuple[bytes, dict[str, str]]:
    """200 feeds in 12 top folders, every third feed a level or two deeper; URL -> top folder."""
    top: dict[str, str] = {}
    body = []
    for f in range(12):
        folder = f"Folder {f} & <co>"
        inner = []
        for i in range(f * 200 // 12, (f + 1) * 200 // 12):
            url = f"https://feeds{i % 7}.example/{i}/feed.xml?a=1&b=2"
            top[url] = folder
            title = ("off", "123", "yes: no", "- x", "#") [i % 5] if i < 5 else f"Feed {i}"
            line = f'<outline type="rss" text="{title}" xmlUrl="{url.replace("&", "&amp;")}"/>'
            if i % 3 == 1:
                line = f'<outline text="Sub {i}">{line}</outline>'
            elif i % 3 == 2:
                line = f'<outline text="Sub {i}"><outline text="Deeper">{line}</outline></outline>'
            inner.append(line)
        body.append(f'<outline text="{folder.replace("&", "&amp;").replace("<", "&lt;")}">{"".join(inner)}</outline>')
    return (f'<?xml version="1.0"?><opml version="2.0"><head/><body>{"".join(body)}</body></opml>'.encode(), top)


def test_two_hundred_feeds_in_twelve_folders_round_trip(tmp_path: Path):
    data, top = big_opml()
    (tmp_path / "in.opml").write_bytes(data)
    sources = tmp_path / "new.yaml"  # created by the import
    run = postarc("sources", "import", str(tmp_path / "in.opml"), "--sources", str(sources))
    assert run.returncode == 0, run.stderr
    assert "200 added, 0 skipped" in run.stderr
    out = tmp_path / "out.opml"
    run = postarc("sources", "export", "--sources", str(sources), "-o", str(out))
    assert run.returncode == 0, run.stderr
    root = etree.parse(str(out)).getroot()
    assert root.get("version") == "2.0"
    exported = {o.get("xmlUrl"): o.getparent().get("text") for o in root.iter("outline") if o.get("xmlUrl")}
    assert exported == top


def test_list_shows_url_due_time_and_last_status(site: SiteServer, tmp_path: Path):
    site.routes["/feed.xml"] = Resource(b"<rss version='2.0'><channel><title>t</title></channel></rss>",
                                        "application/rss+xml")
    sources = write_sources(tmp_path, f"""\
sources:
  - name: hourly
    url: {site.base}/feed.xml
    every: 1h
  - name: gone
    url: {site.base}/missing.xml
  - name: paused
    url: {site.base}/paused.xml
    enabled: false
""")
    archive = tmp_path / "data"
    crawl = postarc("crawl", "--sources", str(sources), "--archive", str(archive))
    assert crawl.returncode == 3, crawl.stderr  # the missing feed failed
    run = postarc("sources", "list", "--sources", str(sources), "--archive", str(archive))
    assert run.returncode == 0, run.stderr
    lines = {line.split()[0]: line for line in run.stdout.splitlines()}
    assert f"{site.base}/feed.xml" in lines["hourly"] and lines["hourly"].rstrip().endswith("ok")
    assert "Z" in lines["hourly"].split()[2] and "never" not in lines["hourly"]  # due in an hour, in UTC
    assert "HTTP 404" in lines["gone"]
    assert "disabled" in lines["paused"] and "never" in lines["paused"]
