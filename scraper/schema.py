"""The archive's tables, columns and indexes, created through sqlite-utils.

`scraper.store` runs this module as a helper process (`python -m
scraper.schema PATH`) when an archive is new or lacks something this version
writes: sqlite-utils, with click, dateutil and pluggy, then never loads in a
process that polls. Creating is idempotent: an archive from an earlier
version gains the missing columns and indexes and keeps its rows.
"""

from __future__ import annotations

import sqlite3
import sys

__all__ = ["INDEXES", "TABLES", "create"]

_ARTICLE_COLUMNS: dict[str, type] = {
    "id": int, "url": str, "canonical_url": str, "guid": str, "feed_url": str,
    "title": str, "author": str, "categories": str, "headimg": str, "thumbnail": str,
    "date": str, "published": str, "first_seen": str, "updated": str, "body": str,
    "content_hash": str, "summary_only": int, "fulltext_error": str, "revision": int,
    "page_failures": int,  # article page tried and failed this many polls in a row
}
_REVISION_COLUMNS: dict[str, type] = {
    "id": int, "article_id": int, "revision": int, "replaced_at": str, "title": str,
    "date": str, "published": str, "headimg": str, "body": str, "content_hash": str,
}
_FEED_COLUMNS: dict[str, type] = {
    "url": str, "title": str, "category": str, "source": str, "channel": str,
    "etag": str, "last_modified": str, "last_polled": str, "last_status": str,
    "last_error": str, "error_count": int, "redirect_url": str, "failing_since": str,
    "last_success": str, "ttl": int, "max_age": int, "retry_after": int,
    "next_poll": str, "poll_interval": int,  # set by the service (`scraper run`)
    "body_hash": str,  # digest of the last body parsed whole: the same bytes are not parsed again
}

# (table, columns, primary key)
TABLES: tuple[tuple[str, dict[str, type], str], ...] = (
    ("articles", _ARTICLE_COLUMNS, "id"),
    ("revisions", _REVISION_COLUMNS, "id"),
    ("feeds", _FEED_COLUMNS, "url"),
)

# (index, table, columns)
INDEXES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("idx_articles_canonical", "articles", ("canonical_url",)),
    ("idx_articles_guid", "articles", ("feed_url", "guid")),
    ("idx_articles_title", "articles", ("feed_url", "title", "published")),
    ("idx_articles_published", "articles", ("published",)),
    ("idx_revisions_article", "revisions", ("article_id",)),
)


def create(conn: sqlite3.Connection) -> None:
    """Every table, column and index in `TABLES` and `INDEXES` the database
    lacks, without touching a row. Each statement commits on its own (DDL):
    a run cut short leaves what it made, and the next one makes the rest."""
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    for name, columns, pk in TABLES:
        table = db.table(name)
        if not table.exists():
            table.create(columns, pk=pk)
            continue
        have = table.columns_dict
        for column, kind in columns.items():
            if column not in have:
                table.add_column(column, kind)
    for index, name, on in INDEXES:
        db.table(name).create_index(on, index_name=index, if_not_exists=True)


if __name__ == "__main__":  # the store's helper process: python -m scraper.schema PATH
    connection = sqlite3.connect(sys.argv[1])
    connection.execute("PRAGMA busy_timeout = 10000")  # the archive may be in use
    create(connection)
    connection.close()
