"""The replay web app (WSGI): a router over the posts, the captures and the static files.

Routes (every one GET/HEAD only):

- ``/`` posts newest first, filters ``source``, ``category``, ``from``, ``to``; ``q`` searches;
- ``/posts/<YYYY>/<MM>/<slug>`` a post rendered, its images beside it under the same prefix
  (``.md`` appended gives the file as written) — ``archive.replay.posts``;
- ``/web/<timestamp>/<url>`` the capture of ``url`` nearest the time, links rewritten into
  the archive; ``/web/<timestamp>id_/<url>`` the payload as received, original headers;
  ``/web/*/<url>`` every capture of ``url`` — ``archive.replay.captures``;
- ``/_static/<file>`` the stylesheet — ``archive.replay.staticfiles``.

Archived documents are served with a ``Content-Security-Policy`` sandbox and no script source,
so nothing they carry runs on the replay's origin; the UI itself runs no scripts either.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archive.replay.captures import CaptureReplay
from archive.replay.library import Library
from archive.replay.posts import PostPages
from archive.replay.search import SearchIndex
from archive.replay.staticfiles import static
from archive.replay.ui import Templates
from archive.replay.wsgi import HttpError, Request, Response, guard_host

logger = logging.getLogger(__name__)


class ReplayApp:
    """The WSGI application over one archive directory.

    ``loopback_only``: answer only requests whose ``Host`` names this machine (the default
    when served on a loopback address): see ``archive.replay.wsgi.guard_host``.
    """

    def __init__(self, archive_dir: str | Path, loopback_only: bool = False) -> None:
        self.loopback_only = loopback_only
        self.archive = Path(archive_dir).resolve()
        state = self.archive / "state.sqlite"
        if not state.is_file():
            raise FileNotFoundError(f"{self.archive} is not a postarc archive (no state.sqlite)")
        self.templates = Templates()
        self.search = SearchIndex(self.archive)
        self.captures = CaptureReplay(self.archive, self.templates)
        self.posts = PostPages(self.archive, Library(state, self.search.path), self.search, self.captures,
                               self.templates)
        self.routes: list[tuple[str, Callable[[Request, str], Response]]] = [
            ("/_static/", static), ("/posts/", self.posts.post_or_file), ("/web/", self.captures.web),
        ]

    def start_background_work(self) -> None:
        """Bring the CDXJ and search indexes up to date without holding up the server's start."""
        threading.Thread(target=self.captures.prepare_index, name="postarc-cdxj", daemon=True).start()
        self.search.sync_in_background()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            if self.loopback_only:
                guard_host(environ)
            response = self.dispatch(Request.from_environ(environ))
        except HttpError as exc:
            response = self.templates.error_page(exc)
        except Exception:
            logger.exception("error answering %s", environ.get("REQUEST_URI") or environ.get("PATH_INFO"))
            response = self.templates.error_page(HttpError(
                500, "Internal error", "The replay failed on this request; the server log has the details."))
        return response.wsgi(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if request.path == "/":
            return self.posts.home(request)
        for prefix, handler in self.routes:
            if request.path.startswith(prefix):
                return handler(request, request.path[len(prefix):])
        raise HttpError(404, "Not found", "No such page in the replay.")
