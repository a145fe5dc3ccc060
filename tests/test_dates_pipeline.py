"""Dates through the real crawl: every form a feed writes, the page-metadata fallback, the fetch time.

One local aggregator (source timezone Asia/Shanghai) whose feed entries carry each date form the
normalizer knows, and entries with no date, garbage or impossible dates whose article pages say
when they were published in each way pages do.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crawler.demo.server import Resource, SiteServer
from tests.helpers import postarc, posts_of, warc_records, write_sources

UTC = timezone.utc
SHANGHAI = ZoneInfo("Asia/Shanghai")
INSTANT = datetime(2022, 4, 29, 0, 12, 15, tzinfo=UTC)  # 08:12:15 in Shanghai
MINUTE = INSTANT.replace(second=0)
MIDNIGHT = datetime(2022, 4, 28, 16, 0, tzinfo=UTC)  # 2022-04-29 00:00 in Shanghai
PAGE_INSTANT = datetime(2023, 5, 5, 23, 8, 9, tzinfo=UTC)  # 2023-05-06 07:08:09 in Shanghai

# guid -> (date as the feed writes it, expected UTC instant, expected date_source)
ABSOLUTE = {
    "rfc822-gmt": ("Fri, 29 Apr 2022 00:12:15 GMT", INSTANT),
    "rfc822-offset": ("Fri, 29 Apr 2022 08:12:15 +0800", INSTANT),
    "rfc822-us-zone": ("Thu, 28 Apr 2022 20:12:15 EDT", INSTANT),
    "rfc822-ut": ("Fri, 29 Apr 2022 00:12:15 UT", INSTANT),
    "rfc822-no-weekday-no-seconds": ("29 Apr 2022 08:12 +0800", MINUTE),
    "rfc822-two-digit-year": ("Fri, 29 Apr 22 00:12:15 GMT", INSTANT),
    "rfc822-cst-china": ("Fri, 29 Apr 2022 08:12:15 CST", INSTANT),
    "iso-z": ("2022-04-29T00:12:15Z", INSTANT),
    "iso-offset-fraction": ("2022-04-29T08:12:15.123+08:00", INSTANT),
    "iso-naive-space": ("2022-04-29 08:12:15", INSTANT),
    "iso-date-only": ("2022-04-29", MIDNIGHT),
    "slash-naive": ("2022/04/29 08:12", MINUTE),
    "epoch-seconds": ("1651191135", INSTANT),
    "epoch-millis": ("1651191135000", INSTANT),
    "zh-full": ("2022年04月29日 08:12:15", INSTANT),
    "zh-date": ("2022年4月29日", MIDNIGHT),
    "zh-afternoon": ("2022年4月29日 下午3:20", datetime(2022, 4, 29, 7, 20, tzinfo=UTC)),
    "english-long": ("Friday, April 29, 2022 8:12 AM", MINUTE),
    "english-short": ("Apr 29, 2022", MIDNIGHT),
    "day-first": ("29/04/2022 08:12", MINUTE),
}
RELATIVE = {  # guid -> (raw, offset from the fetch time)
    "zh-hours-ago": ("3小时前", timedelta(hours=-3)),
    "zh-just-now": ("刚刚", timedelta(0)),
    "en-hours-ago": ("2 hours ago", timedelta(hours=-2)),
}
# guid -> (feed date or None, what the article page says in <head>/<body>, expected date_source)
FALLBACK = {
    "no-date-og": (None, '<meta property="article:published_time" content="2023-05-06T07:08:09+08:00">',
                   "page:article:published_time"),
    "garbage-json-ld": ("not a date at all", '<script type="application/ld+json">'
                        + json.dumps({"@context": "https://schema.org", "@graph": [
                            {"@type": "WebPage"},
                            {"@type": "NewsArticle", "datePublished": "2023-05-06 07:08:09"}]})
                        + "</script>", "page:json-ld"),
    "future-time-element": ("Fri, 29 Apr 2099 00:12:15 GMT",
                            '<article><time datetime="2023-05-06T07:08:09">五月六日</time></article>',
                            "page:time"),
    "too-old-untrusted-page-meta": ("Mon, 01 Jan 1979 00:00:00 GMT",
                                    '<meta property="article:published_time" content="2999-01-01T00:00:00Z">'
                                    '<script type="application/ld+json">{"datePublished": "2023-05-06T07:08:09+08:00"}'
                                    "</script>", "page:json-ld"),
}
NOTHING = "no-date-anywhere"  # no feed date, a page without any date: the fetch time


def article(title: str, extra: str) -> bytes:
    """An article page; ``extra`` goes into <head> if it is metadata, else into <body>."""
    head, body = (extra, "") if extra.startswith(("<meta", "<script")) else ("", extra)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title>{head}</head>'
            f"<body>{body}<p>{escape(title)} 的正文。</p></body></html>").encode()


def rss_item(base: str, guid: str, date: str | None) -> str:
    pub = f"<pubDate>{escape(date)}</pubDate>" if date else ""
    return (f"<item><title>{guid}</title><link>{base}/p/{guid}.html</link><guid isPermaLink='false'>{guid}</guid>{pub}"
            f"<description><![CDATA[<p>正文 {guid}</p>]]></description></item>")


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("dates")
    with SiteServer() as site:
        base = site.base
        items = [rss_item(base, g, raw) for g, (raw, _v) in ABSOLUTE.items()]
        items += [rss_item(base, g, raw) for g, (raw, _d) in RELATIVE.items()]
        items += [rss_item(base, g, raw) for g, (raw, _x, _s) in FALLBACK.items()]
        items.append(rss_item(base, NOTHING, None))
        site.routes["/feed.xml"] = Resource(
            f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>日期</title>'
            f'{"".join(items)}</channel></rss>'.encode(), "application/rss+xml; charset=utf-8")
        # Every article page claims another date: it must lose to a usable feed date.
        for guid in [*ABSOLUTE, *RELATIVE]:
            site.routes[f"/p/{guid}.html"] = Resource(article(guid, '<meta property="article:published_time" '
                                                                    'content="2001-02-03T04:05:06Z">'))
        for guid, (_raw, extra, _source) in FALLBACK.items():
            site.routes[f"/p/{guid}.html"] = Resource(article(guid, extra), gzip=True)
        site.routes[f"/p/{NOTHING}.html"] = Resource(article(NOTHING, "<p>没有日期。</p>"))
        # Atom: an entry with only <updated>; a source whose "GMT" is Beijing time.
        site.routes["/atom.xml"] = Resource(
            f"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<title>A</title><id>{base}/atom.xml</id><updated>2022-04-29T08:12:15+08:00</updated>
<entry><title>updated only</title><id>tag:test,2022:atom-updated-only</id><link href="{base}/p/atom.html"/>
<updated>2022-04-29T08:12:15+08:00</updated><content type="html">&lt;p&gt;x&lt;/p&gt;</content></entry>
</feed>""".encode(), "application/atom+xml")
        site.routes["/gmt-is.xml"] = Resource(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>G</title>'
            f'{rss_item(base, "gmt-is-shanghai", "Fri, 29 Apr 2022 08:12:15 GMT")}</channel></rss>'.encode(),
            "application/rss+xml")
        sources = write_sources(tmp, f"""sources:
  - name: dated
    url: {base}/feed.xml
    timezone: Asia/Shanghai
    follow_links: true
  - name: atom
    url: {base}/atom.xml
    timezone: Asia/Shanghai
  - name: lying-gmt
    url: {base}/gmt-is.xml
    timezone: Asia/Shanghai
    gmt_is: Asia/Shanghai
""")
        started = datetime.now(UTC).replace(microsecond=0)
        run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp / "data"))
        ended = datetime.now(UTC)
    assert run.returncode == 0, run.stderr[-3000:]
    posts = {fm["guid"]: fm for fm, _body in posts_of(tmp / "data").values()}
    db = sqlite3.connect(tmp / "data" / "state.sqlite")
    rows = {guid: (raw, source) for guid, raw, source in db.execute("SELECT guid, date_raw, date_source FROM posts")}
    db.close()
    yield tmp / "data", posts, rows, started, ended, run


