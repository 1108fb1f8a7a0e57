"""scraper: an archiver for finance news feeds (RSS/Atom/RSSHub to SQLite and Hexo)."""

__version__ = "0.1.0"
