"""Command-line options shared by the postarc commands, mapped onto Scrapy settings."""

from __future__ import annotations

import argparse

from scrapy.settings import Settings


def add_archive_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--archive", metavar="DIR", help="archive directory (default: ./data)")


def add_secrets_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secrets", metavar="FILE",
                        help="values of the ${NAME}s in the sources file not in the environment "
                             "(YAML, owner-only; default ~/.config/postarc/secrets.yaml)")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """How posts are written: the seed's form is ``--body html --date-format rfc1123``."""
    group = parser.add_argument_group("Markdown output")
    group.add_argument("--body", choices=["markdown", "html"], help="post body as Markdown or cleaned HTML")
    group.add_argument("--date-format", choices=["iso", "rfc1123"], help="front matter date form")
    group.add_argument("--images", choices=["local", "remote"], help="save images beside posts, or link them")
    group.add_argument("--image-proxy", metavar="PREFIX", help="URL prefix put before remote image URLs")


def apply_options(settings: Settings, opts: argparse.Namespace) -> None:
    """Copy the options that were given onto the settings, at command-line priority."""
    mapping = {
        "archive": "POSTARC_ARCHIVE_DIR",
        "secrets": "POSTARC_SECRETS_FILE",
        "body": "POSTARC_BODY",
        "date_format": "POSTARC_DATE_FORMAT",
        "images": "POSTARC_IMAGES",
        "image_proxy": "POSTARC_IMAGE_PROXY",
    }
    for option, setting in mapping.items():
        value = getattr(opts, option, None)
        if value is not None:
            settings.set(setting, value, priority="cmdline")


class ArchiveOptionsMixin:
    """For postarc's Scrapy commands: the options given are copied onto the settings."""

    settings: Settings | None

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)  # type: ignore[misc]  # ScrapyCommand's, next in the MRO
        assert self.settings is not None
        apply_options(self.settings, opts)
