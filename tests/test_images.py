"""Images through a real crawl: every way a post writes them, saved beside the post and captured
in the WARC, hotlink protection on another origin (403 with the article as Referer, then 200
without one), trackers skipped, duplicates once, failures kept as remote links and counted; and
the seed's output form (``--body html --date-format rfc1123 --images remote --image-proxy``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archive.html import text_blocks
from archive.frontmatter import read_front_matter
from crawler.demo.server import Resource, SiteServer
from crawler.demo.site import png
from tests.conftest import needs_tool
from tests.helpers import REPO, postarc, posts_of, warc_records, warcio_check, write_sources

SEED = REPO.parent / "shared" / "seeds" / "000_8295ced5d913ad58.md"
PROXY = "https://cors.zfour.workers.dev/?"
DATA_GIF = "data:image/gif;base64,R0lGODlhAQABAAAAACw="

# Served by the image host (another origin), each with bytes of its own: path -> content type.
IMAGES = {
    "/img/plain.png": "image/png",
    "/img/lazy.png": "image/png",
    "/img/set-480.png": "image/png",
    "/img/set.png": "image/png",
    "/img/datasrc.png": "image/png",
    "/img/actual": "image/jpeg",  # no extension in the URL: the content type names it
    "/img/pic": "image/webp",
    "/img/pic-small.png": "image/png",
    "/img/tracker.gif": "image/gif",
    "/img/remote-only.png": "image/png",
}
# The post's images in reading order (after the first one comes back as a duplicate).
SAVED_IN_ORDER = ["/img/plain.png", "/img/lazy.png", "/img/set.png", "/img/datasrc.png", "/img/actual", "/img/pic"]


def gallery_html(cdn: str, site: str) -> str:
    return f"""<p>第一段：这篇文章的图片用了页面上能见到的每一种写法。</p>
<p><img src="{PROXY}{cdn}/img/plain.png" referrerpolicy="no-referrer" alt="代理前缀"></p>
<p><img class="lazy" data-original="{cdn}/img/lazy.png" src="{site}/static/placeholder.gif"></p>
<p><img srcset="{cdn}/img/set-480.png 480w, {cdn}/img/set.png 1080w" src="{cdn}/img/set-480.png"></p>
<p><img data-src="{cdn}/img/datasrc.png" src="{DATA_GIF}" loading="lazy"></p>
<p><img data-actualsrc="{cdn}/img/actual" src="{site}/static/placeholder.gif"></p>
<picture><source srcset="{cdn}/img/pic" type="image/webp"><img src="{cdn}/img/pic-small.png"></picture>
<p><img src="/static/relative.png" alt="相对地址"></p>
<p>同一张图片第二次出现：<img src="{cdn}/img/plain.png"></p>
<p><img src="{cdn}/img/tracker.gif" width="1" height="1"></p>
<p><img src="{cdn}/img/missing.png" alt="已删除"></p>
<p>最后一段：以上就是全部图片。</p>"""


def rss(site: str, items: str, title: str = "图集") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>{site}/</link>{items}</channel></rss>").encode()


def item(site: str, guid: str, html: str, title: str = "图片的每一种写法") -> str:
    return (f"<item><title>{title}</title><link>{site}/article/{guid}.html</link>"
            f"<guid isPermaLink='false'>{guid}</guid><pubDate>Fri, 29 Apr 2022 00:12:15 GMT</pubDate>"
            f"<description><![CDATA[{html}]]></description></item>")


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("images")
    with SiteServer() as site, SiteServer() as cdn:
        for i, (path, ctype) in enumerate(IMAGES.items()):
            # Hotlink protection: the image host's own pages, or no Referer at all.
            cdn.routes[path] = Resource(png(10 + i, 8 + i, (i * 20, 255 - i * 20, 99)), ctype,
                                        referer_required=cdn.base)
        cdn.routes["/robots.txt"] = Resource(b"User-agent: *\nAllow: /\n", "text/plain")
        site.routes["/static/placeholder.gif"] = Resource(png(1, 1, (0, 0, 0)), "image/gif")
        site.routes["/static/relative.png"] = Resource(png(33, 22, (1, 2, 3)), "image/png")
        site.routes["/gallery.xml"] = Resource(rss(site.base, item(site.base, "gallery", gallery_html(cdn.base,
                                                                                                   site.base))),
                                               "application/rss+xml")
        site.routes["/proxied.xml"] = Resource(rss(site.base, item(
            site.base, "proxied", f'<p>只链接远程图片。</p><p><img data-original="{cdn.base}/img/remote-only.png"></p>',
            title="远程图片")), "application/rss+xml")
        sources = write_sources(tmp, f"""sources:
  - name: gallery
    url: {site.base}/gallery.xml
  - name: proxied
    url: {site.base}/proxied.xml
    images: remote
    image_proxy: https://proxy.example/?
