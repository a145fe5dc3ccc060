"""The ``postarc`` console script: Scrapy's command line with postarc's project settings.

It works from any directory (no ``scrapy.cfg`` needed) and shares one implementation with
``scrapy <command>`` run inside the project.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    # Imported here, not at the top: the worker processes of pipelines.workers import this
    # module again (it is their parent's __main__) and have no use for Scrapy (~25 MB, 0.3 s each).
    from scrapy.cmdline import execute

    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    if args and not args[0].startswith("-"):
        args[0] = args[0].replace("-", "_")  # export-wacz -> the export_wacz command module
    execute(["postarc", *args])


if __name__ == "__main__":
    main()
