"""The static HTML report: an index of packages, a page per version and per release diff.

``site`` decides where pages go and writes them atomically (``write``,
``write_all``, ``write_changed`` for the ``kiskadee-report`` unit); ``pages``
makes each page from the readers' plain data; ``markup`` escapes and holds the
shared pieces (the findings table, its filters, the stylesheet and script);
``source`` reads the lines around findings where the analyzed source is still
on this host.
"""