""")
        run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp / "data"))
        yield tmp / "data", site, cdn, run


def gallery(archive: Path) -> tuple[Path, dict, str]:
    (rel, (fm, body)), = [(rel, post) for rel, post in posts_of(archive).items() if post[0]["guid"] == "gallery"]
    return archive / "posts" / rel, fm, body


def local_links(body: str) -> list[str]:
    return [url for url in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", body) if not url.startswith("http")]


def test_every_image_saved_beside_the_post_in_reading_order(crawled) -> None:
    archive, site, cdn, run = crawled
    assert run.returncode == 0, run.stderr[-3000:]
    md, fm, body = gallery(archive)
    links = local_links(body)
    saved = [(md.parent / link).read_bytes() for link in links]
    expected = [cdn.routes[p].body for p in SAVED_IN_ORDER]
    expected.insert(6, site.routes["/static/relative.png"].body)  # relative URL, resolved on the site
    expected.insert(7, cdn.routes["/img/plain.png"].body)  # the duplicate, linked again
    assert saved == expected
    assert links[7] == links[0]
    # Named by content hash, with the extension of the content type, in the post's own folder.
    assert all(link.startswith(md.stem + "/") for link in links)
    assert Path(links[4]).suffix == ".jpg" and Path(links[5]).suffix == ".webp"
    assert fm["headimg"] == fm["thumbnail"] == links[0]


def test_placeholders_smaller_variants_and_trackers_are_never_fetched(crawled) -> None:
    _archive, site, cdn, _run = crawled
    requested = [path for path, _headers in site.log + cdn.log]
    for path in ("/static/placeholder.gif", "/img/set-480.png", "/img/pic-small.png", "/img/tracker.gif"):
        assert path not in requested, path


def test_hotlinked_image_refused_with_referer_then_fetched_without(crawled) -> None:
    archive, site, cdn, _run = crawled
    for path in SAVED_IN_ORDER:
        tries = [headers.get("Referer") for p, headers in cdn.log if p == path]
        assert tries == [f"{site.base}/article/gallery.html", None], path  # once each: duplicates too


def test_both_attempts_are_in_the_warc(crawled) -> None:
    archive, site, cdn, _run = crawled
    warcio_check(archive)
    url = cdn.base + "/img/plain.png"
    records = [rec for _name, rec, _payload in warc_records(archive) if rec.rec_headers["WARC-Target-URI"] == url]
    statuses = [int(rec.http_headers.get_statuscode()) for rec in records if rec.rec_type == "response"]
    referers = [rec.http_headers.get_header("Referer") for rec in records if rec.rec_type == "request"]
    assert statuses == [403, 200]
    assert referers == [f"{site.base}/article/gallery.html", None]


def test_failed_image_keeps_its_remote_link_and_is_counted(crawled) -> None:
    archive, _site, cdn, run = crawled
    _md, _fm, body = gallery(archive)
    assert f"![已删除]({cdn.base}/img/missing.png)" in body
    header, row = next((line.split(), next(r for r in run.stderr.splitlines() if r.startswith("gallery ")).split())
                       for line in run.stderr.splitlines() if line.startswith("source "))
    assert row[header.index("fail")] == "1"
    log = next((archive / "logs").glob("crawl-*.log")).read_text(encoding="utf-8")
    assert "'postarc/source/gallery/images_failed': 1" in log
    assert f"'postarc/images/hotlink_retry_ok': {len(SAVED_IN_ORDER)}" in log


def test_per_source_remote_images_are_linked_through_the_proxy(crawled) -> None:
    archive, _site, cdn, _run = crawled
    (fm, body), = [post for post in posts_of(archive).values() if post[0]["guid"] == "proxied"]
    remote = f"https://proxy.example/?{cdn.base}/img/remote-only.png"
    assert fm["headimg"] == remote and f"]({remote})" in body
    assert "/img/remote-only.png" not in [path for path, _headers in cdn.log]


# --- the seed's form --------------------------------------------------------------------------


@needs_tool(f"the shared seed post {SEED}", SEED.is_file())
def test_seed_form_options_write_posts_as_the_seed_is(site: SiteServer, tmp_path: Path) -> None:
    """The seed post's own HTML, archived with the seed's options, comes out in the seed's form."""
    seed_text = SEED.read_text(encoding="utf-8").lstrip()
    seed_fm, seed_body = read_front_matter(seed_text)
    html = seed_body.strip().removeprefix("<div>").removesuffix("</div>")
    site.routes["/feed.xml"] = Resource(rss(site.base, (
        f"<item><title>{seed_fm['title']}</title><link>{site.base}/article/1.html</link><author>{seed_fm['author']}</author>"
        f"<guid isPermaLink='false'>seed</guid><pubDate>{seed_fm['date']}</pubDate>"
        f"<description><![CDATA[{html}]]></description></item>"), "趣头条"), "application/rss+xml")
    sources = write_sources(tmp_path, f"sources:\n  - name: seed\n    url: {site.base}/feed.xml\n"
                                      f"    categories: [{', '.join(seed_fm['categories'])}]\n")
    run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp_path / "data"), "--body", "html",
                  "--date-format", "rfc1123", "--images", "remote", "--image-proxy", PROXY)
    assert run.returncode == 0, run.stderr[-3000:]
    (md,) = (tmp_path / "data" / "posts").rglob("*.md")
    text = md.read_text(encoding="utf-8")
    fm, body = read_front_matter(text)
    # The seed's keys, in the seed's order, with the seed's values; ours add provenance after them.
    assert list(fm)[: len(seed_fm)] == list(seed_fm)
    assert {k: fm[k] for k in seed_fm} == seed_fm
    assert "\ndate: Fri, 29 Apr 2022 00:12:15 GMT\n" in text
    # The body: the cleaned post HTML in a <div>, same text, same proxied images in order.
    assert body.startswith("<div>") and body.rstrip().endswith("</div>")
    assert text_blocks(body) == text_blocks(seed_body)
    src = re.compile(r'<img[^>]*\ssrc="([^"]+)"')
    assert src.findall(body) == src.findall(seed_body)
    assert not list((tmp_path / "data" / "posts").rglob("*.jpeg"))


