"""``postarc replay`` over real HTTP, on an archive whose origin server is gone."""

from __future__ import annotations

import gzip
import http.client
import re
import shutil
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from archive.replay.index import CdxjIndex, ensure_index, seek_first
from archive.replay.rewrite import rewrite_css
from archive.frontmatter import post_text
from archive.replay.search import Query, excerpt_html
from bench.replay import synthetic_archive
from tests.helpers import posts_of, warc_records
from tests.replay_helpers import Replay, demo_archive, start_replay

HARBOUR = "posts/harbour.html"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo aggregator crawled twice (the second run revisits the feeds), then the origin stops."""
    tmp = tmp_path_factory.mktemp("replay")
    archive = tmp / "data"
    origin = demo_archive(archive, tmp, runs=2)
    # A symlink inside posts/ that leads out of it: must not be served.
    (archive / "posts" / "escape.png").symlink_to(archive / "state.sqlite")
    (archive / "posts" / "outside").symlink_to("/etc")
    return archive, origin


@pytest.fixture(scope="module")
def replay(archive) -> Replay:
    server = start_replay(archive[0])
    server.wait_for_search()
    yield server
    server.stop()


def raw_get(replay: Replay, target: str, method: str = "GET", headers: dict[str, str] | None = None,
            body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """A request with the target sent byte for byte (urllib would normalise ``..``)."""
    host, port = urlsplit(replay.base).hostname, urlsplit(replay.base).port
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.putrequest(method, target, skip_accept_encoding=True, skip_host="Host" in (headers or {}))
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def capture_ts(archive: Path, url: str) -> list[str]:
    return [c.timestamp for c in CdxjIndex(ensure_index(archive)).captures(url)]


def post_path(archive: Path, guid: str) -> str:
    for rel, (fm, _body) in posts_of(archive).items():
        if fm["guid"] == guid:
            return rel[:-3]
    raise KeyError(guid)


# -- the index page ----------------------------------------------------------------------------


def test_binds_loopback_and_lists_posts_newest_first(archive, replay):
    assert replay.base.startswith("http://127.0.0.1:")
    status, headers, body = replay.get("/")
    assert status == 200
    assert "script-src" not in headers["Content-Security-Policy"] and "default-src 'none'" in headers[
        "Content-Security-Policy"]
    html = body.decode()
    titles = re.findall(r'<a class="title" href="/posts/[^"]+">([^<]+)</a>', html)
    assert len(titles) == 8, titles
    dates = re.findall(r"<time>([^<]+)</time>", html)
    assert dates == sorted(dates, reverse=True)
    assert "以生产安全托底防疫安全：港区应急局一直在路上！" in titles
    # Per-source and per-day counts, drawn as inline SVG.
    assert 'aria-label="posts per source"' in html and 'aria-label="posts per day"' in html
    assert "<title>demo-hot: 3</title>" in html
    assert "<title>2022-04-29: 1 post</title>" in html


def test_filters_by_source_category_and_dates(replay):
    def titles(query: str) -> list[str]:
        status, _h, body = replay.get("/?" + query)
        assert status == 200, body
        return re.findall(r'<a class="title" href="/posts/[^"]+">([^<]+)</a>', body.decode())

    assert titles("source=demo-zhihu") == ["JSON Feed 也是 feed：一条来自 JSON 的帖子"]
    assert set(titles("category=" + quote("新媒体"))) == {
        "Rust 1.80 发布：LazyCell 与 exclusive ranges 稳定", "以生产安全托底防疫安全：港区应急局一直在路上！",
        "这篇文章的原文已经删除，但 feed 里还有全文"}
    assert titles("from=2022-01-01&to=2022-12-31") == [
        "以生产安全托底防疫安全：港区应急局一直在路上！", "JSON Feed 也是 feed：一条来自 JSON 的帖子"]
    assert titles("from=2022-04-29&to=2022-04-29") == ["以生产安全托底防疫安全：港区应急局一直在路上！"]
    assert titles("source=nobody") == []


def test_pagination(tmp_path):
    archive = synthetic_archive(tmp_path / "big", posts=120, captures=0)
    server = start_replay(archive)
    try:
        status, _h, body = server.get("/")
        html = body.decode()
        assert status == 200 and "120 posts" in html and "page 1 of 3" in html
        assert html.count('class="post"') == 50 and 'rel="next" href="/?page=2"' in html
        status, _h, body = server.get("/?page=3")
        assert status == 200 and body.decode().count('class="post"') == 20
        status, _h, body = server.get("/?page=9")
        assert status == 200 and "No posts" in body.decode()
    finally:
        server.stop()


@pytest.mark.parametrize("query", ["page=0", "page=abc", "page=999999999", "from=2024-13-01", "to=yesterday",
                                   "q=" + "x" * 300, "&".join(f"a{i}=1" for i in range(40)), "q=%ff%fe"])
def test_bad_query_is_400(replay, query):
    status, headers, body = replay.get("/?" + query)
    assert status == 400, (query, body[:300])
    assert b"Traceback" not in body and headers["Content-Type"].startswith("text/html")


# -- search --------------------------------------------------------------------------------------


def test_search_finds_a_chinese_phrase_with_highlights(replay):
    status, _h, body = replay.get("/?q=" + quote("应急局的安全生产"))
    html = body.decode()
    assert status == 200
    assert "1 post matching" in html
    assert "以生产安全托底防疫安全" in html
    assert "<mark>应急局的安全生产</mark>" in html


def test_search_two_character_words_and_title_words(replay):
    status, _h, body = replay.get("/?q=" + quote("大白"))
    assert status == 200 and "<mark>大白</mark>" in body.decode()
    status, _h, body = replay.get("/?q=" + quote("LazyCell 稳定"))
    html = body.decode()
    assert "1 post matching" in html and "Rust 1.80" in html
    status, _h, body = replay.get("/?q=" + quote("应急局") + "&source=demo-zhihu")
    assert "0 posts matching" in body.decode()


@pytest.mark.parametrize("query", ['"', "NEAR(a b)", "a OR", "*", "title:x", "^", "'; DROP TABLE posts; --",
                                   "<script>alert(1)</script>"])
def test_search_syntax_cannot_break_or_inject(replay, query):
    status, _h, body = replay.get("/?q=" + quote(query))
    assert status == 200, body[:500]
    assert b"<script>alert" not in body


def test_search_text_and_query_helpers():
    title, text = post_text("---\ntitle: 'A: b'\n---\n\n## 标题\n\n![图](a/b.png) [链接](http://x) *强调*\n<div>html</div>\n")
    assert title == "A: b"
    assert text == "标题 图 链接 强调 html"
    q = Query.parse('ab "quoted" 三个字')
    assert q.short_terms == ["ab"] and q.match == '"""quoted""" "三个字"'
    assert excerpt_html("<b>大白</b> and more", ["大白"]) == "&lt;b&gt;<mark>大白</mark>&lt;/b&gt; and more"


# -- posts ------------------------------------------------------------------------------------------


def test_post_page_renders_markdown_with_local_images_and_captures(archive, replay):
    root, origin = archive
    path = post_path(root, "demo-harbour")
    status, headers, body = replay.get("/posts/" + quote(path))
    html = body.decode()
    assert status == 200 and "default-src 'none'" in headers["Content-Security-Policy"]
    assert "<h1>以生产安全托底防疫安全：港区应急局一直在路上！</h1>" in html
    assert "<h2>不曾停歇的监管脚步</h2>" in html and "<li>工贸企业：13 家</li>" in html
    img = re.search(r'<img src="([^"]+)"', html).group(1)
    assert not img.startswith(("/", "http"))  # relative to the post, as in the Markdown
    status, headers, data = replay.get("/posts/" + quote(str(Path(path).parent)) + "/" + img)
    assert status == 200 and headers["Content-Type"] == "image/png" and data.startswith(b"\x89PNG")
    assert "sandbox" in headers["Content-Security-Policy"]
    # The original capture, and every capture of the article URL with its time.
    link = f"{origin}/{HARBOUR}"
    ts = capture_ts(root, link)
    assert len(ts) == 1
    assert f'class="original-capture" href="/web/{ts[0]}/{link}"' in html
    assert f"{ts[0][:4]}-{ts[0][4:6]}-{ts[0][6:8]} {ts[0][8:10]}:{ts[0][10:12]}:{ts[0][12:]} UTC" in html


def test_post_markdown_file_as_written(archive, replay):
    path = post_path(archive[0], "demo-rust-release")
    status, headers, body = replay.get("/posts/" + quote(path) + ".md")
    assert status == 200 and headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert body == (archive[0] / "posts" / f"{path}.md").read_bytes()


def test_unknown_post_is_404(replay):
    status, _h, body = replay.get("/posts/2099/01/nothing")
    assert status == 404 and b"Traceback" not in body


# -- captures --------------------------------------------------------------------------------------


def test_web_serves_the_archived_page_sandboxed_with_links_into_the_archive(archive, replay):
    root, origin = archive
    link = f"{origin}/{HARBOUR}"
    ts = capture_ts(root, link)[0]
    status, headers, body = replay.get(f"/web/{ts}/{link}")
    html = body.decode()
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert csp.startswith("sandbox") and "script-src 'none'" in csp
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["X-Archive-Orig-Content-Encoding"] == "gzip" and "Content-Encoding" not in headers
    assert "Memento-Datetime" in headers
    assert "近日，在封闭生产的港区某企业里" in html and "沙发！" in html  # the whole page, as captured
    assert f'href="/web/{ts}/{origin}/tech"' in html  # root-relative link, resolved and rewritten
    assert 'id="postarc-banner"' in html
    # The image sits behind a CORS proxy in the page; the crawl fetched its origin, which stands in.
    img = re.search(r'<img src="(/web/[^"]+)"', html).group(1)
    assert "cors.example.workers.dev" in img
    status, headers, data = replay.get(img)
    assert status == 200 and data.startswith(b"\x89PNG") and headers["Content-Type"] == "image/png"


def test_nearest_capture_from_any_timestamp(archive, replay):
    root, origin = archive
    link = f"{origin}/{HARBOUR}"
    for ts in ("2000", "19990101000000", "29991231235959", capture_ts(root, link)[0][:8]):
        status, _h, body = replay.get(f"/web/{ts}/{link}")
        assert status == 200 and "港区某企业" in body.decode()


def test_raw_payload_with_original_headers(archive, replay):
    root, origin = archive
    link = f"{origin}/{HARBOUR}"
    ts = capture_ts(root, link)[0]
    status, headers, body = raw_get(replay, f"/web/{ts}id_/{link}")
    assert status == 200
    assert headers["Content-Encoding"] == "gzip" and headers["Content-Type"] == "text/html; charset=utf-8"
    stored = next(payload for _f, rec, payload in warc_records(root)
                  if rec.rec_type == "response" and rec.rec_headers.get_header("WARC-Target-URI") == link)
    assert body == stored  # the payload as received, still gzip-encoded
    assert gzip.decompress(body).decode().count("港区某企业") == 1
    assert "sandbox" in headers["Content-Security-Policy"]


def test_revisit_is_served_from_its_original(archive, replay):
    root, origin = archive
    feed = f"{origin}/atom.xml"
    index = CdxjIndex(ensure_index(root))
    captures = index.captures(feed)
    assert [c.is_revisit for c in captures] == [False, True]
    first, revisit = captures
    status, headers, body = replay.get(f"/web/{revisit.timestamp}id_/{feed}")
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    status0, _h, body0 = replay.get(f"/web/{first.timestamp}id_/{feed}")
    assert body == body0 and b"archiving the small web" in gzip.decompress(body)
    status, _h, body = replay.get(f"/web/{revisit.timestamp}/{feed}")
    assert status == 200 and b"archiving the small web" in body


def test_capture_list(archive, replay):
    root, origin = archive
    status, _h, body = replay.get(f"/web/*/{origin}/rss.xml")
    html = body.decode()
    assert status == 200 and html.count("<li>") == 2 and "(revisit)" in html


def test_redirect_status_and_404_capture_are_replayed_as_archived(archive, replay):
    root, origin = archive
    status, headers, body = replay.get(f"/web/2030/{origin}/gone/dead-link")
    assert status == 404 and "sandbox" in headers["Content-Security-Policy"]  # the archived 404
    assert "postarc-banner" in body.decode()


def test_unarchived_url_is_a_404_that_says_so(archive, replay):
    _root, origin = archive
    for url in (f"{origin}/never-fetched.html", "https://example.org/", f"{origin}/posts/harbour.html?x=1"):
        status, _h, body = replay.get(f"/web/20240101000000/{url}")
        assert status == 404, url
        assert "was not archived" in body.decode()
    status, _h, body = replay.get("/web/*/https://example.org/nothing")
    assert status == 404 and "was not archived" in body.decode()


def test_archived_scripts_cannot_run(archive, replay):
    root, origin = archive
    url = f"{origin}/extra/script.html"
    ts = capture_ts(root, url)[0]
    status, headers, body = replay.get(f"/web/{ts}/{url}")
    html = body.decode()
    assert status == 200 and "这一页带着脚本" in html  # decoded from GBK, served as UTF-8
    assert headers["Content-Security-Policy"].startswith("sandbox;")
    assert "script-src 'none'" in headers["Content-Security-Policy"]
    # <base href> honoured then removed; refresh and srcset kept inside the archive.
    assert "<base" not in html and f'href="/web/{ts}/{origin}/posts/relative.html"' in html
    assert f"url=/web/{ts}/{origin}/elsewhere" in html and f"/web/{ts}/{origin}/img/team.png 2x" in html
    assert f"url(/web/{ts}/{origin}/posts/bg.png)" in html


@pytest.mark.parametrize("path", [
    "/web/2024-01-01/http://example.org/", "/web/20241399000000/http://example.org/",
    "/web/123/http://example.org/", "/web/202401010000001/http://example.org/",
    "/web/２０２４/http://example.org/", "/web/20240101000000xx_/http://example.org/",
    "/web/20240101000000/ftp://example.org/", "/web/20240101000000/javascript:alert(1)",
    "/web/20240101000000/not a url", "/web/20240101000000/http://", "/web/nothing",
    "/web/20240101000000/http://exa%0d%0ample.org/",
])
def test_bad_timestamps_and_urls_are_400(replay, path):
    status, headers, body = raw_get(replay, quote(path, safe="/:%?=&*"))
    assert status == 400, (path, status, body[:300])
    assert b"Traceback" not in body


def test_collapsed_scheme_slashes_still_find_the_capture(archive, replay):
    _root, origin = archive
    status, _h, body = raw_get(replay, f"/web/2030/{origin.replace('://', ':/')}/{HARBOUR}")
    assert status == 200 and "港区某企业" in body.decode()


# -- safety ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "/posts/../state.sqlite", "/posts/%2e%2e/state.sqlite", "/posts/%2E%2E%2Fstate.sqlite",
    "/posts/2022/../../state.sqlite", "/posts/2022/%2e%2e/%2e%2e/state.sqlite", "/posts//etc/passwd",
    "/posts/%2Fetc%2Fpasswd", "/posts/..%5c..%5cstate.sqlite", "/posts/escape.png", "/posts/outside/passwd",
    "/posts/outside", "/../state.sqlite", "/%2e%2e/state.sqlite", "//etc/passwd", "/_static/../app.py",
    "/_static/%2e%2e/app.py", "/_static/..%2fapp.py", "/_static//etc/passwd", "/state.sqlite",
    "/warc/", "/posts/%00", "/posts/a%00.md", "/web/20240101000000/file:///etc/passwd",
    "/web/20240101000000id_/file:///etc/passwd", "../state.sqlite", "/posts/%ff",
])
def test_no_path_reads_outside_the_archive(archive, replay, target):
    status, _h, body = raw_get(replay, target)
    assert status in (400, 404), (target, status)
    assert b"SQLite format 3" not in body and b"root:" not in body and b"Traceback" not in body


def test_absolute_form_request_target_is_a_path_here(replay):
    # http.client names evil.example as Host too: refused as a foreign name (421) before any path.
    status, _h, body = raw_get(replay, "http://evil.example/../state.sqlite")
    assert status in (400, 404, 421) and b"SQLite format 3" not in body
    host = urlsplit(replay.base).netloc
    status, _h, body = raw_get(replay, "http://evil.example/../state.sqlite", headers={"Host": host})
    assert status in (400, 404) and b"SQLite format 3" not in body


def test_oversized_and_unexpected_requests_are_refused(replay):
    status, _h, _b = raw_get(replay, "/web/20240101000000/http://example.org/" + "a" * 9000)
    assert status == 414
    status, headers, _b = raw_get(replay, "/", method="POST", body=b"x=1")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, _h, _b = raw_get(replay, "/", body=b"x" * 10)
    assert status == 413
    status, _h, _b = raw_get(replay, "/", method="DELETE")
    assert status == 405


def test_head_has_headers_and_no_body(replay):
    status, headers, body = raw_get(replay, "/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_stylesheet_and_unknown_routes(replay):
    status, headers, body = replay.get("/_static/style.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css") and b"mark" in body
    assert replay.get("/_static/nothing.css")[0] == 404
    assert replay.get("/nothing")[0] == 404


def test_a_server_error_is_a_page_not_a_traceback(archive, tmp_path):
    """A broken catalogue: the page says so, the log has the details."""
    copy = tmp_path / "broken"
    shutil.copytree(archive[0], copy, symlinks=True)
    (copy / "state.sqlite").write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (copy / f"state.sqlite{suffix}").unlink(missing_ok=True)
    server = start_replay(copy)
    try:
        status, _h, body = server.get("/")
        assert status == 500 and b"Internal error" in body and b"Traceback" not in body
    finally:
        log = server.stop()
    assert "Traceback" in log


def test_replay_refuses_a_directory_that_is_not_an_archive(tmp_path):
    from tests.helpers import postarc

    run = postarc("replay", "--archive", str(tmp_path), "--port", "0")
    assert run.returncode == 2 and "not a postarc archive" in run.stderr


# -- the pieces --------------------------------------------------------------------------------------


def test_bisection_finds_every_key_in_a_sorted_file(tmp_path):
    import io

    lines = sorted({f"k{n:04d} 2024 {{}}\n".encode() for n in range(0, 3000, 7)})
    data = b"".join(lines)
    f = io.BytesIO(data)
    for n in range(0, 3000, 3):
        key = f"k{n:04d} ".encode()
        seek_first(f, len(data), key)
        expected = next((line for line in lines if line >= key), b"")
        assert f.readline() == expected


def test_css_urls_are_rewritten():
    css = "@import 'a.css'; body { background: url( \"../i.png\" ) } .x { background: url(data:image/png;base64,AA) }"
    out = rewrite_css(css, "http://e.org/css/s.css", "20240101000000")
    assert "@import '/web/20240101000000/http://e.org/css/a.css'" in out
    assert 'url("/web/20240101000000/http://e.org/i.png")' in out and "url(data:image/png;base64,AA)" in out
