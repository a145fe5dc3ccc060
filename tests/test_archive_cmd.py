"""``postarc archive URL…``: pages and feeds archived now, through the real command and a local server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from warcio.checker import Checker

from crawler.demo.server import Resource, SiteServer
from crawler.demo.site import png
from tests.helpers import REPO, postarc, posts_of, warc_records
from tests.ports import refusing_port

TEXT = "近日，在封闭生产的港区某企业里，出现了几个不一样的“大白”——他们是应急局的安全生产执法检查人员。"


def page(title: str, *, head: str = "", charset: str = "utf-8", extra: str = "") -> str:
    return (f'<!doctype html><html><head><meta charset="{charset}"><title>{title} - 示例新闻</title>{head}</head>'
            f"<body><nav><a href='/'>首页</a> | <a href='/tech'>科技</a></nav><article><h1>{title}</h1>"
            f"<p>{TEXT}</p><p>{TEXT * 2}</p>{extra}<p>通讯员：{title}。</p></article>"
            f"<footer>版权所有 2024 示例新闻 隐私</footer></body></html>")


UTF8_TITLE = "港区应急局：以生产安全托底防疫安全"
UTF8_PAGE = page(UTF8_TITLE, head='<meta name="author" content="蔡怡磊">'
                                  '<meta property="article:published_time" content="2022-04-29T08:12:15+08:00">',
                 extra='<p><img src="/img/a.png" alt="港口"></p>')
GBK_TITLES = {  # 镕 is GBK, not GB2312: the page must be read as GBK/GB18030 to keep it
    "/gbk-header.html": "朱镕基谈改革（带字符集头）",
    "/gbk-meta.html": "朱镕基谈改革（只在页面里声明）",
    "/gbk-bare.html": "朱镕基谈改革（不声明字符集）",
}


def rss(base: str, n: int) -> bytes:
    items = "".join(
        f"<item><title>Feed 第{i}条</title><link>{base}/entry/{i}</link><guid isPermaLink='false'>entry-{i}</guid>"
        f"<pubDate>Fri, 0{i} Apr 2022 00:12:15 GMT</pubDate><author>编辑{i}</author>"
        f"<description><![CDATA[<p>第{i}条的正文。{TEXT}</p>]]></description></item>" for i in range(1, n + 1))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>示例 Feed</title>'
            f"<link>{base}/</link>{items}</channel></rss>").encode()


@pytest.fixture
def server() -> Iterator[SiteServer]:
    with SiteServer() as site:
        site.routes.update({
            "/utf8.html": Resource(UTF8_PAGE.encode(), gzip=True),
            "/img/a.png": Resource(png(32, 20, (10, 120, 200)), "image/png"),
            "/feed.xml": Resource(rss(site.base, 2), "application/rss+xml; charset=utf-8"),
            "/robots.txt": Resource(b"User-agent: *\nDisallow: /private/\n", "text/plain"),
        })
        for path, title in GBK_TITLES.items():
            declared = path != "/gbk-bare.html"
            html = page(title, charset="gbk" if declared else "x").replace('<meta charset="x">', "")
            if path == "/gbk-meta.html":
                html = html.replace('<meta charset="gbk">',
                                    '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">')
            ctype = "text/html; charset=gbk" if path == "/gbk-header.html" else "text/html"
            site.routes[path] = Resource(html.encode("gbk"), ctype)
        yield site


def test_pages_and_feed_archived_failures_named_and_second_run_adds_nothing(server: SiteServer, tmp_path: Path):
    archive = tmp_path / "data"
    good = [server.url("/utf8.html"), *map(server.url, GBK_TITLES), server.url("/feed.xml")]
    missing, refused = server.url("/missing"), f"http://127.0.0.1:{refusing_port()}/post.html"

    run = postarc("archive", *good[:2], missing, *good[2:], refused, "--archive", str(archive), cwd=tmp_path)
    assert run.returncode != 0
    assert f"failed: {missing}: HTTP 404" in run.stderr
    assert f"failed: {refused}: connection refused" in run.stderr
    assert "5 of 7 URLs archived, 6 posts written" in run.stderr
    printed = run.stdout.splitlines()
    assert len(printed) == 6 and all(Path(p).is_file() for p in printed), run.stdout
    assert all(archive.resolve() / "posts" in Path(p).resolve().parents for p in printed)

    posts = {fm["title"]: (rel, fm, body) for rel, (fm, body) in posts_of(archive).items()}
    assert set(posts) == {UTF8_TITLE, *GBK_TITLES.values(), "Feed 第1条", "Feed 第2条"}
    _rel, fm, body = posts[UTF8_TITLE]
    assert fm["author"] == "蔡怡磊"
    assert fm["date"] == datetime(2022, 4, 29, 0, 12, 15, tzinfo=timezone.utc)
    assert fm["link"] == fm["guid"] == server.url("/utf8.html")
    assert "大白" in body and "首页" not in body  # the article, not the page's navigation
    assert (archive / "posts" / _rel).parent.joinpath(fm["headimg"]).read_bytes().startswith(b"\x89PNG")
    for title in GBK_TITLES.values():
        assert "封闭生产的港区" in posts[title][2], title
    assert posts["Feed 第2条"][1]["categories"] == ["示例 Feed"]
    assert posts["Feed 第2条"][1]["date"] == datetime(2022, 4, 2, 0, 12, 15, tzinfo=timezone.utc)

    uris = {rec.rec_headers["WARC-Target-URI"] for _n, rec, _p in warc_records(archive)
            if rec.rec_type == "response"}
    assert {*good, missing, server.url("/robots.txt"), server.url("/img/a.png")} <= uris

    again = postarc("archive", *good, "--archive", str(archive), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout == ""
    assert "5 of 5 URLs archived, 0 posts written, 6 unchanged" in again.stderr
    assert len(posts_of(archive)) == 6
    revisits = {rec.rec_headers["WARC-Target-URI"] for _n, rec, _p in warc_records(archive)
                if rec.rec_type == "revisit"}
    assert set(good) <= revisits  # unchanged payloads: revisit records, not second copies
    warcio_check(archive)


def warcio_check(archive: Path) -> None:
    files = [str(p) for p in sorted((archive / "warc").glob("*.warc.gz"))]
    assert Checker(type("Args", (), {"inputs": files, "verbose": False})()).process_all() == 0


def test_changed_page_updates_its_post_in_place(server: SiteServer, tmp_path: Path):
    archive = tmp_path / "data"
    url = server.url("/utf8.html")
    first = postarc("archive", url, "--archive", str(archive))
    assert first.returncode == 0, first.stderr[-3000:]
    server.routes["/utf8.html"] = Resource(UTF8_PAGE.replace("通讯员", "更正：通讯员").encode(), gzip=True)
    second = postarc("archive", url, "--archive", str(archive))
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout == first.stdout  # the same file, rewritten
    [(fm, body)] = posts_of(archive).values()
    assert "更正" in body and fm.get("updated")


def test_every_failure_is_named_with_its_reason_json_and_stdin(server: SiteServer, tmp_path: Path):
    server.routes["/big.html"] = Resource(page("大页面", extra="<p>" + "很长" * 20_000 + "</p>").encode())
    server.routes["/private/secret.html"] = Resource(page("不许抓取").encode())
    server.routes["/private/other.html"] = Resource(page("也不许").encode())
    server.routes["/image.png"] = Resource(png(8, 8, (0, 0, 0)), "image/png")
    server.routes["/plain.html"] = Resource(b"<html><body><p>No metadata here, only a paragraph of text.</p>"
                                            b"</body></html>", "text/html")
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        slow = f"http://127.0.0.1:{silent.getsockname()[1]}/never"
        urls = {
            server.url("/plain.html"): ("archived", None),
            server.url("/private/secret.html"): ("failed", "robots.txt disallowed"),
            server.url("/private/other.html"): ("failed", "robots.txt disallowed"),
            server.url("/image.png"): ("failed", "not HTML or a feed (image/png)"),
            server.url("/big.html"): ("failed", "too large"),
            slow: ("failed", "timeout"),
            "ftp://example.org/file": ("failed", "not an http(s) URL"),
        }
        stdin = "# URLs to keep\n\n" + "\n".join(urls) + "\n"
        run = postarc("archive", "-", "--json", "--archive", str(tmp_path / "data"),
                      "-s", "DOWNLOAD_MAXSIZE=30000", "-s", "DOWNLOAD_TIMEOUT=2", "-s", "RETRY_TIMES=0",
                      stdin=stdin, cwd=tmp_path)
    assert run.returncode == 3, run.stderr[-3000:]
    objects = [json.loads(line) for line in run.stdout.splitlines()]
    assert [o["url"] for o in objects] == list(urls)
    for obj in objects:
        status, error = urls[obj["url"]]
        assert (obj["status"], obj["error"]) == (status, error), obj
        if error:
            assert f"failed: {obj['url']}: {error}" in run.stderr
    plain = objects[0]
    assert plain["kind"] == "page" and len(plain["posts"]) == 1 and plain["warc"].endswith(".warc.gz")
    [(fm, _body)] = posts_of(tmp_path / "data").values()
    assert fm["link"] == server.url("/plain.html") and fm["title"]
    created = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(tmp_path / "data" in p.parents for p in created), created


def test_feed_options_sniffing_and_the_scrapy_door(server: SiteServer, tmp_path: Path):
    server.routes["/feed.xml"] = Resource(rss(server.base, 3), "text/html")  # mislabelled: sniffed
    server.routes["/feed.json"] = Resource(json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "JSON",
        "items": [{"id": "j1", "url": f"{server.base}/j1", "title": "JSON 条目", "content_html": f"<p>{TEXT}</p>",
                   "date_published": "2022-04-29 08:12:15"}]}, ensure_ascii=False).encode(), "text/plain")
    archive = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "archive", server.url("/feed.xml"), server.url("/feed.json"),
         "--limit", "2", "--category", "新媒体", "--category", "示例", "--timezone", "Asia/Shanghai",
         "--archive", str(archive)],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    posts = {fm["title"]: fm for fm, _body in posts_of(archive).values()}
    assert set(posts) == {"Feed 第1条", "Feed 第2条", "JSON 条目"}  # --limit 2 of 3
    assert all(fm["categories"] == ["新媒体", "示例"] for fm in posts.values())
    assert posts["JSON 条目"]["date"] == datetime(2022, 4, 29, 0, 12, 15, tzinfo=timezone.utc)
    assert len(proc.stdout.splitlines()) == 3


def test_usage_errors(tmp_path: Path):
    assert postarc("archive", "--archive", str(tmp_path / "d")).returncode == 2
    bad_zone = postarc("archive", "http://127.0.0.1:9/", "--timezone", "Mars/Olympus", "--archive", str(tmp_path))
    assert bad_zone.returncode == 2 and "unknown time zone" in bad_zone.stderr
