"""The replay UI's static files (``/_static/<name>``): a fixed list, read from the package."""

from __future__ import annotations

from importlib import resources

from archive.replay.wsgi import HttpError, Request, Response

FILES = {"style.css": "text/css; charset=utf-8"}


def static(request: Request, name: str) -> Response:
    """A file of the list by its name; any other name (a path, ``..``) is a 404."""
    if name not in FILES:
        raise HttpError(404, "Not found", "No such file.")
    body = resources.files("archive.replay").joinpath("static", name).read_bytes()
    return Response(200, body, FILES[name], [("Cache-Control", "max-age=3600")])
