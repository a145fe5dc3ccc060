"""Which encoding an HTML page is in, decided as browsers decide it.

w3lib (Scrapy's own helper) does the WHATWG order: byte order mark, then the HTTP
``Content-Type`` charset, then ``<meta charset>`` / ``http-equiv`` / XML declaration, then
detection; and it reads labels the way browsers do (GB2312 and GBK mean GB18030, Big5 means
Big5-HKSCS, Latin-1 means cp1252). Only the detection step is ours: Scrapy's (charset_normalizer)
gives up on some undeclared GBK and Big5 pages and falls back to ASCII, while chardet names them.
"""

from __future__ import annotations

import chardet
from w3lib.encoding import (html_body_declared_encoding, html_to_unicode, http_content_type_encoding, read_bom,
                            resolve_encoding)


def detect_encoding(body: bytes) -> str | None:
    """For a body that declares nothing: UTF-8 if it is valid UTF-8, else chardet's guess."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    guess = chardet.detect(body).get("encoding")
    return resolve_encoding(guess) if guess else None


def decode_html(body: bytes, encoding: str) -> str:
    """``body`` as text, as Scrapy's ``TextResponse.text`` decodes it once its encoding is settled
    (w3lib: a BOM first, then ``encoding``, undecodable bytes replaced)."""
    return html_to_unicode(f"charset={encoding}", body)[1]


def html_encoding(body: bytes, content_type: str | None) -> str:
    """The encoding to decode this HTML body with (a Python codec name).

    The name ``html_to_unicode(content_type, body, auto_detect_fun=detect_encoding)`` gives,
    found by its own steps (w3lib's public functions, in its order) without the decoding of the
    whole body it then does: the crawl process only names the encoding, and the text is decoded
    once, in the worker that reads it (this decode and Scrapy's meta refresh's were 1.3 % of the
    crawl process's instructions; ``crawler.metarefresh``).
    test_charsets holds the two equal.
    """
    bom_encoding, _bom = read_bom(body)
    if bom_encoding is not None:
        return bom_encoding
    encoding = http_content_type_encoding(content_type) or html_body_declared_encoding(body) or detect_encoding(body)
    if encoding is None:
        return "utf8"  # html_to_unicode's default
    return encoding + "-be" if encoding in {"utf-16", "utf-32"} else encoding
