"""Where a run's Scrapy log goes: a file per run in ``DIR/logs/``, warnings also to stderr.

Shared by ``postarc crawl`` and ``postarc demo``: the terminal (or cron's mail) shows the
table and what needs attention, the file keeps Scrapy's whole log.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from scrapy.settings import SETTINGS_PRIORITIES, Settings

from crawler.runner import log_file


def unset_by_user(settings: Settings, name: str) -> bool:
    """Not given on the command line (``-s``, ``--logfile``): ours to choose."""
    return (settings.getpriority(name) or 0) < SETTINGS_PRIORITIES["cmdline"]


def log_to_archive(settings: Settings) -> None:
    """Point ``LOG_FILE`` into ``DIR/logs/`` and turn the progress line on for a terminal.

    Call it from ``process_options``: Scrapy configures logging from the settings right after.
    """
    if unset_by_user(settings, "LOG_FILE") and settings.getbool("LOG_ENABLED"):
        archive = Path(settings["POSTARC_ARCHIVE_DIR"])
        settings.set("LOG_FILE", str(log_file(archive, settings.getint("POSTARC_LOGS_KEEP"))), priority="cmdline")
    if unset_by_user(settings, "POSTARC_PROGRESS"):
        settings.set("POSTARC_PROGRESS", sys.stderr.isatty(), priority="cmdline")


def warnings_to_stderr(settings: Settings) -> None:
    """With the log in a file, warnings and errors still reach the terminal or cron's mail."""
    if not settings.get("LOG_FILE"):
        return
    # On a terminal the progress line is being redrawn: erase it first, or the warning is glued to it.
    erase = "\r\x1b[K" if settings.getbool("POSTARC_PROGRESS") else ""
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setLevel(logging.WARNING)
    to_stderr.setFormatter(logging.Formatter(erase + "postarc: %(levelname)s: %(message)s"))
    logging.root.addHandler(to_stderr)
    # The log file shares the archive's disk: once that is full its lines are lost, and logging
    # would print each write it could not make with a traceback. stderr still has these lines.
    logging.raiseExceptions = False
