"""kiskadee: continuous static analysis of upstream releases and distribution archives."""

__version__ = "0.1.0"