def test_every_feed_date_form_becomes_its_utc_instant(crawl):
    _archive, posts, rows, *_ = crawl
    for guid, (raw, expected) in ABSOLUTE.items():
        assert posts[guid]["date"] == expected, (guid, raw, posts[guid]["date"])
        assert rows[guid] == (raw, "feed"), guid


def test_relative_dates_count_back_from_the_fetch_time(crawl):
    _archive, posts, rows, started, ended, _run = crawl
    for guid, (raw, offset) in RELATIVE.items():
        assert started + offset <= posts[guid]["date"] <= ended + offset, (guid, posts[guid]["date"])
        assert rows[guid] == (raw, "feed")


def test_feed_without_a_usable_date_takes_the_article_pages_published_time(crawl):
    _archive, posts, rows, *_ = crawl
    for guid, (_raw, _extra, source) in FALLBACK.items():
        assert posts[guid]["date"] == PAGE_INSTANT, (guid, posts[guid]["date"])
        assert rows[guid][1] == source, (guid, rows[guid])
    assert rows["garbage-json-ld"][0] == "2023-05-06 07:08:09"  # the raw string that gave the date


def test_untrusted_dates_are_logged(crawl):
    *_, run = crawl
    assert "'Fri, 29 Apr 2099 00:12:15 GMT' not used (untrusted:future)" in run.stderr
    assert "'Mon, 01 Jan 1979 00:00:00 GMT' not used (untrusted:too-old)" in run.stderr
    assert "'2999-01-01T00:00:00Z' not used (untrusted:future)" in run.stderr


