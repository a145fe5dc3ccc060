"""Downloader middleware: HTML responses decoded as a browser would decode them."""

from __future__ import annotations

from scrapy import Request
from scrapy.http import HtmlResponse, Response

from archive.charset import html_encoding


class CharsetMiddleware:
    """Settle each HTML response's encoding with ``archive.charset.html_encoding``.

    Scrapy already honours the BOM, the HTTP charset and ``<meta charset>``; this fixes the last
    step, detection, for pages that declare nothing. It runs after ``HttpCompressionMiddleware``
    on the way back (a priority below 590), so it sees the decompressed body; the WARC keeps the
    bytes as received either way.
    """

    def process_response(self, request: Request, response: Response) -> Response:
        if not isinstance(response, HtmlResponse):
            return response
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1")
        return response.replace(encoding=html_encoding(response.body, content_type or None))
