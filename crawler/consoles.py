"""Add-on: Scrapy's remote-control server is not even loaded while it is off."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.settings import Settings

REMOTE_CONTROL = "scrapy.extensions.remote_control.RemoteControl"


class UnloadedRemoteControl:
    """Scrapy builds every extension it lists and lets the ones switched off refuse
    (``NotConfigured``); the remote control imports aiohttp to do so, 0.12 s of the start-up of
    every run (a cron run over an unchanged archive takes 1.5 s in all). While
    ``REMOTE_CONTROL_ENABLED`` is off (postarc's default) it is taken out of
    ``EXTENSIONS_BASE`` (a ``None`` in ``EXTENSIONS`` would not do: Scrapy imports every key
    it reads there); turned on (``-s``, a Scrapyd ``setting=``), it loads as usual.
    """

    def update_settings(self, settings: Settings) -> None:
        if not settings.getbool("REMOTE_CONTROL_ENABLED"):
            base = settings.getdict("EXTENSIONS_BASE")
            base.pop(REMOTE_CONTROL, None)
            settings.set("EXTENSIONS_BASE", base, priority="addon")