def test_no_date_anywhere_is_the_fetch_time_marked_as_such(crawl):
    _archive, posts, rows, started, ended, _run = crawl
    assert started <= posts[NOTHING]["date"] <= ended
    assert rows[NOTHING] == (None, "fetched")


def test_atom_updated_is_used_when_published_is_missing(crawl):
    _archive, posts, rows, *_ = crawl
    assert posts["tag:test,2022:atom-updated-only"]["date"] == INSTANT
    assert rows["tag:test,2022:atom-updated-only"] == ("2022-04-29T08:12:15+08:00", "feed-updated")


def test_gmt_is_reads_mislabelled_gmt_as_the_sources_wall_time(crawl):
    _archive, posts, rows, *_ = crawl
    assert posts["gmt-is-shanghai"]["date"] == INSTANT
    assert rows["gmt-is-shanghai"] == ("Fri, 29 Apr 2022 08:12:15 GMT", "feed")


def test_conversion_records_carry_the_date_its_raw_form_and_origin(crawl):
    archive, posts, rows, *_ = crawl
    conversions = {}
    for _name, rec, payload in warc_records(archive):
        if rec.rec_type == "conversion":
            guid = next(line for line in payload.decode().splitlines() if line.startswith("guid: "))[6:]
            conversions[guid.strip("'")] = rec.rec_headers
    assert set(conversions) == set(posts)
    headers = conversions["zh-full"]
    assert headers["Postarc-Date"] == "2022-04-29T00:12:15Z"
    assert headers["Postarc-Date-Raw"] == "2022年04月29日 08:12:15"
    assert headers["Postarc-Date-Source"] == "feed"
    assert conversions["no-date-og"]["Postarc-Date-Source"] == "page:article:published_time"
    assert conversions[NOTHING]["Postarc-Date-Source"] == "fetched"
    assert conversions[NOTHING].get_header("Postarc-Date-Raw") is None


def test_dates_are_written_utc_z_and_paths_follow_the_utc_date(crawl):
    archive, _posts, _rows, *_ = crawl
    for rel in posts_of(archive):
        md = archive / "posts" / rel
        date_line = next(line for line in md.read_text(encoding="utf-8").splitlines() if line.startswith("date: "))
        assert date_line.endswith("Z"), date_line
    midnight_post = next(rel for rel, (fm, _b) in posts_of(archive).items() if fm["guid"] == "iso-date-only")
    assert midnight_post.startswith("2022/04/")  # 2022-04-29 in Shanghai is 28 April in UTC


def test_rfc1123_date_format(site: SiteServer, tmp_path: Path):
    site.routes["/feed.xml"] = Resource(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f'{rss_item(site.base, "one", "2022-04-29 08:12:15")}</channel></rss>'.encode(), "application/rss+xml")
    sources = write_sources(tmp_path, f"sources:\n  - name: s\n    url: {site.base}/feed.xml\n"
                                      f"    timezone: Asia/Shanghai\n")
    run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp_path / "data"),
                  "--date-format", "rfc1123")
    assert run.returncode == 0, run.stderr[-3000:]
    [(rel, (fm, _body))] = posts_of(tmp_path / "data").items()
    assert fm["date"] == "Fri, 29 Apr 2022 00:12:15 GMT"
    assert "date: Fri, 29 Apr 2022 00:12:15 GMT" in (tmp_path / "data" / "posts" / rel).read_text(encoding="utf-8")
