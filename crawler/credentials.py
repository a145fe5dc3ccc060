"""Private feeds: ``${NAME}`` secrets resolved, sent only to the source's own origin, redacted.

A source's ``headers:``, ``auth:`` and ``url:`` may name secrets as ``${NAME}``; each is read
from the environment, else from the secrets file (``--secrets FILE``, setting
``POSTARC_SECRETS_FILE``, default ``~/.config/postarc/secrets.yaml``: a YAML mapping of NAME to
value, readable by its owner only). A name set nowhere stops the crawl before any request.

``CredentialsMiddleware`` adds the headers to the requests of that source whose origin
(scheme, host, port) is the feed's, and to no other: not article pages or images elsewhere,
not a redirect to another host. It also hands the WARC capture a redacted view of each
exchange, and the spider keeps secrets out of posts; log records are redacted as they are made.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml
from scrapy import Request
from scrapy.http import Response

from archive.redact import Redactor, basic_credentials
from crawler.handlers import WireHead
from crawler.protocol import SENT_META, SOURCE_META, TARGET_URI_META, WIRE_META
from crawler.sources import SECRET_REF, Source, SourcesFile, refs

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self



class SecretsError(ValueError):
    """A secret that cannot be had: a ``${NAME}`` set nowhere, a secrets file others can read."""


def default_secrets_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "postarc" / "secrets.yaml"


def read_secrets_file(path: Path, required: bool) -> dict[str, str]:
    """NAME -> value from a YAML mapping readable by its owner only (``chmod 600``)."""
    if not path.exists():
        if required:
            raise SecretsError(f"secrets file {path} does not exist")
        return {}
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecretsError(f"secrets file {path} can be read by others (mode {mode:o}): chmod 600 {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SecretsError(f"secrets file {path}: cannot read: {type(exc).__name__}") from None  # no excerpt
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, (str, int)) for k, v in data.items()):
        raise SecretsError(f"secrets file {path}: expected a mapping of NAME: value")
    return {k: str(v) for k, v in data.items()}


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


@dataclass
class SourceCredentials:
    url: str  # the feed URL with its secrets filled in
    headers: dict[str, str]  # sent to the feed's origin only

    @property
    def origin(self) -> tuple[str, str, int | None]:
        return origin(self.url)


@dataclass
class Credentials:
    """Every source's filled-in URL and headers, and the redactor of their secrets."""

    sources: dict[str, SourceCredentials] = field(default_factory=dict)
    redactor: Redactor = field(default_factory=Redactor)

    def feed_url(self, config: SourcesFile, source: Source) -> str:
        own = self.sources.get(source.name)
        return own.url if own else config.feed_url(source)

    def redact(self, text: str) -> str:
        return self.redactor.text(text) if self.redactor else text


def _needed(source: Source) -> list[str]:
    texts = [source.url, *source.headers.values()]
    if source.auth:
        texts += [v for v in (source.auth.token, source.auth.password, source.auth.cookie) if v]
    return [name for text in texts for name in refs(text)]


