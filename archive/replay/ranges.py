"""HTTP Range requests (RFC 9110 §14) over a payload that is streamed, never held whole.

Audio and video players ask for ranges (Chromium's first request for an ``<audio>`` is
``Range: bytes=0-``, and seeking asks for the rest): a 206 with ``Content-Range`` for one
satisfiable range, a 416 with ``Content-Range: bytes */<length>`` for one that is not, and the
whole payload (200) for a Range header this does not serve (several ranges, bad syntax, an
``If-Range`` that does not match), as the RFC lets a server do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from archive.replay.wsgi import HttpError, Request, Response

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
PIECE = 64 * 1024  # bytes handed to the WSGI server at a time


def byte_range(header: str, length: int) -> tuple[int, int] | None:
    """The (first, last) byte positions one ``bytes=`` range asks of ``length`` bytes; None to
    send it all; ``HttpError(416)`` for a range none of whose bytes exist."""
    m = _RANGE.match(header) if header else None
    if m is None or not (m.group(1) or m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # the last N bytes
        if int(last) == 0 or length == 0:
            raise _unsatisfiable(length)
        return max(0, length - int(last)), length - 1
    start = int(first)
    end = min(int(last), length - 1) if last else length - 1
    if last and int(last) < start:
        return None  # invalid: ignored (RFC 9110 §14.1.1)
    if start >= length:
        raise _unsatisfiable(length)
    return start, end


def _unsatisfiable(length: int) -> HttpError:
    return HttpError(416, "Range not satisfiable", f"The payload has {length} bytes.",
                     [("Content-Range", f"bytes */{length}"), ("Accept-Ranges", "bytes")])


def ranged(request: Request, length: int, read: Callable[[int, int], Iterator[bytes]], content_type: str,
           headers: list[tuple[str, str]], csp: str, validators: tuple[str, ...] = ()) -> Response:
    """The response to ``request`` for a payload of ``length`` bytes that ``read(start, count)``
    yields piece by piece; ``validators``: the ETag / Last-Modified an ``If-Range`` may name."""
    span = byte_range(request.range, length) if not request.if_range or request.if_range in validators else None
    headers = [*headers, ("Accept-Ranges", "bytes")]
    if span is None:
        return Response(200, content_type=content_type, headers=headers, csp=csp,
                        stream=lambda: read(0, length), length=length)
    start, end = span
    return Response(206, content_type=content_type, headers=[*headers, ("Content-Range", f"bytes {start}-{end}/{length}")],
                    csp=csp, stream=lambda: read(start, end - start + 1), length=end - start + 1)


def read_file_range(path, start: int, count: int) -> Iterator[bytes]:
    """``count`` bytes of the file at ``path`` from ``start``, piece by piece."""
    with open(path, "rb") as f:
        f.seek(start)
        yield from read_stream(f, 0, count)


def read_stream(stream, skip: int, count: int) -> Iterator[bytes]:
    """``count`` bytes of ``stream`` after the first ``skip`` (read through, as a gzip member
    cannot be seeked into), piece by piece."""
    while skip > 0:
        piece = stream.read(min(skip, 1 << 20))
        if not piece:
            return
        skip -= len(piece)
    while count > 0:
        piece = stream.read(min(count, PIECE))
        if not piece:
            return
        count -= len(piece)
        yield piece
