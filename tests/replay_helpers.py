"""What the replay, reextract and browser tests share: archives whose origin is gone, and a
``postarc replay`` server running on one of them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from crawler.demo.server import Resource, SiteServer
from crawler.demo.site import build_routes, sources_yaml
from tests.helpers import postarc, write_sources

#: Sources the test archives add to the demo's: a feed with an undated entry and a relative
#: date (both dated from the fetch time), whose article page carries a script.
EXTRA_SOURCE = """  - name: extra
    url: {base}/extra.xml
    categories: [额外]
    follow_links: true
    timezone: Asia/Shanghai
"""
HOSTILE_PAGE = """<!doctype html><html><head><meta charset="gbk"><title>脚本页面</title>
<base href="{base}/posts/">
<style>body {{ background: url(bg.png) }}</style></head>
<body><script>document.title = "script ran"; fetch("/state.sqlite");</script>
<p onclick="alert(1)">这一页带着脚本，回放时脚本不能运行。</p>
<a href="relative.html">relative</a> <img src="{base}/img/team.png" srcset="{base}/img/team.png 2x">
<meta http-equiv="refresh" content="30; url={base}/elsewhere"></body></html>"""


def extra_feed(base: str, items: list[tuple[str, str, str | None, str]]) -> bytes:
    """An RSS feed of (guid, title, pubDate or None, body HTML) items linking to /extra/<guid>.html."""
    out = []
    for guid, title, date, body in items:
        date_el = f"<pubDate>{date}</pubDate>" if date else ""
        out.append(f"<item><title>{title}</title><link>{base}/extra/{guid}.html</link>"
                   f"<guid isPermaLink=\"false\">{guid}</guid>{date_el}<description><![CDATA[{body}]]></description></item>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>额外</title>'
            f"<link>{base}/</link><description>extra</description>{''.join(out)}</channel></rss>").encode()


def extra_routes(base: str, items: list[tuple[str, str, str | None, str]]) -> dict[str, Resource]:
    routes = {"/extra.xml": Resource(extra_feed(base, items), "application/rss+xml; charset=utf-8")}
    for guid, title, _date, body in items:
        page = HOSTILE_PAGE.format(base=base) if guid == "script" else (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><article><h1>{title}</h1>{body}</article></body></html>")
        routes[f"/extra/{guid}.html"] = Resource(page.encode("gbk" if guid == "script" else "utf-8"),
                                                 "text/html; charset=gbk" if guid == "script" else "text/html")
    return routes


EXTRA_ITEMS = [
    ("undated", "没有日期的帖子", None, "<p>这条没有发布时间，日期取自抓取时间。</p>"),
    ("relative", "三小时前的帖子", "3小时前", "<p>相对日期：三小时前发布。</p>"),
    ("script", "带脚本的页面", "Mon, 01 Jan 2024 08:00:00 GMT",
     "<p>这一页带着脚本，回放时脚本不能运行。</p><p>正文足够长，让页面正文胜出或者不胜出都无所谓。</p>"),
]


def crawl(site: SiteServer, archive: Path, tmp: Path, *, extra: bool = True) -> str:
    """One ``postarc crawl`` of what ``site`` serves now; returns its stderr."""
    text = sources_yaml(site.base) + (EXTRA_SOURCE.format(base=site.base) if extra else "")
    sources = write_sources(tmp, text)
    run = postarc("crawl", "--sources", str(sources), "--archive", str(archive))
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stderr


def demo_archive(archive: Path, tmp: Path, runs: int = 1) -> str:
    """The demo aggregator (plus the extra feed) crawled ``runs`` times; the origin then stops.

    Returns the origin's base URL, which no longer answers.
    """
    with SiteServer() as site:
        site.routes.update(build_routes(site.base))
        site.routes.update(extra_routes(site.base, EXTRA_ITEMS))
        for _ in range(runs):
            crawl(site, archive, tmp)
        return site.base


@dataclass
class Replay:
    """A running ``postarc replay`` (a subprocess, as users run it)."""

    proc: subprocess.Popen[str]
    base: str
    log: Path

    def get(self, path: str, method: str = "GET", headers: dict[str, str] | None = None,
            data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request; HTTP errors are answers too."""
        req = urllib.request.Request(self.base + path, method=method, headers=headers or {}, data=data)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=60) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()

    def wait_for_search(self, timeout: float = 60) -> None:
        """Until the search index has caught up with posts/."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _status, _headers, body = self.get("/?q=sync-probe")
            if "being updated".encode() not in body:
                return
            time.sleep(0.2)
        raise AssertionError("search index never finished")

    def stop(self) -> str:
        """Stop the server; returns everything it printed."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.log.read_text(encoding="utf-8", errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 (urllib's signature)
        return None


def start_replay(archive: Path, *extra: str, timeout: float = 60) -> Replay:
    """``postarc replay --archive ARCHIVE --port 0``; returns once it says where it listens.

    Its output goes to a file next to the archive (a pipe nobody reads would fill and block it).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = archive.parent / f"replay-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", "replay", "--archive", str(archive),
                                 "--port", "0", *extra], stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        m = re.search(r"serving .* at (http://[^/\s]+)/", text)
        if m:
            return Replay(proc, m.group(1), log)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("postarc replay did not start:\n" + log.read_text(encoding="utf-8", errors="replace"))
