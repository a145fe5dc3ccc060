"""Capture replay (``/web/``), along pywb's lines: the capture nearest a time, as it was.

- ``/web/<timestamp>/<url>``: links rewritten into the archive, a banner on HTML pages;
- ``/web/<timestamp>id_/<url>``: the payload as received, original headers;
- ``/web/*/<url>``: every capture of ``url``.

Archived headers that would act on the replay's origin are passed on as
``X-Archive-Orig-<name>`` (pywb's convention) instead.
"""

from __future__ import annotations

import logging
import re
import threading
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import lxml.html

from archive.cdxj import index_path
from archive.replay.index import CdxjIndex, ensure_index, timestamp_datetime
from archive.replay.ranges import ranged
from archive.replay.records import ArchiveReader, NotArchived, Replayed
from archive.replay.rewrite import archive_path, is_http_url, rewrite_css, rewrite_html
from archive.replay.ui import Templates, human_time
from archive.replay.wsgi import ARCHIVE_CSP, HttpError, Request, Response

logger = logging.getLogger(__name__)

INDEX_WAIT = 120  # seconds a request waits for the CDXJ index to be (re)built
TIMESTAMP_TEMPLATE = "20000101000000"
MODIFIERS = {"", "id_", "mp_", "if_", "fr_", "im_", "js_", "cs_", "oe_"}  # pywb's; only id_ differs here

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "content-length"}
ORIGIN_AFFECTING = {"set-cookie", "set-cookie2", "strict-transport-security", "public-key-pins", "clear-site-data",
                    "alt-svc", "service-worker-allowed", "content-security-policy",
                    "content-security-policy-report-only", "refresh", "link", "report-to", "nel",
                    "x-frame-options", "cross-origin-opener-policy", "cross-origin-embedder-policy",
                    "cross-origin-resource-policy", "access-control-allow-origin",
                    "access-control-allow-credentials", "location", "content-location"}
# Headers that no longer describe the body once it is decoded and rewritten.
REWRITE_CHANGES = {"content-encoding", "etag", "content-md5", "digest", "accept-ranges", "content-range"}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_WEB_PATH = re.compile(r"^(?P<ts>[^/]*?)(?P<mod>[a-z]{2}_)?/(?P<url>.+)$", re.DOTALL)
_SCHEME_SLASH = re.compile(r"^(https?):/+", re.IGNORECASE)
_HTML_TYPES = {"text/html", "application/xhtml+xml"}


def _good_host(url: str) -> bool:
    """A host name a request could have gone to (percent-escapes of an IDN allowed, controls not)."""
    host = unquote(urlsplit(url).hostname or "")
    return bool(host) and not any(ord(c) < 33 or c in "/\\%@<>\"" for c in host)


def _timestamp(ts: str) -> str:
    """4 to 14 digits (a year up to a second), padded to 14; anything else is a 400."""
    if not ts.isdigit() or not 4 <= len(ts) <= 14 or not ts.isascii():
        raise HttpError(400, "Bad timestamp", "A timestamp is 4 to 14 digits: YYYYmmddHHMMSS.")
    full = ts + TIMESTAMP_TEMPLATE[len(ts):]
    try:
        timestamp_datetime(full)
    except ValueError as exc:
        raise HttpError(400, "Bad timestamp", f"{ts} is not a date and time: {exc}.") from exc
    return full


