"""The replay's own pages: Jinja templates (``archive/replay/templates/``), autoescaped."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape

from archive.replay.index import timestamp_datetime
from archive.replay.rewrite import archive_path
from archive.replay.wsgi import HttpError, Response


def human_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


class Templates:
    """Renders the UI's templates, as whole pages (``render``) or as fragments (``fragment``)."""

    def __init__(self) -> None:
        self.env = Environment(loader=PackageLoader("archive.replay"),
                               autoescape=select_autoescape(default=True, default_for_string=True))
        self.env.globals.update(archive_path=archive_path, urlencode=urlencode)
        self.env.filters["human_ts"] = lambda ts: human_time(timestamp_datetime(ts))

    def fragment(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        return Response(status, self.fragment(template, **context).encode("utf-8"))

    def error_page(self, exc: HttpError) -> Response:
        response = self.render("error.html", exc.status, error=exc)
        response.headers += exc.headers
        return response
