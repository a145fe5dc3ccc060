"""Scrapy settings for postarc.

Every postarc knob is a Scrapy setting (prefixed ``POSTARC_`` or ``WARC_``), so the same
values can come from this file, ``-s NAME=VALUE``, a Scrapyd job or the ``postarc`` CLI.
"""

BOT_NAME = "postarc"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
COMMANDS_MODULE = "crawler.commands"

# Where the archive lives (warc/, indexes/, posts/, state.sqlite).
POSTARC_ARCHIVE_DIR = "data"
# Front matter and body form: see docs/format.md.
POSTARC_DATE_FORMAT = "iso"  # iso | rfc1123
POSTARC_BODY = "markdown"  # markdown | html
POSTARC_IMAGES = "local"  # local | remote
POSTARC_IMAGE_PROXY = ""  # URL prefix put before remote image URLs, e.g. a CORS proxy
# Processes used for extraction and Markdown conversion (0: the cores the crawl's reactor
# thread leaves, at least 1; crawler.workers.default_workers).
POSTARC_EXTRACT_WORKERS = 0
# Secrets of private feeds (${NAME} in sources.yaml) not in the environment: a YAML mapping,
# owner-only; empty: ~/.config/postarc/secrets.yaml (crawler.credentials).
POSTARC_SECRETS_FILE = ""

# WARC capture (crawler.capture.WarcCapture writes what crawler.middlewares.WarcCaptureMiddleware captures).
WARC_ENABLED = True
WARC_PREFIX = "POSTARC"
WARC_MAX_SIZE = 1_000_000_000  # rotate files at this many bytes
# A payload already archived is written as a revisit record, unless shorter than this.
WARC_REVISIT_MIN_SIZE = 256
# fsync every record (survives power loss; a killed process loses nothing flushed either way).
WARC_FSYNC_RECORDS = False
# fsync every post, image and enclosure file before its rename (power loss; a kill never leaves
# half a file either way): 4 fsyncs per post cost 12 % of a crawl's CPU (docs/performance.md).
POSTARC_FSYNC_FILES = False
# gzip level of each record (1-9; warcio's own is 9): 6 costs a quarter less CPU than 9 for
# files within 1 % of its size (docs/performance.md).
WARC_GZIP_LEVEL = 6
# Records exactly as sent and received (reason phrase, header case and order): see crawler/handlers.py.
# Only the web: a feed is hostile input, and an entry linking file:///etc/passwd (or s3://, ftp://)
# must not make the crawler read local files or credentials into the archive.
DOWNLOAD_HANDLERS = {
    "http": "crawler.handlers.WireHTTP11DownloadHandler",
    "https": "crawler.handlers.WireHTTP11DownloadHandler",
    "file": None,
    "s3": None,
    "ftp": None,
}

# Identify ourselves: USER_AGENT is "postarc/<version>", or "postarc/<version> (+<URL>)" once the
# operator names a page about their crawl in POSTARC_CONTACT_URL (here, -s, Scrapyd), derived by
# the add-on below. No default URL: a user agent must not claim a page that is not the operator's.
# Set USER_AGENT itself to override.
POSTARC_CONTACT_URL = ""
ADDONS = {
    "crawler.politeness.ContactUserAgent": 0,
    # With REDIS_URL set: a worker of a shared crawl (crawler.shared).
    "crawler.shared.SharedCrawl": 0,
    # REMOTE_CONTROL_ENABLED off: Scrapy's remote control is not even imported (crawler.consoles).
    "crawler.consoles.UnloadedRemoteControl": 0,
}

# Several workers, one crawl (docs/distributed.md): REDIS_URL
# (postarc crawl --redis URL) puts the request queue, the duplicate filter and the crawl
# state in Redis. Keys start with POSTARC_REDIS_PREFIX (one prefix or Redis database per
# archive). A worker whose heartbeat stops for POSTARC_REDIS_WORKER_TIMEOUT seconds counts as
# dead, and the requests it held go back to the queue.
REDIS_URL = ""
POSTARC_REDIS_PREFIX = "postarc"
POSTARC_REDIS_WORKER_TIMEOUT = 30.0
ROBOTSTXT_OBEY = True
# Content-encodings every WARC reader decodes. Scrapy also asks for br and zstd, but warcio
# (warcio check, pywb, cdxj-indexer) reads br only with brotlipy, which the Brotli that Scrapy
# needs replaces (``warcio check`` then crashes on the record: warcio issue #73), and zstd not
# at all. A server that sends br unasked is still archived as sent (archive.warc.compat lets warcio read it).
DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en",
    "Accept-Encoding": "gzip, deflate",
}

# Politeness and bounded failure: no request waits forever, no response fills memory.
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 8
# Outputs of one callback processed at once. Scrapy starts this many tasks for every response
# with a callback, whatever it yields (100 by default: 0.48 ms of CPU for a page's one post, 0.09
# at 16). A feed's posts beyond 16 wait for the worker pool anyway.
CONCURRENT_ITEMS = 16
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 50 * 1024 * 1024
# Article pages above this (decompressed) are archived but not extracted: the post keeps its feed
# body. Parsing costs ~40x the page in memory (docs/failures.md).
POSTARC_PAGE_MAXSIZE = 5 * 1024 * 1024
DOWNLOAD_WARNSIZE = 10 * 1024 * 1024
RETRY_TIMES = 2
# Retries wait (crawler.politeness.PoliteRetryMiddleware): Retry-After on 429/503 up to
# POSTARC_RETRY_AFTER_MAX seconds (longer: give up until the next run), else backoff
# POSTARC_RETRY_BACKOFF * 2^n seconds, at most POSTARC_RETRY_BACKOFF_MAX.
POSTARC_RETRY_AFTER_MAX = 120
POSTARC_RETRY_BACKOFF = 2.0
POSTARC_RETRY_BACKOFF_MAX = 60.0
# A post archived without its article page or an image (their fetch failed) is fetched again
# in up to this many later runs, until it is whole (crawler.incremental); 0: never.
POSTARC_RETRY_INCOMPLETE = 3
# Seconds an entry whose story another crawl process is writing waits for that post (pipelines.stories).
POSTARC_STORY_WAIT = 60
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 4.0

