"""The replay web app (WSGI): the posts, their Markdown, and the captures as they were.

Routes (every one GET/HEAD only):

- ``/`` posts newest first, filters ``source``, ``category``, ``from``, ``to``; ``q`` searches;
- ``/posts/<YYYY>/<MM>/<slug>`` a post rendered, its images beside it under the same prefix
  (``.md`` appended gives the file as written);
- ``/web/<timestamp>/<url>`` the capture of ``url`` nearest the time, links rewritten into
  the archive; ``/web/<timestamp>id_/<url>`` the payload as received, original headers;
  ``/web/*/<url>`` every capture of ``url``;
- ``/_static/<file>`` the stylesheet.

Archived documents are served with a ``Content-Security-Policy`` sandbox and no script source,
so nothing they carry runs on the replay's origin; the UI itself runs no scripts either.
"""

from __future__ import annotations

import ipaddress
import logging
import mimetypes
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit

import lxml.html
import yaml
from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt

from archive.cdxj import index_path
from archive.replay.index import Capture, CdxjIndex, ensure_index, timestamp_datetime
from archive.replay.library import BadQuery, Filters, Library
from archive.replay.records import ArchiveReader, NotArchived, Replayed
from archive.replay.rewrite import archive_path, is_http_url, rewrite_css, rewrite_fragment, rewrite_html
from archive.replay.search import SearchIndex

logger = logging.getLogger(__name__)

MAX_TARGET = 8192  # bytes of request-target; longer gets 414
MAX_QUERY_FIELDS = 20
INDEX_WAIT = 120  # seconds a /web/ request waits for the CDXJ index to be (re)built
SEARCH_RESYNC = 30  # seconds between two search index syncs triggered by requests
TIMESTAMP_TEMPLATE = "20000101000000"
MODIFIERS = {"", "id_", "mp_", "if_", "fr_", "im_", "js_", "cs_", "oe_"}  # pywb's; only id_ differs here

UI_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self'; form-action 'self'; "
          "base-uri 'none'; frame-ancestors 'none'")
ARCHIVE_CSP = ("sandbox; default-src 'self' data: blob:; script-src 'none'; object-src 'none'; "
               "style-src 'self' 'unsafe-inline' data:; connect-src 'none'; form-action 'none'; "
               "base-uri 'none'; frame-ancestors 'self'")
COMMON_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")]

# Headers of an archived response that must not act on the replay's origin: kept for the
# record as X-Archive-Orig-<name> (pywb's convention) instead.
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


