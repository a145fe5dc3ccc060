"""Downloader middleware: Scrapy's meta refresh, read from the start of the page alone."""

from __future__ import annotations

from scrapy import Request
from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.utils.httpobj import urlparse_cached
from w3lib.html import get_base_url, get_meta_refresh

from archive.charset import decode_html

#: Scrapy looks for a refresh (and a <base>) in the first this many characters of a page's text.
SCAN_CHARS = 4096
#: Bytes decoded to have them: more than any encoding spends on so many characters.
SCAN_BYTES = 8 * SCAN_CHARS


def head_text(response: TextResponse) -> str:
    """``response.text[:SCAN_CHARS]``, decoded from the start of the body only (as ``.text`` is:
    ``archive.charset.decode_html``); from ``.text`` when the start holds fewer characters."""
    if len(response.body) > SCAN_BYTES:
        text = decode_html(response.body[:SCAN_BYTES], response.encoding)
        if len(text) > SCAN_CHARS:  # the last, perhaps cut, character lies past what is kept
            return text[:SCAN_CHARS]
    return response.text[:SCAN_CHARS]


class HeadMetaRefreshMiddleware(MetaRefreshMiddleware):
    """Scrapy's ``MetaRefreshMiddleware``, reading the refresh from ``head_text``.

    Scrapy's ``get_meta_refresh(response)`` decodes the whole body (``response.text``) to look at
    its first 4096 characters, and keeps the text with the response: for every article page of
    60–120 KB, a decode the crawl process needs for nothing else (the worker decodes the page
    where it reads it). ``process_response`` is Scrapy 2.19's with that one read changed; it calls
    Scrapy's private redirect helpers (``_redirect_request_using_get``, ``_redirect``): check it
    when Scrapy is upgraded.
    """

    def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        if (
            request.meta.get("dont_redirect", False)
            or request.method == "HEAD"
            or not isinstance(response, HtmlResponse)
            or urlparse_cached(request).scheme not in {"http", "https"}
        ):
            return response
        text = head_text(response)
        base = get_base_url(text, response.url, response.encoding)
        interval, url = get_meta_refresh(text, base, response.encoding, ignore_tags=self._ignore_tags)
        if not url:
            return response
        redirected = self._redirect_request_using_get(request, response, url)
        if urlparse_cached(redirected).scheme not in {"http", "https"}:
            return response
        if interval is not None and interval < self._maxdelay:
            return self._redirect(redirected, request, "meta refresh")
        return response
