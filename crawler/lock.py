"""One crawl per archive at a time: an ``flock`` on ``DIR/.lock`` held by the crawl process.

``flock`` belongs to the open file, and the kernel drops it when the process ends however it
ends (exit, crash, ``kill -9``). So there is no stale lock to detect or break: the file may
outlive a dead crawl, but its lock does not, and the next crawl takes it at once. The holder's
pid is written into the file only to say who holds it.

The workers of a shared crawl (``postarc crawl --redis``) take the lock *shared*: any number of
them write one archive together (Redis keeps them from writing the same post), while a crawl of
one process, which takes it exclusive, still never runs beside them.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_NAME = ".lock"
#: What shared holders write into the lock file instead of a pid.
SHARED_MARK = "shared"


class ArchiveBusy(RuntimeError):
    """Another process holds the archive's lock."""


class ArchiveLock:
    """``with ArchiveLock(dir):`` — raises ``ArchiveBusy`` (naming the holder) if taken.

    ``shared=True``: taken alongside other shared holders, refused only by an exclusive one.
    """

    def __init__(self, archive_dir: str | Path, shared: bool = False) -> None:
        self.path = Path(archive_dir) / LOCK_NAME
        self.shared = shared
        self.file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+", encoding="ascii")
        try:
            fcntl.flock(f, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            who = ("the workers of a shared crawl (--redis) are" if holder == SHARED_MARK
                   else f"another crawl (pid {holder}) is")
            raise ArchiveBusy(f"{self.path.parent}: {who} running") from None
        f.seek(0)
        f.truncate()
        f.write(f"{SHARED_MARK if self.shared else os.getpid()}\n")
        f.flush()
        self.file = f

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing the file drops the lock
            self.file = None

    def __enter__(self) -> ArchiveLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(archive_dir: str | Path) -> bool:
    """Whether a crawl holds the archive now (a probe: takes and drops the lock at once)."""
    try:
        with ArchiveLock(archive_dir):
            return False
    except ArchiveBusy:
        return True