class HttpError(Exception):
    def __init__(self, status: int, title: str, detail: str = "", headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(f"{status} {title}")
        self.status, self.title, self.detail, self.headers = status, title, detail, list(headers)


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    csp: str = UI_CSP

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        headers = [("Content-Type", self.content_type), ("Content-Length", str(len(self.body))),
                   ("Content-Security-Policy", self.csp), *COMMON_HEADERS, *self.headers]
        start_response(f"{self.status} {_reason(self.status)}", [_safe_header(k, v) for k, v in headers])
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [self.body]


def _is_file(path: Path) -> bool:
    """``Path.is_file`` that also says no to names the file system refuses (ENAMETOOLONG…)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Archived"


def _safe_header(name: str, value: str) -> tuple[str, str]:
    """A header WSGI can send: no line breaks, bytes beyond latin-1 passed through as UTF-8."""
    value = re.sub(r"[\r\n]+", " ", value)
    return name, value.encode("utf-8", "replace").decode("latin-1") if not value.isascii() else value


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # still percent-encoded
    query: str

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Request:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            raise HttpError(405, "Method not allowed", "The archive is read-only: GET and HEAD only.",
                            [("Allow", "GET, HEAD")])
        length = environ.get("CONTENT_LENGTH") or "0"
        if (not length.isdigit() or int(length) > 0) or environ.get("HTTP_TRANSFER_ENCODING"):
            raise HttpError(413, "Request body not accepted", "Requests to the archive carry no body.")
        target = environ.get("REQUEST_URI")
        if target is None:  # another WSGI server: rebuild it from the decoded path
            target = quote(environ.get("PATH_INFO", "/").encode("latin-1"), safe="/:@!$&'()*+,;=~")
            if environ.get("QUERY_STRING"):
                target += "?" + environ["QUERY_STRING"]
        if not target.isascii():  # raw UTF-8 from a client that did not escape it (the server read latin-1)
            target = quote(target.encode("latin-1", "replace"), safe="".join(map(chr, range(33, 127))))
        if len(target) > MAX_TARGET:
            raise HttpError(414, "Request-URI too long", f"At most {MAX_TARGET} bytes.")
        if urlsplit(target).scheme and target.lower().startswith(("http:", "https:")):
            target = urlsplit(target)._replace(scheme="", netloc="").geturl() or "/"  # absolute-form
        path, _, query = target.partition("?")
        if not path.startswith("/"):
            raise HttpError(400, "Bad request", "The request target must be a path.")
        return cls(method, path, query)

    def params(self) -> dict[str, str]:
        try:
            pairs = parse_qsl(self.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS,
                              errors="strict")
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, "Bad query string", str(exc)) from exc
        return dict(pairs)


def _good_host(url: str) -> bool:
    """A host name a request could have gone to (percent-escapes of an IDN allowed, controls not)."""
    host = unquote(urlsplit(url).hostname or "")
    return bool(host) and not any(ord(c) < 33 or c in "/\\%@<>\"" for c in host)


def _unquote_path(path: str) -> str:
    try:
        return unquote(path, errors="strict")
    except UnicodeDecodeError as exc:
        raise HttpError(400, "Bad path", "The path is not UTF-8.") from exc


def _human_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, without its port, lowercased (``[::1]:80`` -> ``::1``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def is_loopback_name(name: str) -> bool:
    """``localhost``, a ``*.localhost`` name (RFC 6761: browsers keep them on this machine) or a
    loopback address."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class ReplayApp:
    """The WSGI application over one archive directory.

    ``loopback_only``: answer only requests whose ``Host`` names this machine (the default
    when served on a loopback address). A page on another site that rebinds its own name to
    127.0.0.1 (DNS rebinding) would otherwise read the archive with the visitor's browser;
    its requests carry its own name as ``Host``, and get 421.
    """

    def __init__(self, archive_dir: str | Path, loopback_only: bool = False) -> None:
        self.loopback_only = loopback_only
        self.archive = Path(archive_dir).resolve()
        self.posts_dir = self.archive / "posts"
        state = self.archive / "state.sqlite"
        if not state.is_file():
            raise FileNotFoundError(f"{self.archive} is not a postarc archive (no state.sqlite)")
        self.index = CdxjIndex(index_path(self.archive))
        self.reader = ArchiveReader(self.archive, self.index)
        self.search = SearchIndex(self.archive)
        self.library = Library(state, self.search.path)
        self.index_ready = threading.Event()
        self.index_error = ""
        self.markdown = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
        self.templates = Environment(loader=PackageLoader("archive.replay"),
                                     autoescape=select_autoescape(default=True, default_for_string=True))
        self.templates.globals.update(archive_path=archive_path, urlencode=urlencode)
        self.templates.filters["human_ts"] = lambda ts: _human_time(timestamp_datetime(ts))
        self.routes: list[tuple[str, Callable[[Request, str], Response]]] = [
            ("/_static/", self.static), ("/posts/", self.post_or_file), ("/web/", self.web),
        ]

    def start_background_work(self) -> None:
        """Bring the CDXJ and search indexes up to date without holding up the server's start."""
        threading.Thread(target=self._prepare_index, name="postarc-cdxj", daemon=True).start()
        self.search.sync_in_background()

    def _prepare_index(self) -> None:
        try:
            ensure_index(self.archive)
        except Exception as exc:  # a corrupt WARC must not take the whole UI down
            logger.exception("building the CDXJ index failed")
            self.index_error = str(exc)
        finally:
            self.index_ready.set()

    # -- WSGI ------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            # No Host at all (HTTP/1.0 tools) is no browser, hence no rebinding page.
            host = environ.get("HTTP_HOST")
            if self.loopback_only and host and not is_loopback_name(host_name(host)):
                raise HttpError(421, "Misdirected request", "This replay answers to localhost and 127.0.0.1 "
                                "only: a page on another site must not read the archive.")
            request = Request.from_environ(environ)
            response = self.dispatch(request)
        except HttpError as exc:
            response = self.error_page(exc)
        except Exception:
            logger.exception("error answering %s", environ.get("REQUEST_URI") or environ.get("PATH_INFO"))
            response = self.error_page(HttpError(500, "Internal error", "The replay failed on this request; "
                                                                         "the server log has the details."))
        return response.wsgi(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if request.path == "/":
            return self.home(request)
        for prefix, handler in self.routes:
            if request.path.startswith(prefix):
                return handler(request, request.path[len(prefix):])
        raise HttpError(404, "Not found", "No such page in the replay.")

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        body = self.templates.get_template(template).render(**context).encode("utf-8")
        return Response(status, body)

    def error_page(self, exc: HttpError) -> Response:
        response = self.render("error.html", exc.status, error=exc)
        response.headers += exc.headers
        return response

    # -- the index -------------------------------------------------------------------

    def home(self, request: Request) -> Response:
        try:
            filters = Filters.from_params(request.params())
        except BadQuery as exc:
            raise HttpError(400, "Bad query", str(exc)) from exc
        if filters.q:
            self.search.sync_in_background(max_age=SEARCH_RESYNC)
        listing = self.library.listing(filters)
        sources, categories = self.library.choices()
        progress = self.search.progress
        return self.render("index.html", listing=listing, filters=filters, sources=sources,
                           categories=categories, search_progress=progress)

    # -- posts and their files -------------------------------------------------------

    def _inside_posts(self, relative: str) -> Path:
        """``posts/<relative>``; anything that could leave ``posts/`` is refused."""
        parts = relative.split("/")
        if any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
            raise HttpError(404, "Not found", "No such file in the archive.")
        root = self.posts_dir.resolve()
        target = (root / relative).resolve()  # follows symlinks: a link out of posts/ is refused too
        if not target.is_relative_to(root):
            raise HttpError(404, "Not found", "No such file in the archive.")
        return target

    def post_or_file(self, request: Request, rest: str) -> Response:
        relative = _unquote_path(rest)
        md = self._inside_posts(relative + ".md") if not relative.endswith(".md") else None
        if md is not None and _is_file(md):
            return self.post_page(relative, md)
        target = self._inside_posts(relative)
        if not _is_file(target):
            raise HttpError(404, "Not found", "No such post or file in the archive.")
        ctype = "text/markdown; charset=utf-8" if target.suffix == ".md" else (
            mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        # Files beside posts came from the web (an SVG can hold scripts): sandboxed like captures.
        return Response(200, target.read_bytes(), ctype, csp=ARCHIVE_CSP)

    def post_page(self, path: str, md: Path) -> Response:
        text = md.read_bytes().decode("utf-8", "replace")
        meta: dict[str, Any] = {}
        body = text
        if text.startswith("---\n") and (end := text.find("\n---\n", 3)) > 0:
            try:
                loaded = yaml.safe_load(text[4:end + 1])
                meta = loaded if isinstance(loaded, dict) else {}
            except yaml.YAMLError:
                meta = {}
            body = text[end + 5:]
        row = self.library.post(path) or {}
        link = str(meta.get("link") or row.get("link") or "")
        archived = str(row.get("updated") or row.get("archived") or meta.get("archived") or "")
        stamp = re.sub(r"\D", "", archived)[:14].ljust(14, "0") if archived else "99991231235959"
        base = link if is_http_url(link) else "http://invalid/"
        body_html = rewrite_fragment(self.markdown.render(body), base, stamp)
        captures: list[Capture] = []
        original: Capture | None = None
        if self.index_ready.wait(timeout=INDEX_WAIT) and not self.index_error:
            captures = self.index.captures(link) if is_http_url(link) else []
            original = self._original_capture(row, [link, str(meta.get("source") or "")])
        return self.render("post.html", path=path, meta=meta, row=row, body_html=body_html, link=link,
                           captures=captures, original=original, name=Path(path).name)

    def _original_capture(self, row: dict[str, Any], urls: list[str]) -> Capture | None:
        """The capture the post was made from: the record the catalogue names, among the
        captures of its link and its feed in the WARC file the catalogue names."""
        record_id, filename = row.get("record_id"), row.get("warc_filename")
        if not record_id or not filename:
            return None
        for url in urls:
            if not is_http_url(url):
                continue
            for capture in self.index.captures(url):
                if capture.filename == filename:
                    try:
                        if self.reader.record_id(capture) == record_id:
                            return capture
                    except NotArchived:
                        continue
        return None

    # -- captures --------------------------------------------------------------------

    def web(self, request: Request, rest: str) -> Response:
        if not self.index_ready.wait(timeout=INDEX_WAIT):
            raise HttpError(503, "Index not ready", "The capture index is still being built; try again shortly.",
                            [("Retry-After", "10")])
        if self.index_error:
            raise HttpError(503, "No capture index", f"The capture index could not be built: {self.index_error}")
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
        timestamp = self._timestamp(ts)
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
            replayed = self.reader.load(capture)
        except NotArchived as exc:
            return self.not_archived(url, str(exc))
        return self.raw(replayed) if mod == "id_" else self.rewritten(replayed)

    @staticmethod
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

    def not_archived(self, url: str, reason: str = "") -> Response:
        return self.render("not_archived.html", 404, url=url, reason=reason)

    def capture_list(self, url: str) -> Response:
        captures = self.index.captures(url)
        if not captures:
            return self.not_archived(url)
        return self.render("captures.html", url=url, captures=captures)

    def _archive_headers(self, replayed: Replayed, raw: bool) -> list[tuple[str, str]]:
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
        fragment = self.templates.get_template("banner.html").render(
            capture=capture, when=_human_time(capture.when), revisit=replayed.original is not None)
        return lxml.html.fragment_fromstring(fragment)

    # -- static ----------------------------------------------------------------------

    def static(self, request: Request, name: str) -> Response:
        files = {"style.css": "text/css; charset=utf-8"}
        if name not in files:
            raise HttpError(404, "Not found", "No such file.")
        body = resources.files("archive.replay").joinpath("static", name).read_bytes()
        return Response(200, body, files[name], [("Cache-Control", "max-age=3600")])
