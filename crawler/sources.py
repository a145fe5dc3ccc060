"""The sources file: which feeds to archive and how.

Validated with pydantic before any request is made; every problem is reported with the
file, the line and the reason, as a YAML or schema error alike.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crawler.exitcodes import EXIT_USAGE

#: ``${NAME}``: a secret read from the environment or the secrets file (crawler.credentials).
SECRET_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: Header and query parameter names whose values are credentials: never written inline.
SECRET_NAME = re.compile(r"(?i)^(authorization|proxy-authorization|cookie)$|token|secret|passw|api[-_]?key|"
                         r"^(x-)?key$|session|auth(?!or)|sig(nature)?$")
EVERY_RE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
EVERY_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: History documents read past the head by ``backfill: true``, unless ``backfill_pages`` says.
BACKFILL_PAGES = 50
#: ``max_enclosure_mb``'s default: a file above it stays a link. Podcast episodes are 20-150 MB
#: and an hour of 1080p video 1-2 GB: 500 MB keeps every audio episode and short videos, and
#: bounds the disk one entry can take (the WARC and the post's folder each hold a copy).
MAX_ENCLOSURE_MB = 500
MB = 1024 * 1024
#: Keys that say when a source runs; a source giving one replaces both of ``defaults:``.
TIMING_KEYS = ("schedule", "every")


class SourcesError(ValueError):
    """A sources file that cannot be used; the message names file, line and reason."""


def refuse_sources(error: SourcesError) -> int:
    """Say why the sources file cannot be used, in the words every command uses; its exit code."""
    print(f"postarc: bad sources file\n{error}", file=sys.stderr)
    return EXIT_USAGE


def parse_every(value: str) -> int:
    """``30s``, ``10m``, ``2h``, ``1d`` in seconds; ``ValueError`` for anything else (or zero)."""
    m = EVERY_RE.match(value)
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"{value!r} is not a duration like 30s, 10m, 2h or 1d")
    return int(m.group(1)) * EVERY_UNITS[m.group(2)]


def _check_zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def _is_ref(value: str) -> bool:
    return SECRET_REF.fullmatch(value) is not None


def refs(value: str) -> list[str]:
    """The ``${NAME}`` names in ``value``."""
    return SECRET_REF.findall(value)


def _query_pairs(url: str) -> Iterator[tuple[str, str]]:
    query = url.partition("?")[2].partition("#")[0]
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        if eq:
            yield name, value


class Auth(BaseModel):
    """How a private feed proves who asks: a bearer token, a user and password, or a cookie."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["bearer", "basic", "cookie"]
    token: str | None = None
    username: str | None = None
    password: str | None = None
    cookie: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Auth:
        needs = {"bearer": ("token",), "basic": ("username", "password"), "cookie": ("cookie",)}[self.type]
        given = {k for k in ("token", "username", "password", "cookie") if getattr(self, k) is not None}
        if given != set(needs):
            raise ValueError(f"auth type {self.type} takes {' and '.join(needs)}")
        for key in ("token", "password"):
            value = getattr(self, key)
            if value is not None and not _is_ref(value):
                raise ValueError(f"auth {key} is written inline: write \"${{NAME}}\" and set NAME in the "
                                 "environment or the secrets file")
        if self.cookie is not None:
            for pair in self.cookie.split(";"):
                name, eq, value = pair.strip().partition("=")
                if not eq or not name or not _is_ref(value.strip()):
                    raise ValueError("auth cookie must be name=${NAME} pairs (separated by ;), no value inline")
        return self