class CaptureReplay:
    """The captures of one archive: its CDXJ index (built in the background) and its WARC files."""

    def __init__(self, archive: Path, templates: Templates) -> None:
        self.archive = archive
        self.templates = templates
        self.index = CdxjIndex(index_path(archive))
        self.reader = ArchiveReader(archive, self.index)
        self._ready = threading.Event()
        self._error = ""

    def prepare_index(self) -> None:
        """Bring the CDXJ index up to date (in a thread of its own: requests wait for it)."""
        try:
            ensure_index(self.archive)
        except Exception as exc:  # a corrupt WARC must not take the whole UI down
            logger.exception("building the CDXJ index failed")
            self._error = str(exc)
        finally:
            self._ready.set()

    def index_usable(self) -> bool:
        """Wait (up to ``INDEX_WAIT``) for the index; whether it was built."""
        return self._ready.wait(timeout=INDEX_WAIT) and not self._error

    def web(self, request: Request, rest: str) -> Response:
        if not self._ready.wait(timeout=INDEX_WAIT):
            raise HttpError(503, "Index not ready", "The capture index is still being built; try again shortly.",
                            [("Retry-After", "10")])
        if self._error:
            raise HttpError(503, "No capture index", f"The capture index could not be built: {self._error}")
        m = _WEB_PATH.match(rest)
        if not m:
            raise HttpError(400, "Bad archive address", "Use /web/<timestamp>/<url> or /web/*/<url>.")
        ts, mod, url = m.group("ts"), m.group("mod") or "", m.group("url")
        if request.query:
            url += "?" + request.query
        url = _SCHEME_SLASH.sub(lambda s: s.group(1) + "://", url, count=1)  # "http:/x": a collapsed "//"
        if not is_http_url(url) or not _good_host(url) or any(ch in url for ch in "\x00\r\n\t "):
            raise HttpError(400, "Bad URL", "The archived address must be an absolute http(s) URL.")
        if ts == "*" and not mod:
            return self.capture_list(url)
        if mod not in MODIFIERS:
            raise HttpError(400, "Bad archive address", f"Unknown modifier {mod!r}.")
        timestamp = _timestamp(ts)
        capture = self.index.nearest(url, timestamp)
        if capture is None:
            # An image behind a CORS proxy was fetched from its origin (archive.html.unwrap_proxy,
            # as the crawl does): the origin's capture stands in for the proxied URL.
            from archive.html import unwrap_proxy  # lxml and its cleaner: only when needed

            origin = unwrap_proxy(url)
            capture = self.index.nearest(origin, timestamp) if origin != url and is_http_url(origin) else None
        if capture is None:
            return self.not_archived(url)
        try:
            replayed = self.reader.load(capture, stream=True)
        except NotArchived as exc:
            return self.not_archived(url, str(exc))
        if replayed.payload is not None and self._as_stored(replayed, raw=mod == "id_"):
            return self.streamed(request, replayed, raw=mod == "id_")
        if replayed.payload is not None:
            replayed.body = replayed.payload.read_all()
        return self.raw(replayed) if mod == "id_" else self.rewritten(replayed)

    def not_archived(self, url: str, reason: str = "") -> Response:
        return self.templates.render("not_archived.html", 404, url=url, reason=reason)

    def capture_list(self, url: str) -> Response:
        captures = self.index.captures(url)
        if not captures:
            return self.not_archived(url)
        return self.templates.render("captures.html", url=url, captures=captures)

    @staticmethod
    def _archive_headers(replayed: Replayed, raw: bool) -> list[tuple[str, str]]:
        """Original headers that are safe to pass on, the others as ``X-Archive-Orig-*``.

        ``Content-Type`` is left to the caller; a redirect's ``Location`` points into the archive.
        """
        capture = replayed.capture
        out = [("Memento-Datetime", format_datetime(capture.when, usegmt=True))]
        changed = set() if raw else REWRITE_CHANGES
        for name, value in replayed.headers:
            lower = name.lower()
            if not _TOKEN.match(name) or lower == "content-type":
                continue
            if lower in ("location", "content-location"):
                try:
                    target = urljoin(replayed.target_uri, value.strip())
                except ValueError:
                    target = ""
                if is_http_url(target):
                    out.append((name, archive_path(capture.timestamp, target, "id_" if raw else "")))
            if lower in HOP_BY_HOP or lower in ORIGIN_AFFECTING or lower in changed:
                out.append(("X-Archive-Orig-" + name, value))
            else:
                out.append((name, value))
        return out

    @staticmethod
    def _as_stored(replayed: Replayed, raw: bool) -> bool:
        """Whether the payload goes out as the WARC stores it (so it can be streamed, and ranges
        of it served): a whole response (200), not content-encoded, and not HTML or CSS (whose
        links are rewritten) unless ``raw``."""
        encoding = (replayed.header("Content-Encoding") or "").strip().lower()
        mime = (replayed.header("Content-Type") or replayed.capture.mime or "").split(";")[0].strip().lower()
        return (replayed.status == 200 and encoding in ("", "identity")
                and (raw or (mime not in _HTML_TYPES and mime != "text/css")))

    def streamed(self, request: Request, replayed: Replayed, raw: bool) -> Response:
        """The payload read from the WARC piece by piece, or the range of it asked for (audio and
        video players seek with Range requests); the archived response's own ranges are no more."""
        assert replayed.payload is not None
        ctype = replayed.header("Content-Type") or replayed.capture.mime or "application/octet-stream"
        headers = [(k if k.lower() not in ("accept-ranges", "content-range") else "X-Archive-Orig-" + k, v)
                   for k, v in self._archive_headers(replayed, raw=True)]
        validators = tuple(v for k, v in replayed.headers if k.lower() in ("etag", "last-modified"))
        return ranged(request, replayed.payload.length, replayed.payload.read, ctype, headers, ARCHIVE_CSP,
                      validators)

    def raw(self, replayed: Replayed) -> Response:
        """The payload exactly as received (still content-encoded, with its Content-Encoding)."""
        ctype = replayed.header("Content-Type") or "application/octet-stream"
        return Response(replayed.status or 200, replayed.body, ctype, self._archive_headers(replayed, raw=True),
                        csp=ARCHIVE_CSP)

    def rewritten(self, replayed: Replayed) -> Response:
        """The capture decoded, HTML and CSS with their links rewritten into the archive."""
        ctype = replayed.header("Content-Type") or replayed.capture.mime or "application/octet-stream"
        mime = ctype.split(";")[0].strip().lower()
        try:
            body = replayed.decoded_body()
        except ValueError:  # undecodable: pass it on as stored, labelled as stored
            return self.raw(replayed)
        ts, url = replayed.capture.timestamp, replayed.capture.url
        if mime in _HTML_TYPES:
            body = rewrite_html(body, ctype, url, ts, banner=lambda: self._banner(replayed))
            ctype = "text/html; charset=utf-8"
        elif mime == "text/css":
            charset = re.search(r"charset=([\w-]+)", ctype)
            try:
                text = body.decode(charset.group(1) if charset else "utf-8", "replace")
            except LookupError:
                text = body.decode("utf-8", "replace")
            body = rewrite_css(text, url, ts).encode("utf-8")
            ctype = "text/css; charset=utf-8"
        return Response(replayed.status or 200, body, ctype, self._archive_headers(replayed, raw=False),
                        csp=ARCHIVE_CSP)

    def _banner(self, replayed: Replayed) -> lxml.html.HtmlElement:
        capture = replayed.capture
        fragment = self.templates.fragment("banner.html", capture=capture, when=human_time(capture.when),
                                           revisit=replayed.original is not None)
        return lxml.html.fragment_fromstring(fragment)
