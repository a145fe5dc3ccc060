"""One post per story across feeds: what makes two posts one story (docs/sources.md#dedup).

Two keys, tried in order:

- the story's URL: the article page's ``<link rel="canonical">``, else the entry's link, with
  tracking parameters (``TRACKING_PARAMS``) removed and the URL normalised (``story_url``);
- for syndicated copies under other URLs, a fingerprint of the extracted body: a bottom-k
  MinHash sketch (the ``SKETCH_K`` smallest 32-bit hashes) of its shingles, ``SHINGLE`` words,
  or ``SHINGLE`` characters of CJK text, which has no spaces between words. Two bodies are one
  story when the estimated share of the smaller one's shingles found in the larger one
  (containment) is at least ``CONTAINMENT``, measured on the corpus (``python -m bench.stories``):
  a truncated copy, or one with other boilerplate, still holds the original's text; two distinct
  posts share next to none. Bodies under ``MIN_SHINGLES`` shingles (a few words) are never
  merged by fingerprint.

Hand-written (40 lines): datasketch, the well-kept MinHash library, needs numpy and scipy, which
postarc does not otherwise install; a bottom-k sketch needs one hash per shingle (CRC-32).

Pure functions of strings: the worker pool computes the sketch beside the extraction.
"""

from __future__ import annotations

import re
import zlib
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

#: Query parameters that say how a reader came, not what they read (lowercase; ``utm_*`` by prefix).
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid", "igshid", "igsh",
    "mc_cid", "mc_eid", "_hsenc", "_hsmi", "__hstc", "__hssc", "__hsfp", "hsctatracking", "mkt_tok",
    "spm", "scm", "vero_id", "oly_anon_id", "oly_enc_id", "_ga", "_gl", "wt.mc_id", "ncid",
})
TRACKING_PREFIXES = ("utm_",)
_DEFAULT_PORTS = {"http": 80, "https": 443}

#: Shingle length, in words (or CJK characters).
SHINGLE = 4
#: Hashes kept per sketch: with 64, distinct posts' estimated overlap reached 0.25 (bench.stories).
SKETCH_K = 128
#: Of those, the smallest few a story is looked up by (the crawl state's index).
MARKS = 16
#: A body needs this many shingles (about as many words) to be matched by its fingerprint.
MIN_SHINGLES = 40
#: Fewer hashes than this to compare by (a body much smaller than the other) judges nothing.
MIN_JUDGED = 16
#: Estimated containment from which two bodies are one story: distinct corpus posts reach 0.064,
#: syndicated variants go down to 0.44 (bench.stories, docs/sources.md).
CONTAINMENT = 0.3

#: (number of shingles, the ``SKETCH_K`` smallest of their hashes, ascending).
Sketch = tuple[int, list[int]]

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
_CANONICAL_TAG = re.compile(r"<link\b[^>]*>", re.I)
_REL_CANONICAL = re.compile(r"""\brel\s*=\s*["']?[^"'>]*\bcanonical\b""", re.I)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_HEAD_END = re.compile(r"</head\s*>|<body\b", re.I)


def _tracking(name: str) -> bool:
    name = name.lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def story_url(url: str | None) -> str | None:
    """``url`` without tracking parameters, fragment or default port, scheme and host in lower
    case, the other parameters sorted (w3lib's ``canonicalize_url``); None if not http(s)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname + (f":{port}" if port and port != _DEFAULT_PORTS[scheme] else "")
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _tracking(k)])
    return canonicalize_url(urlunsplit((scheme, host, parts.path or "/", query, "")))


def page_canonical(page_html: str | None, page_url: str | None) -> str | None:
    """The page's ``<link rel="canonical">`` (in its head) as a story URL; None when it has none,
    or one that names no article: a non-http URL, or the site's home page (a common mistake of
    templates, which would make every page of the site one story)."""
    if not page_html:
        return None
    end = _HEAD_END.search(page_html)
    head = page_html[: end.start() if end else 200_000]
    for tag in _CANONICAL_TAG.findall(head):
        if _REL_CANONICAL.search(tag) and (href := _HREF.search(tag)):
            value = next(g for g in href.groups() if g is not None)
            url = story_url(urljoin(page_url or "", value.strip()))
            if url and urlsplit(url).path not in ("", "/"):  # a canonical to the home page names no story
                return url
            return None
    return None


def _shingles(text: str) -> set[bytes]:
    """Each run of ``SHINGLE`` tokens, NUL-joined, in UTF-8: tokens are encoded once, not in
    every shingle they are part of, and the runs are zipped rather than sliced out."""
    tokens = [token.encode("utf-8", "surrogatepass") for token in _TOKEN.findall(text.lower())]
    if len(tokens) < SHINGLE:
        return set()
    return set(map(b"\0".join, zip(*(tokens[i:] for i in range(SHINGLE)))))


def sketch(text: str) -> Sketch:
    """(number of shingles, the ``SKETCH_K`` smallest of their CRC-32s, ascending).

    CRC-32 rather than a cryptographic hash: 0.4 ms for a 600-word body where blake2b took 0.9;
    32 bits leave the 128 smallest of even 10 000 shingles all but free of collisions. A sort in
    C finds the smallest in fewer instructions than heapq's Python loop."""
    shingles = _shingles(text)
    return len(shingles), sorted(map(zlib.crc32, shingles))[:SKETCH_K]


def _share_in(big: list[int], small: list[int], k: int) -> tuple[int, int]:
    """(found, judged): of ``small``'s hashes that ``big``'s sketch can answer for (those not
    above its largest, or all when it holds every hash of its body), how many it holds."""
    limit = big[-1] if len(big) >= k else None
    judged = [h for h in small if limit is None or h <= limit]
    found = set(big)
    return sum(h in found for h in judged), len(judged)


def containment(a: Sketch, b: Sketch) -> float:
    """Estimated share of the smaller body's shingles found in the larger one (0.0 when the
    sketches leave too few hashes to judge by: ``MIN_JUDGED``)."""
    (na, sa), (nb, sb) = a, b
    big, small = (sa, sb) if na >= nb else (sb, sa)
    found, judged = _share_in(big, small, SKETCH_K)
    return found / judged if judged >= MIN_JUDGED else 0.0


def index_marks(fingerprint: Sketch) -> list[int]:
    """The hashes a story is looked up by: the ``MARKS`` smallest of its sketch. A copy holding
    a share s of the text shares about s of them; it is then checked by ``same_story``."""
    return fingerprint[1][:MARKS] if fingerprint[0] >= MIN_SHINGLES else []


def same_story(a: Sketch, b: Sketch) -> bool:
    """Two bodies long enough to judge whose fingerprints say they are one text."""
    return min(a[0], b[0]) >= MIN_SHINGLES and containment(a, b) >= CONTAINMENT


def encode_sketch(fingerprint: Sketch) -> str:
    """``N:hex…`` (8 hex digits a hash): how the crawl state keeps a sketch."""
    return f"{fingerprint[0]}:" + "".join(f"{h:08x}" for h in fingerprint[1])


def decode_sketch(text: str | None) -> Sketch:
    if not text:
        return 0, []
    n, _, hexes = text.partition(":")
    return int(n), [int(hexes[i:i + 8], 16) for i in range(0, len(hexes), 8)]


def url_key(url: str) -> str:
    """The story index's key for a story URL (``story_url``, ``page_canonical``)."""
    return f"url {url}"


def mark_keys(fingerprint: Sketch) -> list[str]:
    """The story index's keys for a body's fingerprint: its ``index_marks``."""
    return [f"mark {h:08x}" for h in index_marks(fingerprint)]