class Source(BaseModel):
    """One feed and how to archive it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    url: str = Field(min_length=1)
    categories: list[str] = Field(default_factory=list)
    schedule: str | None = None
    every: str | None = None
    follow_links: bool = False
    timezone: str = "UTC"
    gmt_is: str | None = None
    images: Literal["local", "remote"] | None = None
    image_proxy: str | None = None
    limit: int | None = Field(default=None, ge=1)
    enabled: bool = True
    site: str | None = None  # the site's home page (OPML's htmlUrl)
    headers: dict[str, str] = Field(default_factory=dict)
    auth: Auth | None = None
    secret_params: list[str] = Field(default_factory=list)
    backfill: bool = False  # follow the feed's history (RFC 5005 prev-archive, next) once
    backfill_pages: int = Field(default=BACKFILL_PAGES, ge=1)
    # Enclosures (podcast audio, video, files): linked where they are, or fetched into the WARC
    # and saved beside the post (pipelines.enclosures), up to max_enclosure_mb each.
    enclosures: Literal["link", "local"] = "link"
    max_enclosure_mb: int = Field(default=MAX_ENCLOSURE_MB, ge=1)
    # Fetch again, on every run, the article pages of posts published within this window
    # (conditional requests): edits the feed does not announce become versions.
    revisit: str | None = None
    # One post per story across feeds (canonical URL, else body fingerprint), or per feed only.
    dedup: Literal["across", "within"] = "across"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^(https?|rsshub)://\S+$", value):
            raise ValueError("url must be http(s)://… or rsshub://route")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                raise ValueError(f"header name {name!r} is not a valid HTTP field name")
            if "\r" in text or "\n" in text:
                raise ValueError(f"header {name}: a value on one line")
            if SECRET_NAME.search(name) and not refs(text):
                raise ValueError(f"header {name} is written inline: put the secret in ${{NAME}} and set NAME "
                                 "in the environment or the secrets file")
        return value

    @model_validator(mode="after")
    def _secret_params(self) -> Source:
        for name, value in _query_pairs(self.url):
            if (name in self.secret_params or SECRET_NAME.search(name)) and not _is_ref(value):
                raise ValueError(f"url parameter {name} is written inline: write {name}=${{NAME}} and set NAME "
                                 "in the environment or the secrets file")
        return self

    def secret_param_names(self) -> set[str]:
        """``secret_params`` and every URL parameter whose value is a ``${NAME}``."""
        return set(self.secret_params) | {n for n, v in _query_pairs(self.url) if refs(v)}

    @field_validator("timezone", "gmt_is")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return _check_zone(value)

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_every(value)
            except ValueError:
                raise ValueError("every must look like 30s, 10m, 2h or 1d (and not zero)") from None
        return value

    @field_validator("revisit")
    @classmethod
    def _revisit(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_every(value)
            except ValueError:
                raise ValueError("revisit must look like 12h or 7d (and not zero)") from None
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"schedule {value!r} is not a 5-field cron expression")
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> Source:
        if self.schedule and self.every:
            raise ValueError("give either schedule or every, not both")
        return self

    @property
    def revisit_s(self) -> int | None:
        """``revisit`` in seconds."""
        return parse_every(self.revisit) if self.revisit else None

    @property
    def interval_s(self) -> int | None:
        """``every`` in seconds."""
        return parse_every(self.every) if self.every else None

    def next_run(self, last_run: datetime | None, default_every: int | None = None) -> datetime | None:
        """When the source is due again after a run that started at ``last_run`` (aware).

        ``every`` counts from the last start; a cron ``schedule`` fires at its next tick after
        the last start, in the machine's local time as cron does. A source never run is due at
        once. Without either, ``default_every`` seconds apply, and with no default either the
        source has no timing of its own: ``None``, due whenever a crawl is started.
        """
        interval = self.interval_s or (None if self.schedule else default_every)
        if not (self.schedule or interval):
            return None
        if last_run is None:
            return datetime.min.replace(tzinfo=timezone.utc)
        if interval:
            return last_run + timedelta(seconds=interval)
        assert self.schedule
        return croniter(self.schedule, last_run.astimezone()).get_next(datetime).astimezone(timezone.utc)

    def is_due(self, last_run: datetime | None, now: datetime) -> bool:
        due = self.next_run(last_run)
        return due is None or due <= now


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rsshub: str = "https://rsshub.app"
    defaults: dict[str, Any] = Field(default_factory=dict)
    sources: list[Source] = Field(min_length=1)

    @field_validator("rsshub")
    @classmethod
    def _rsshub(cls, value: str) -> str:
        if not re.match(r"^https?://\S+$", value):
            raise ValueError("rsshub must be an http(s):// base URL")
        return value

    def feed_url(self, source: Source) -> str:
        """The URL to fetch: ``rsshub://route`` expands against the file's ``rsshub`` base."""
        if source.url.startswith("rsshub://"):
            return self.rsshub.rstrip("/") + "/" + source.url[len("rsshub://"):].lstrip("/")
        return source.url


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at pydantic's error location (deepest one that exists)."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == key), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]  # the key's line: where the reader looks
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _duplicate_keys(node: yaml.Node) -> list[tuple[int, str]]:
    """(line, key) of every repeated mapping key: PyYAML would silently keep the last one."""
    found = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    found.append((key.start_mark.line + 1, key.value))
                seen.add(key.value)
            found += _duplicate_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found += _duplicate_keys(item)
    return found