# Scrapy opens a telnet console and a remote-control HTTP server that run Python code; an
# archiver has no use for either, so both stay off unless the operator turns them on.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

# Only the cookies a source configures (auth: {type: cookie}) are sent: Scrapy's cookie jar
# would replay every site's Set-Cookie on later requests, and the WARC would keep them.
COOKIES_ENABLED = False

DOWNLOADER_MIDDLEWARES = {
    # After every engine-side middleware (so it sees the request as sent) and before
    # HttpCompressionMiddleware on the way back (so it sees the body as received).
    "crawler.middlewares.WarcCaptureMiddleware": 950,
    # Private feeds' credentials, to their own origin only, added last and taken off first
    # (so the WARC capture and every retry or redirect copy see none).
    "crawler.credentials.CredentialsMiddleware": 960,
    # Scrapy's robots.txt middleware, fixed for requests that wait on a host's robots.txt.
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.robots.RobotsTxtMiddleware": 100,
    # Conditional feed requests (If-None-Match / If-Modified-Since); before the WARC capture.
    "crawler.incremental.ConditionalFeedMiddleware": 580,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.politeness.PoliteRetryMiddleware": 550,
    # An image refused (403) for its Referer is asked for once more without one.
    "crawler.hotlink.HotlinkRetryMiddleware": 555,
    # HTML encodings as browsers settle them; below 590 to see bodies decompressed.
    "crawler.charset.CharsetMiddleware": 585,
    # Scrapy's meta refresh, without decoding each whole page to read its first 4096 characters.
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "crawler.metarefresh.HeadMetaRefreshMiddleware": 580,
}

SPIDER_MIDDLEWARES = {
    # Closest to the spider: an unchanged post is dropped before its article request exists.
    "crawler.incremental.SkipUnchangedMiddleware": 950,
}

ITEM_PIPELINES = {
    "pipelines.dates.DatesPipeline": 100,
    "pipelines.dedup.DedupPipeline": 200,
    "pipelines.extract.ExtractPipeline": 300,
    "pipelines.stories.StoryPipeline": 320,  # one post per story across feeds (dedup: across)
    "pipelines.versions.VersionPipeline": 350,
    "pipelines.images.PostImagesPipeline": 400,
    "pipelines.aliases.AliasRecordsPipeline": 410,  # images also under the proxied URL the HTML named
    "pipelines.enclosures.EnclosuresPipeline": 420,  # enclosures: local (podcast audio, video), streamed
    "pipelines.diskfull.DiskFullGatePipeline": 450,  # once the disk is full, no post is written
    "pipelines.markdown.MarkdownPipeline": 500,
    "pipelines.catalogue.CataloguePipeline": 600,
}
# Seconds an enclosure's download may take (enclosures: local): DOWNLOAD_TIMEOUT is for pages,
# and 500 MB at 2 MB/s takes four minutes.
POSTARC_ENCLOSURE_TIMEOUT = 900
# Images go to POSTARC_ARCHIVE_DIR/posts (pipelines.images.PostImagesPipeline sets its own store).
MEDIA_ALLOW_REDIRECTS = True

TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
# Scrapy reads the source of each callback (inspect + ast) to warn of a generator that returns
# a value: a developer's check, ~0.05 s of every crawl's start, for spiders that are tested.
WARN_ON_GENERATOR_RETURN_VALUE = False
# `postarc crawl` logs to DIR/logs/crawl-<time>-<pid>.log and keeps the newest this many.
POSTARC_LOGS_KEEP = 100
# postarc crawl --processes N: Scrapy processes the due sources are split over, by feed host
# (0: one per two cores this process may use, at most POSTARC_PROCESSES_MAX). See crawler/processes.py.
POSTARC_PROCESSES = 0
POSTARC_PROCESSES_MAX = 8

EXTENSIONS = {
    "crawler.state.ArchiveState": 0,  # the crawl state, opened once for every component
    "crawler.workers.WorkerPool": 0,
    "crawler.capture.WarcCapture": 0,  # the WARC files: every record of the crawl is written here
    "crawler.ledger.SourceLedger": 0,  # per-source counts and status, for the summary and progress
    "crawler.incremental.SourceState": 0,  # bytes per source; last run, status, validators
    "crawler.progress.Progress": 0,  # only with POSTARC_PROGRESS (crawl sets it on a TTY)
    "crawler.runs.RunRecorder": 0,  # each run's spider, arguments and settings, for `postarc reextract`
    "crawler.diskfull.DiskFullGuard": 0,  # the first write refused for space stops the crawl (exit 5)
    "crawler.gcfreeze.GcFreeze": 0,  # start-up objects left out of every garbage collection
}
