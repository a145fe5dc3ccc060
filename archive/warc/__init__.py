"""WARC/1.1 files as the archive of record: ``writer`` writes them, ``repair`` closes what a
killed writer left open, ``compat`` adapts warcio where it falls short."""
