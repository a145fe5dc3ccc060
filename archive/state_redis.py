"""Crawl state in Redis (``archive.state.CrawlState``), shared by every worker of one crawl.

Keys, under a prefix (``postarc`` by default; give each archive its own prefix or Redis
database):

==========================  ===========  ====================================================
``P:posts``                 hash         ``source NUL guid`` → the post's catalogue row (JSON)
``P:paths``                 hash         Markdown path → ``source NUL guid`` that owns it
``P:sources``               hash         source name → its state (validators, last run; JSON)
``P:payloads``              hash         payload digest → its first capture (JSON)
``P:story:keys``            hash         story key (URL, fingerprint mark) → ``source NUL guid`` of its post
``P:story:members``         hash         ``source NUL guid`` → the entry's story (JSON)
``P:story:of:<sha1>``       set          ``source NUL guid`` of every entry of one post's story
``P:story:lock``            string, TTL  held by the worker looking for a story and claiming it
``P:payloads:<WARC file>``  set          digests first captured in that file (for repairs)
``P:claim:<sha1>``          string, TTL  worker writing one version (content hash) of a post
``P:alive:<worker>``        string, TTL  there while the worker's heartbeat runs
``P:seeded``                string       ``state.sqlite`` was copied in (once)
==========================  ===========  ====================================================

Reads come from Redis only; every write also goes to the SQLite record (``state.sqlite``),
which replay, verify, export-wacz and reextract read. A claim names its worker: a claim whose
worker is dead (its ``alive`` key expired) is taken over, so a crash blocks nobody.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict
from typing import Any

import redis
from redis.exceptions import LockNotOwnedError

from archive.catalogue import Catalogue, PostRow, StoryMember

SOURCE_FIELDS = ("url", "etag", "last_modified", "last_run", "last_status", "backfill")
#: A claim outlives its post's pipelines by far; past that, the post's row answers instead.
CLAIM_TTL_MS = 24 * 3600 * 1000
SEED_BATCH = 1000
#: A worker holds the story lock for a few reads and writes; one killed inside frees it by then.
STORY_LOCK_S = 10.0

# Take the claim if free, ours, or held by a worker whose heartbeat stopped.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. owner) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""


class Keys:
    """Key names under one prefix (``crawler.shared.scripts`` adds the frontier's)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.posts = f"{prefix}:posts"
        self.paths = f"{prefix}:paths"
        self.sources = f"{prefix}:sources"
        self.payloads = f"{prefix}:payloads"
        self.seeded = f"{prefix}:seeded"
        self.story_keys = f"{prefix}:story:keys"
        self.story_members = f"{prefix}:story:members"
        self.story_lock = f"{prefix}:story:lock"
        self.alive_prefix = f"{prefix}:alive:"

    def alive(self, worker: str) -> str:
        return self.alive_prefix + worker

    def file_payloads(self, filename: str) -> str:
        return f"{self.payloads}:{filename}"

    def story_of(self, source: str, guid: str) -> str:
        digest = hashlib.sha1(_post_key(source, guid).encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.prefix}:story:of:{digest}"

    def claim(self, source: str, guid: str, content_hash: str) -> str:
        digest = hashlib.sha1(f"{source}\0{guid}\0{content_hash}".encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.prefix}:claim:{digest}"


def _post_key(source: str, guid: str) -> str:
    return f"{source}\0{guid}"


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)