def test_archive_command_takes_the_same_options(tmp_path: Path) -> None:
    """``postarc archive URL`` of an article page: local images (hotlinked: retried without the
    Referer) by default, proxied remote links and the seed's form with the options."""
    with SiteServer() as site, SiteServer() as cdn:
        cdn.routes["/img/photo"] = Resource(png(30, 20, (9, 8, 7)), "image/jpeg", referer_required=cdn.base)
        article = (f"<!doctype html><html><head><meta charset='utf-8'><title>一篇文章</title></head><body>"
                   f"<nav><a href='/'>首页</a></nav><article><h1>一篇文章</h1>"
                   f"{''.join(f'<p>第{i}段：这是文章正文，用来检验一次性归档命令同样接受输出选项。</p>' for i in range(8))}"
                   f"<p><img data-original='{cdn.base}/img/photo' src='/lazy.gif'></p></article></body></html>")
        site.routes["/a.html"] = Resource(article.encode())
        local = postarc("archive", site.url("/a.html"), "--archive", str(tmp_path / "local"))
        seed = postarc("archive", site.url("/a.html"), "--archive", str(tmp_path / "seed"), "--body", "html",
                       "--date-format", "rfc1123", "--images", "remote", "--image-proxy", PROXY)
        hotlink_tries = [headers.get("Referer") for path, headers in cdn.log if path == "/img/photo"]
    assert local.returncode == 0 and seed.returncode == 0, local.stderr[-2000:] + seed.stderr[-2000:]
    (fm, body), = posts_of(tmp_path / "local").values()
    assert fm["headimg"].endswith(".jpg") and f"]({fm['headimg']})" in body
    assert hotlink_tries == [site.url("/a.html"), None]  # the second run linked it remotely
    (md,) = (tmp_path / "seed" / "posts").rglob("*.md")
    fm, body = read_front_matter(md.read_text(encoding="utf-8"))
    assert fm["headimg"] == f"{PROXY}{cdn.base}/img/photo"
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", fm["date"])
    assert body.startswith("<div>") and f'src="{PROXY}{cdn.base}/img/photo"' in body
