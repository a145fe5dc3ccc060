"""Exit codes of every ``postarc`` command: one table, one meaning per code.

====  =====================  ================================================================
code  name                   meaning
====  =====================  ================================================================
0     ``EXIT_OK``            done: everything asked for was done (or nothing was due)
1     ``EXIT_ERROR``         failed: the command could not do its work (a crawl that could
                             not start, a replayed run that failed, an archive ``verify``
                             finds broken, a WACZ not written)
2     ``EXIT_USAGE``         bad command line or input file: nothing was fetched or written
3     ``EXIT_PARTIAL``       done in part: some of what was asked failed and is named (a
                             source of ``crawl``, a URL of ``archive``, a post ``reextract``
                             could not rebuild); the rest was done
4     ``EXIT_BUSY``          another crawl holds the archive (``DIR/.lock``); nothing was done
5     ``EXIT_INTERRUPTED``   interrupted (a signal, a full disk); the next run resumes
====  =====================  ================================================================
"""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_BUSY = 4
EXIT_INTERRUPTED = 5
