"""A hostile aggregator on 127.0.0.1: every fault a crawler meets, next to well-behaved feeds.

Wire-level faults (stalls, resets, short bodies, streamed bombs) are ``tests.rawhttp`` behaviours:
functions that answer on the socket themselves. ``fault_site`` puts them all on one
``RawSite``: good feeds, feeds that fail in every way, and a feed whose entries are hostile
(their article pages fail, their titles attack paths and YAML, their images climb with
``..%2F``). ``Expect`` says what a crawl of it must give.
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from html import escape

import psutil

from bench.synthetic import noise_png
from tests.rawhttp import Behaviour, RawSite, message, ok

MB = 1 << 20
BOMB_INFLATED = 1 << 30  # what the gzip bomb inflates to
HUGE_PAGE = 60 * MB  # more than DOWNLOAD_MAXSIZE (50 MB)


# -- behaviours ------------------------------------------------------------------------------------


def sequence(*answers: bytes) -> Behaviour:
    """Each request takes the next answer; the last one stays (``500`` then ``200``)."""
    left = list(answers)

    def answer(conn: socket.socket) -> bool:
        conn.sendall(left.pop(0) if len(left) > 1 else left[0])
        return True

    return answer


def stall(seconds: float = 300.0) -> Behaviour:
    """A head and the first bytes of a body, then nothing for ``seconds`` (or until the client hangs up)."""

    def answer(conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n<html><p>")
        conn.settimeout(seconds)
        try:
            while conn.recv(4096):  # returns b"" when the client gives up and closes
                pass
        except TimeoutError:
            pass
        return False

    return answer


def short_body(declared: int = 100_000, sent: int = 1000) -> Behaviour:
    """``Content-Length: declared`` but only ``sent`` bytes, then the connection closes."""

    def answer(conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                     b"Content-Length: %d\r\n\r\n<rss>%s" % (declared, b"x" * (sent - 5)))
        return False

    return answer


def reset() -> Behaviour:
    """The request is read, then the connection is reset (RST, not FIN)."""

    def answer(conn: socket.socket) -> bool:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False  # RawSite closes the socket: with linger 0 that sends RST

    return answer


def gzip_bomb(inflated: int = BOMB_INFLATED, content_type: str = "text/html") -> Behaviour:
    """``Content-Encoding: gzip`` that inflates to ``inflated`` bytes of zeros (~1 KB on the wire per MB).

    Built of identical gzip members (a multi-member stream, which every gunzip reads through), so
    it is made in milliseconds and streamed without ever holding the inflated bytes.
    """
    member_size = 16 * MB
    member = gzip.compress(b"\0" * member_size, compresslevel=9, mtime=0)
    count = inflated // member_size

    def answer(conn: socket.socket) -> bool:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Encoding: gzip\r\n"
                     f"Content-Length: {len(member) * count}\r\n\r\n".encode())
        for _ in range(count):
            conn.sendall(member)
        return True

    return answer


def huge(size: int = HUGE_PAGE, declared: bool = True) -> Behaviour:
    """A page of ``size`` bytes, streamed 1 MB at a time; without ``declared`` no Content-Length
    (the body ends when the connection closes), so only counting the bytes can stop it."""
    chunk = (b"<p>" + b"filler " * 150_000)[:MB]

    def answer(conn: socket.socket) -> bool:
        length = f"Content-Length: {size}\r\n" if declared else "Connection: close\r\n"
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n{length}\r\n".encode())
        for _ in range(size // MB):
            conn.sendall(chunk)
        return False

    return answer


def redirect(location: str, status: str = "302 Found") -> bytes:
    return message(f"HTTP/1.1 {status}", [("Location", location)], b"")


# -- feeds -----------------------------------------------------------------------------------------


def rss(title: str, items: list[str]) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
            f'{"".join(items)}</channel></rss>').encode()


def rss_item(*, guid: str | None = None, title: str | None = None, link: str | None = None,
             date: str | None = "Fri, 29 Apr 2022 00:12:15 GMT", html: str = "") -> str:
    parts = [f"<title><![CDATA[{title}]]></title>" if title is not None else "",
             f"<link>{escape(link)}</link>" if link is not None else "",
             f"<guid isPermaLink=\"false\">{escape(guid)}</guid>" if guid is not None else "",
             f"<pubDate>{date}</pubDate>" if date is not None else "",
             f"<description>{escape(html)}</description>"]
    return f"<item>{''.join(parts)}</item>"


def feed_text(key: str) -> str:
    """A body only the feed carries: a post made from the feed is known by it."""
    return f"<p>Feed text of {key}: the entry's own words, kept when its page is lost.</p>"


#: Titles that attack paths, YAML and terminals (``\x00`` and other controls go by JSON Feed:
#: XML cannot carry them).
HOSTILE_TITLES = [
    "../../x", "..\\..\\x", "/etc/passwd", "a\x00b\x01c\x1fd\x7fe", "---\ntitle: injected\n---",
    "CON", "nul", "aux.txt", "COM1", "t" * 600, "\u202egnp.exe", "\u2066rtl\u2069 isolate",
    "😀🙈" * 20, "it's \"quoted\": yes # no comment", "\ud800 lone surrogate", "\t\n \r",
]


@dataclass
class Expect:
    """What a crawl of the fault site must give."""

    good: set[str] = field(default_factory=set)  # guids of posts that must be archived whole
    from_feed: dict[str, str] = field(default_factory=dict)  # guid -> feed text its post keeps
    failing_sources: dict[str, str] = field(default_factory=dict)  # source -> words of its reason
    failing_pages: set[str] = field(default_factory=set)  # article URLs that must be reported
    sources: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, feed path, follow_links)

    def sources_yaml(self, base: str) -> str:
        # The hostile entries link to the good feed's pages (a page that answers), each with its
        # own feed text: under `dedup: across` they would be one story with those posts.
        lines = ["defaults: {dedup: within}", "sources:"]
        for name, path, follow in self.sources:
            lines += [f"  - name: {name}", f"    url: {base}{path}", f"    follow_links: {str(follow).lower()}"]
        return "\n".join(lines) + "\n"


def fault_site(site: RawSite) -> Expect:
    """Fill ``site.routes`` with the hostile aggregator; returns what a crawl must give."""
    base, routes, expect = site.base, site.routes, Expect()
    routes["/robots.txt"] = ok(b"User-agent: *\nAllow: /\n", "text/plain")
    png = ok(noise_png(1, 24, 24), "image/png")

    # Well-behaved feeds, and two that only work the second time.
    good_items = []
    for i in range(3):
        routes[f"/good/{i}.html"] = ok(f"<html><body><article><h1>Good {i}</h1>"
                                       f"<p>{f'Page words of good post {i}. ' * 30}</p></article></body></html>".encode())
        routes[f"/good/{i}.png"] = png
        good_items.append(rss_item(guid=f"good-{i}", title=f"Good {i}", link=f"{base}/good/{i}.html",
                                   html=feed_text(f"good-{i}") + f'<img src="{base}/good/{i}.png">'))
        expect.good.add(f"good-{i}")
    routes["/feeds/good.xml"] = ok(rss("good", good_items), "application/rss+xml")
    routes["/feeds/flaky.xml"] = sequence(
        message("HTTP/1.1 500 Internal Server Error", [], b"try again"),
        ok(rss("flaky", [rss_item(guid="flaky-1", title="Second time lucky", html=feed_text("flaky-1"))]),
           "application/rss+xml"))
    routes["/feeds/throttled.xml"] = sequence(
        message("HTTP/1.1 429 Too Many Requests", [("Retry-After", "1")], b"slow down"),
        ok(rss("throttled", [rss_item(guid="throttled-1", title="After waiting", html=feed_text("throttled-1"))]),
           "application/rss+xml"))
    # Broken XML that a lenient parser can still read (reported, kept); entity attacks, refused.
    malformed = rss("malformed", [rss_item(guid="malformed-1", title="Unclosed", html=feed_text("malformed-1"))])
    routes["/feeds/malformed.xml"] = ok(malformed.replace(b"</item>", b"", 1), "application/rss+xml")
    laughs = "".join(f'<!ENTITY {chr(98 + i)} "{f"&{chr(97 + i)};" * 10}">' for i in range(9))
    routes["/feeds/laughs.xml"] = ok(rss("laughs", [rss_item(guid="laughs-1", title="&j;", html=feed_text("laughs-1"))])
                                     .replace(b"<rss", f'<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">{laughs}]><rss'.encode(), 1)
                                     .replace(b"<![CDATA[&j;]]>", b"&j;"), "application/rss+xml")
    routes["/feeds/xxe.xml"] = ok(rss("xxe", [rss_item(guid="xxe-1", title="A&x;B", html=feed_text("xxe-1"))])
                                  .replace(b"<rss", b'<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]><rss', 1)
                                  .replace(b"<![CDATA[A&x;B]]>", b"A&x;B"), "application/rss+xml")
    expect.good |= {"flaky-1", "throttled-1", "malformed-1", "laughs-1", "xxe-1"}
    expect.sources += [("good", "/feeds/good.xml", True), ("flaky", "/feeds/flaky.xml", False),
                       ("throttled", "/feeds/throttled.xml", False), ("malformed", "/feeds/malformed.xml", False),
                       ("laughs", "/feeds/laughs.xml", False), ("xxe", "/feeds/xxe.xml", False)]

    # Every fault as a feed: the source fails, with its reason.
    faults: dict[str, tuple[bytes | Behaviour, str]] = {
        "stall": (stall(), "timeout"),
        "short": (short_body(), "body cut short"),
        "reset": (reset(), "connection lost"),
        "bomb": (gzip_bomb(), "too large"),
        "huge": (huge(), "too large"),
        "huge-stream": (huge(declared=False), "too large"),
        "loop": (redirect("/fault/loop-b"), "redirect loop"),
        "invalid-xml": (ok(b'<?xml version="1.0"?><<<>>>&&&<\x00>', "application/rss+xml"), "not a feed"),
        "empty": (ok(b"", "application/rss+xml"), "empty document"),
        "html": (ok(b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Welcome</p></body></html>"),
                 "HTML page"),
        "error": (message("HTTP/1.1 500 Internal Server Error", [], b"down"), "HTTP 500"),
    }
    routes["/fault/loop-b"] = redirect("/feed/loop")
    for name, (answer, reason) in faults.items():
        routes[f"/feed/{name}"] = answer
        expect.sources.append((f"feed-{name}", f"/feed/{name}", False))
        expect.failing_sources[f"feed-{name}"] = reason

    # Hostile entries: article pages that fail in every way, missing fields, attacking titles,
    # images that climb out of their folder. Every one must become a post with its feed text.
    items = []
    for name in ("stall", "short", "reset", "bomb", "huge", "huge-stream", "loop", "error"):
        page = f"/page/{name}"
        routes[page] = faults[name][0] if name != "loop" else redirect("/page/loop-b")
        routes["/page/loop-b"] = redirect("/page/loop")
        guid = f"page-{name}"
        items.append(rss_item(guid=guid, title=f"Page fault {name}", link=base + page, html=feed_text(guid)))
        expect.from_feed[guid] = feed_text(guid)
        expect.failing_pages.add(base + page)
    # Pages just under DOWNLOAD_MAXSIZE, several at once: fetched and archived, not parsed
    # (POSTARC_PAGE_MAXSIZE), or each would take a worker gigabytes.
    big = ok(b"<html><body><article>" + b"<p>w</p>" * (45 * MB // 8) + b"</article></body></html>")
    for n in range(4):
        routes[f"/page/big-{n}"] = big
        items.append(rss_item(guid=f"page-big-{n}", title=f"Big page {n}", link=f"{base}/page/big-{n}",
                              html=feed_text(f"page-big-{n}")))
        expect.from_feed[f"page-big-{n}"] = feed_text(f"page-big-{n}")
    # A page of 100 000 elements: extraction time grows faster than that (an hour); it is refused.
    routes["/page/dense"] = ok(b"<html><body><article>" + b"<p>w</p>" * 100_000 + b"</article></body></html>")
    items.append(rss_item(guid="page-dense", title="Page too dense", link=base + "/page/dense",
                          html=feed_text("page-dense")))
    expect.from_feed["page-dense"] = feed_text("page-dense")

    # Links that must not be followed anywhere (a local file) or that make no request at all.
    odd_links = {"local-file": "file:///etc/passwd", "bad-host": "http://[bad", "bad-port": "http://127.0.0.1:99999/",
                 "mailto": "mailto:someone@example.org", "javascript": "javascript:alert(1)"}
    items += [rss_item(guid=guid, title=f"Odd link {guid}", link=link, html=feed_text(guid))
              for guid, link in odd_links.items()]
    expect.from_feed.update({guid: feed_text(guid) for guid in odd_links})
    no_link = rss_item(guid="no-link", title="No link", html=feed_text("no-link"))
    no_title = rss_item(guid="no-title", link=f"{base}/good/0.html", html=feed_text("no-title"))
    no_date = rss_item(guid="no-date", title="No date", date=None, html=feed_text("no-date"))
    bad_date = rss_item(guid="bad-date", title="Bad date", date="yesterday-ish 99:99", html=feed_text("bad-date"))
    climbing = "".join(f'<img src="{base}{path}">' for path in (
        "/img/..%2F..%2F..%2F..%2Fescape.png", "/img/%2e%2e%2f%2e%2e%2fescape2.png", "/..%2F..%2Fescape3.png"))
    for path in ("/img/..%2F..%2F..%2F..%2Fescape.png", "/img/%2e%2e%2f%2e%2e%2fescape2.png",
                 "/..%2F..%2Fescape3.png"):
        routes[path] = png
    routes["/img/bomb.png"] = gzip_bomb(content_type="image/png")
    routes["/img/huge.png"] = huge()
    images = rss_item(guid="climbing-images", title="Images that climb", link=f"{base}/good/1.html",
                      html=feed_text("climbing-images") + climbing
                      + f'<img src="{base}/img/bomb.png"><img src="{base}/img/huge.png">')
    items += [no_link, no_title, no_date, bad_date, images]
    for guid in ("no-link", "no-title", "no-date", "bad-date", "climbing-images"):
        expect.from_feed[guid] = feed_text(guid)
    for n, title in enumerate(HOSTILE_TITLES):
        if all(c >= " " or c in "\t\n\r" for c in title) and "\ud800" not in title:  # XML can carry it
            items.append(rss_item(guid=f"title-rss-{n}", title=title, link=f"{base}/good/2.html",
                                  html=feed_text(f"title-rss-{n}")))
            expect.from_feed[f"title-rss-{n}"] = feed_text(f"title-rss-{n}")
    routes["/feeds/faulty.xml"] = ok(rss("faulty", items), "application/rss+xml")
    expect.sources.append(("faulty", "/feeds/faulty.xml", True))

    json_items = [{"id": f"title-json-{n}", "title": title, "content_html": feed_text(f"title-json-{n}"),
                   "date_published": "2024-07-25T14:08:07+08:00"} for n, title in enumerate(HOSTILE_TITLES)]
    json_items.append({"id": "json-empty"})  # no title, no body, no date, no link
    routes["/feeds/hostile.json"] = ok(json.dumps({"version": "https://jsonfeed.org/version/1.1",
                                                   "title": "hostile", "items": json_items}).encode(),
                                       "application/feed+json")
    for item in json_items[:-1]:
        expect.from_feed[item["id"]] = item["content_html"]
    expect.good.add("json-empty")
    expect.sources.append(("hostile-json", "/feeds/hostile.json", False))
    return expect


def wait_for(predicate, timeout: float = 60.0, step: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


class PeakMemory:
    """The peak memory of a process tree, sampled from a thread: ``with PeakMemory(pid) as m: …; m.peak``.

    Each process's own high-water mark (``VmHWM``, which the kernel keeps, so no spike between two
    samples is missed) is summed over every process ever seen in the tree: an upper bound of the
    tree's peak RSS.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.high: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def peak(self) -> int:
        return sum(self.high.values())

    @property
    def largest(self) -> int:
        """The highest high-water mark of one process of the tree."""
        return max(self.high.values(), default=0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return  # the root exited
            for proc in tree:
                try:
                    with open(f"/proc/{proc.pid}/status", encoding="ascii") as status:
                        hwm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
                except (OSError, StopIteration):
                    continue  # exited meanwhile
                self.high[proc.pid] = max(self.high.get(proc.pid, 0), hwm)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