class RedisState:
    """``CrawlState`` in Redis, written through to the archive's ``state.sqlite``."""

    def __init__(self, client: redis.Redis, prefix: str, record: Catalogue, owner: str) -> None:
        self.redis = client
        self.keys = Keys(prefix)
        self.record = record
        self.owner = owner
        self._claim = client.register_script(_CLAIM)

    @classmethod
    def from_url(cls, url: str, prefix: str, record: Catalogue, owner: str) -> RedisState:
        return cls(redis.Redis.from_url(url, decode_responses=True), prefix, record, owner)

    def close(self) -> None:
        self.redis.close()
        self.record.close()

    def seed(self) -> bool:
        """Copy ``state.sqlite`` in, the first time this prefix is used: an archive crawled
        before keeps its incremental state (no post fetched again) when it turns distributed."""
        if not self.redis.set(self.keys.seeded, "1", nx=True):
            return False
        pipe = self.redis.pipeline(transaction=False)
        for n, row in enumerate(self.record.posts(), 1):
            key = _post_key(row.source, row.guid)
            pipe.hsetnx(self.keys.posts, key, _dumps(asdict(row)))
            pipe.hsetnx(self.keys.paths, row.path, key)
            if n % SEED_BATCH == 0:
                pipe.execute()
        for key, source, guid in self.record.story_rows():
            pipe.hsetnx(self.keys.story_keys, key, _post_key(source, guid))
        for member in self.record.all_story_members():
            pipe.hsetnx(self.keys.story_members, _post_key(member.source, member.guid), _dumps(asdict(member)))
            pipe.sadd(self.keys.story_of(*member.owner), _post_key(member.source, member.guid))
        for state in self.record.sources():
            pipe.hsetnx(self.keys.sources, state["name"], _dumps(state))
        for row in self.record.payloads():
            pipe.hsetnx(self.keys.payloads, row["digest"], _dumps(row))
            pipe.sadd(self.keys.file_payloads(row["filename"]), row["digest"])
        pipe.execute()
        return True

    # -- posts -----------------------------------------------------------------------

    def post(self, source: str, guid: str) -> PostRow | None:
        raw = self.redis.hget(self.keys.posts, _post_key(source, guid))
        return PostRow(**json.loads(raw)) if raw else None

    def claim_post(self, source: str, guid: str, content_hash: str) -> bool:
        key = self.keys.claim(source, guid, content_hash)
        return bool(self._claim(keys=[key], args=[self.owner, self.keys.alive_prefix, CLAIM_TTL_MS]))

    def claim_path(self, path: str, source: str, guid: str) -> bool:
        key = _post_key(source, guid)
        return bool(self.redis.hsetnx(self.keys.paths, path, key)) or self.redis.hget(self.keys.paths, path) == key

    def save_post(self, row: PostRow) -> None:
        key = _post_key(row.source, row.guid)
        known = self.post(row.source, row.guid)
        values = asdict(row)
        if known:
            values["archived"] = known.archived  # first archived, as the SQLite upsert keeps it
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.posts, key, _dumps(values))
        pipe.hset(self.keys.paths, row.path, key)
        pipe.execute()
        self.record.save_post(row)

    # -- stories (dedup: across) ------------------------------------------------------

    def story_owners(self, keys: list[str]) -> dict[str, tuple[str, str]]:
        if not keys:
            return {}
        values = self.redis.hmget(self.keys.story_keys, keys)
        return {k: tuple(v.split("\0", 1)) for k, v in zip(keys, values) if v}  # type: ignore[misc]

    @contextmanager
    def story_lock(self) -> Iterator[None]:
        lock = self.redis.lock(self.keys.story_lock, timeout=STORY_LOCK_S, sleep=0.005)
        lock.acquire()
        try:
            yield
        finally:
            # Held past STORY_LOCK_S (Redis stalled): the claims made stand, and another worker
            # may have looked meanwhile, as it could without the lock; nothing to undo.
            with suppress(LockNotOwnedError):
                lock.release()

    def claim_story_keys(self, keys: list[str], source: str, guid: str, replace: bool = False) -> None:
        if not keys:
            return
        owner = _post_key(source, guid)
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:  # first wins, across workers too
            (pipe.hset if replace else pipe.hsetnx)(self.keys.story_keys, key, owner)
        pipe.execute()
        self.record.claim_story_keys(keys, source, guid, replace)

    def story_member(self, source: str, guid: str) -> StoryMember | None:
        raw = self.redis.hget(self.keys.story_members, _post_key(source, guid))
        return StoryMember(**json.loads(raw)) if raw else None

    def story_members(self, owner_source: str, owner_guid: str) -> list[StoryMember]:
        keys = sorted(self.redis.smembers(self.keys.story_of(owner_source, owner_guid)))
        raws = self.redis.hmget(self.keys.story_members, keys) if keys else []
        members = [StoryMember(**json.loads(raw)) for raw in raws if raw]
        return sorted((m for m in members if m.owner == (owner_source, owner_guid)), key=lambda m: m.seq)

    def save_story_member(self, member: StoryMember) -> None:
        key = _post_key(member.source, member.guid)
        values = asdict(member)
        if known := self.story_member(member.source, member.guid):
            values["seq"] = known.seq  # first brought, as the SQLite upsert keeps it
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.story_members, key, _dumps(values))
        pipe.sadd(self.keys.story_of(*member.owner), key)
        pipe.execute()
        self.record.save_story_member(member)

    # -- sources ---------------------------------------------------------------------

    def source_state(self, name: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.keys.sources, name)
        return json.loads(raw) if raw else None

    def save_source_state(self, name: str, **values: Any) -> None:
        # One worker writes a source at a time (the one that fetched its feed, or the one
        # ending a run), so read-modify-write needs no transaction.
        state = self.source_state(name) or {"name": name, **dict.fromkeys(SOURCE_FIELDS)}
        state.update(values)
        self.redis.hset(self.keys.sources, name, _dumps(state))
        self.record.save_source_state(name, **values)

    # -- payload digests (revisits) --------------------------------------------------

    def payload(self, digest: str) -> dict[str, str] | None:
        raw = self.redis.hget(self.keys.payloads, digest)
        return json.loads(raw) if raw else None

    def save_payload(self, digest: str, uri: str, date: str, filename: str, record_id: str) -> None:
        row = {"digest": digest, "uri": uri, "date": date, "filename": filename, "record_id": record_id}
        if self.redis.hsetnx(self.keys.payloads, digest, _dumps(row)):  # the first capture wins
            self.redis.sadd(self.keys.file_payloads(filename), digest)
            self.record.save_payload(digest, uri, date, filename, record_id)

    def forget_payloads(self, filename: str, keep: Collection[str]) -> int:
        gone = []
        for digest in self.redis.smembers(self.keys.file_payloads(filename)):
            row = self.payload(digest)
            if row is not None and row["filename"] == filename and row["record_id"] not in keep:
                gone.append(digest)
        if gone:
            self.redis.hdel(self.keys.payloads, *gone)
            self.redis.srem(self.keys.file_payloads(filename), *gone)
        self.record.forget_payloads(filename, keep)
        return len(gone)