def _duplicate_names(path: Path, root: yaml.Node, data: dict[str, Any]) -> list[tuple[int, str]]:
    """A name is what the catalogue and ``--only`` know a source by: it must be unique."""
    found, seen = [], set()
    sources = data.get("sources")
    for i, source in enumerate(sources if isinstance(sources, list) else []):
        name = source.get("name") if isinstance(source, dict) else None
        if isinstance(name, str) and name in seen:
            line = _line_of(root, ("sources", i, "name")) or 1
            found.append((line, f"{path}:{line}: sources.{i}.name: source name {name!r} appears twice"))
        seen.add(name)
    return found


def _merge_defaults(defaults: dict[str, Any], source: Any) -> Any:
    """``defaults:`` under the source's own keys; a source's own timing replaces the default's."""
    if not isinstance(source, dict):
        return source
    if any(k in source for k in TIMING_KEYS):
        defaults = {k: v for k, v in defaults.items() if k not in TIMING_KEYS}
    return {**defaults, **source}


def _where(root: yaml.Node, data: dict[str, Any], loc: tuple[Any, ...]) -> tuple[int | None, str]:
    """Line and dotted name of an error; a key a source got from ``defaults:`` points there."""
    field = ".".join(str(p) for p in loc) or "(file)"
    sources = data.get("sources")
    if len(loc) >= 3 and loc[0] == "sources" and isinstance(sources, list) and isinstance(loc[1], int):
        own = sources[loc[1]] if loc[1] < len(sources) else None
        if isinstance(own, dict) and loc[2] not in own and loc[2] in (data.get("defaults") or {}):
            return _line_of(root, ("defaults", *loc[2:])), "defaults." + ".".join(map(str, loc[2:]))
    return _line_of(root, loc), field


def _parse_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree (for line numbers), composed once.

    libyaml where it is installed: every crawl reads the sources file, and PyYAML's own parser
    took ~0.1 s for 50 sources (twice: data, then nodes). A text it refuses is read again by
    PyYAML's, whose error is the one reported.
    """
    try:
        return _compose(text, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return _compose(text, yaml.SafeLoader)


def _compose(text: str, loader_class: type[Any]) -> tuple[Any, yaml.Node | None]:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()


def load_sources(path: str | Path) -> SourcesFile:
    """Read and validate a sources file; raise ``SourcesError`` naming file, line and reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesError(f"{path}: cannot read: {exc}") from exc
    try:
        data, root = _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SourcesError(f"{path}{where}: invalid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise SourcesError(f"{path}:1: expected a mapping with a 'sources:' list")
    problems = [(line, f"{path}:{line}: duplicate key {key!r}") for line, key in _duplicate_keys(root)]
    problems += _duplicate_names(path, root, data)
    defaults = data.get("defaults") or {}
    merged = dict(data)
    if isinstance(defaults, dict) and isinstance(data.get("sources"), list):
        merged["sources"] = [_merge_defaults(defaults, s) for s in data["sources"]]
    try:
        config = SourcesFile.model_validate(merged)
    except ValidationError as exc:
        for err in exc.errors():
            line, field = _where(root, data, tuple(err["loc"]))
            reason = err["msg"].removeprefix("Value error, ")
            problems.append((line or 1, f"{path}:{line or 1}: {field}: {reason}"))
    if problems:
        # One message per problem, in file order; a default shared by many sources once.
        raise SourcesError("\n".join(dict.fromkeys(m for _line, m in sorted(problems))))
    return config
