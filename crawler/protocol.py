"""The crawl's internal protocol: the ``request.meta`` keys and source statuses that components
of one crawl agree on, named once.

A spider marks each request it makes with what it is for (``KIND_META``: one of the ``KIND_*``
values) and, for feed crawls, which source it serves (``SOURCE_META``); downloader and spider
middlewares, pipelines and extensions read those marks instead of guessing from URLs.
"""

#: ``request.meta`` key: what the request fetches (``KIND_FEED``, ``KIND_PAGE``, ``KIND_IMAGE``, ``KIND_URL``,
#: ``KIND_HISTORY``: an archived document of a feed's history, RFC 5005).
KIND_META = "postarc_kind"
#: ``KIND_ENCLOSURE``: a feed entry's enclosure (podcast audio, video), ``enclosures: local``.
KIND_FEED, KIND_PAGE, KIND_IMAGE, KIND_URL, KIND_HISTORY = "feed", "page", "image", "url", "history"
KIND_ENCLOSURE = "enclosure"
#: ``request.meta`` key: the name of the source (sources file) the request serves.
SOURCE_META = "postarc_source"
#: ``request.meta`` key: a page request's ``revisit`` window in seconds (the source's ``revisit:``).
REVISIT_META = "postarc_revisit"
#: ``request.meta`` key: the URL given to ``postarc archive`` that the request serves.
URL_META = "postarc_url"
#: ``request.meta`` key: the names of the headers ``crawler.credentials`` set on the request.
SENT_META = "postarc_credential_headers"
#: ``request.meta`` key: the URI the WARC capture records instead of ``request.url`` (secrets redacted).
TARGET_URI_META = "postarc_target_uri"
#: ``request.meta`` key of the ``crawler.handlers.WireHead`` of the last response to a request.
WIRE_META = "postarc_wire"
#: ``request.meta`` key: a directory; the download handler spools the body into an anonymous
#: temporary file there instead of memory (enclosures, hundreds of MB), and leaves that file,
#: open and complete, under ``SPOOLED_META`` (the response's ``body`` is then empty).
SPOOL_META = "postarc_spool"
SPOOLED_META = "postarc_spooled"
#: ``request.meta`` key under which the response record's location is left for callbacks.
CAPTURE_META = "warc_capture"
#: ``request.meta`` key: (status line, protocol, headers) of the response record, as written.
CAPTURE_HEAD_META = "warc_capture_head"
#: ``Response.flags`` mark of a response served from the archive itself (``crawler.replay``):
#: it was captured when first fetched, so it is never written again.
REPLAY_FLAG = "postarc-replay"
#: ``request.meta`` mark of an image request sent again without its Referer (``crawler.hotlink``).
HOTLINK_RETRY_META = "postarc_hotlink_retry"
#: ``request.meta`` key of the lease a request was taken under (``crawler.shared``).
LEASE_META = "postarc_lease"
#: ``request.meta`` mark of a request the frontier took from the queue to wake the engine.
WAKE_META = "postarc_wake"

#: Source statuses. A spider sets ``STARTED`` when it asks for the feed, then one of the others
#: (or ``failed: <why>``); ``ELSEWHERE``: another worker of a shared crawl fetches that feed.
STARTED, OK, NOT_MODIFIED = "started", "ok", "not modified"
ELSEWHERE = "fetched by another worker"
