"""Archive replay: browse and search the posts, open captures as they were (``postarc replay``).

``app`` is the WSGI application, a router over ``posts`` (the listing and each post),
``captures`` (``/web/``, pywb's URL scheme) and ``staticfiles``; ``wsgi`` holds requests, responses
and the host guard, ``ui`` the templates; ``server`` hosts the app. ``index`` finds captures in
the CDXJ index, ``records`` reads them from the WARC files, ``rewrite`` points archived pages'
links back into the archive, ``search`` and ``library`` answer the post listing. Nothing here
imports ``crawler``: a replay needs no Scrapy.
"""