def resolve(config: SourcesFile, secrets_file: str | None = None,
            env: dict[str, str] | None = None) -> Credentials:
    """Fill in every ``${NAME}``; ``SecretsError`` naming each source and name set nowhere."""
    env = dict(os.environ if env is None else env)
    wanted = {s.name: _needed(s) for s in config.sources if s.enabled}
    if not any(wanted.values()):
        return Credentials(redactor=Redactor(params={p for s in config.sources for p in s.secret_param_names()}))
    path = Path(secrets_file) if secrets_file else default_secrets_file()
    values = {**read_secrets_file(path, required=bool(secrets_file)), **env}
    missing = [f"source {name}: ${{{ref}}} is not set (in the environment or {path})"
               for name, names in wanted.items() for ref in dict.fromkeys(names) if not values.get(ref)]
    if missing:
        raise SecretsError("\n".join(missing))

    def fill(text: str) -> str:
        return SECRET_REF.sub(lambda m: values[m.group(1)], text)

    secrets = {values[n] for names in wanted.values() for n in names}
    sources = {}
    for source in config.sources:
        if not wanted.get(source.name) and not source.headers:
            continue
        headers = {k: fill(v) for k, v in source.headers.items()}
        auth = source.auth
        if auth and auth.type == "bearer" and auth.token:
            headers["Authorization"] = f"Bearer {fill(auth.token)}"
        elif auth and auth.type == "basic" and auth.username is not None and auth.password:
            token = basic_credentials(fill(auth.username), fill(auth.password))
            headers["Authorization"] = f"Basic {token}"
            secrets.add(token)
        elif auth and auth.type == "cookie" and auth.cookie:
            headers["Cookie"] = fill(auth.cookie)
        sources[source.name] = SourceCredentials(url=fill(config.feed_url(source)), headers=headers)
    params = {p for s in config.sources for p in s.secret_param_names()}
    return Credentials(sources=sources, redactor=Redactor(values=secrets, params=params))


def credentials_of(crawler: Crawler) -> Credentials:
    """The running spider's credentials (an empty set for spiders without any)."""
    return getattr(crawler.spider, "credentials", None) or Credentials()


def redact_logs(redactor: Redactor) -> None:
    """Every log record made from now on, in any logger, with the secrets ``REDACTED``."""
    if not redactor:
        return
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's to report
            return record
        clean = redactor.text(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redactor.text(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)


def redact_wire(wire: WireHead, redactor: Redactor, own_origin: bool) -> WireHead:
    """The heads as the WARC keeps them: secrets ``REDACTED``, and the cookies the source set."""
    method, _, rest = wire.request_line.partition(" ")
    target, _, protocol = rest.rpartition(" ")

    def response_header(name: str, value: str) -> str:
        if own_origin and name.lower() in ("set-cookie", "set-cookie2"):
            return Redactor.set_cookie(value)
        return redactor.text(value)

    return replace(
        wire,
        request_line=f"{method} {redactor.text(target)} {protocol}",
        request_headers=[(k, redactor.text(v)) for k, v in wire.request_headers],
        response_headers=[(k, response_header(k, v)) for k, v in wire.response_headers],
    )


class CredentialsMiddleware:
    """Sends each source's credentials to its own origin only; redacts what the WARC records.

    Closest to the downloader (after the WARC capture middleware), so no engine-side component,
    and no retry or redirect copy of a request, ever holds the credentials: they are added as
    the request goes out and taken off as its answer comes back.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _own(self, request: Request) -> SourceCredentials | None:
        own = credentials_of(self.crawler).sources.get(request.meta.get(SOURCE_META, ""))
        return own if own is not None and origin(request.url) == own.origin else None

    def process_request(self, request: Request) -> None:
        credentials = credentials_of(self.crawler)
        if not credentials.redactor:
            return
        self._take_off(request)
        own = self._own(request)
        if own is not None:
            for name, value in own.headers.items():
                request.headers[name] = value
            request.meta[SENT_META] = list(own.headers)
        referer = request.headers.get("Referer")
        if referer:
            request.headers["Referer"] = credentials.redact(referer.decode("latin-1"))
        target = credentials.redact(request.url)
        if target != request.url:
            request.meta[TARGET_URI_META] = target
        else:
            request.meta.pop(TARGET_URI_META, None)

    def process_response(self, request: Request, response: Response) -> Response:
        credentials = credentials_of(self.crawler)
        if credentials.redactor:
            wire = request.meta.get(WIRE_META)
            if wire is not None:
                request.meta[WIRE_META] = redact_wire(wire, credentials.redactor, self._own(request) is not None)
            self._take_off(request)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        self._take_off(request)

    @staticmethod
    def _take_off(request: Request) -> None:
        for name in request.meta.pop(SENT_META, []):
            request.headers.pop(name, None)
