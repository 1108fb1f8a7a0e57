"""SQLite storage through sqlite-utils: the one module that knows SQL.

sqlite-utils creates the tables, columns and indexes (`scraper.schema`), in
a short-lived helper process when an archive is new or from an earlier
version: it brings click, dateutil and pluggy along, 5 MB this process never
holds. The search index and every read and write are plain SQL on one
connection.

Tables: `articles` (one row per article, deduplicated), `revisions` (every
previous version of a changed article), `feeds` (poll state per configured
feed) and `articles_fts` (FTS5 over titles and body text, CJK characters
indexed one by one, see `scraper.fts`). The database runs in WAL mode with a
busy timeout; each feed's outcome is written in one short transaction by the
single writer, so a process killed at any moment leaves it consistent.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scraper import child_env, schema
from scraper.decide import Action, decide
from scraper.fts import index_record, match_expression, query_terms
from scraper.models import FeedOutcome, FeedSummary, StoredArticle
from scraper.record import Record, format_date
from scraper.sanitize import html_to_text
from scraper.urls import canonical_url

if TYPE_CHECKING:
    import sqlite_utils

__all__ = ["FeedState", "SearchHit", "Store", "StoreError"]

# the version of `fts.index_record`'s output the search index holds: bump it
# when segmentation changes, and every archive rebuilds its index on opening
_INDEX_VERSION = 1


class StoreError(Exception):
    """The database file cannot be used; the message names it and why."""


@dataclass(frozen=True)
class FeedState:
    """What the next poll of a feed needs to know."""

    url: str
    etag: str = ""
    last_modified: str = ""
    redirect_url: str = ""
    error_count: int = 0
    body_hash: str = ""  # last body parsed with every page used ("" to parse the next one)


@dataclass(frozen=True)
class SearchHit:
    id: int
    url: str
    title: str
    date: str
    snippet: str

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "url": self.url, "title": self.title,
                "date": self.date, "snippet": self.snippet}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@functools.lru_cache(maxsize=1024)  # a save asks for `now` and each date several times
def _iso(when: datetime | None) -> str:
    if when is None:
        return ""
    w = when.astimezone(UTC)  # f-string, not strftime: this runs several times per article
    return f"{w.year:04d}-{w.month:02d}-{w.day:02d}T{w.hour:02d}:{w.minute:02d}:{w.second:02d}Z"


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Store:
    """The archive database. Open one per process; it is the only writer."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self.conn = sqlite3.connect(self.path)
            self.conn.execute("PRAGMA busy_timeout = 10000")
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.conn.execute("PRAGMA journal_mode = wal")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            # checkpoint every ~40 MB of WAL, not every 4 MB: a first pass over
            # hundreds of feeds writes tens of MB, and each checkpoint rewrites
            # pages the next one may rewrite again; close() checkpoints the rest
            self.conn.execute("PRAGMA wal_autocheckpoint = 10000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot use as an archive database: {exc}") from None

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # another process may be reading
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @functools.cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection, to look around (tests, a
        shell); the store itself never imports it in this process."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    # -- schema ----------------------------------------------------------------
    def _migrate(self) -> None:
        if self._schema_current():
            return
        self._create_tables()
        with self.conn:
            self._search_index()

    def _schema_current(self) -> bool:
        """True when every table, column, index and the search index are as
        this version writes them (the common case: nothing to migrate)."""
        for name, columns, _ in schema.TABLES:
            have = {row[1] for row in self.conn.execute(f"PRAGMA table_info({name})")}
            if not have >= columns.keys():
                return False
        indexes = {row[0] for row in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
        return indexes >= {name for name, _, _ in schema.INDEXES} and self._search_index_current()

    def _create_tables(self) -> None:
        """`scraper.schema` run in a helper process (a fresh interpreter: safe
        beside any thread), waited for; its error, if any, becomes ours. An
        in-memory database, which no other process can reach, is made here."""
        if self.path in ("", ":memory:"):
            schema.create(self.conn)
            return
        try:
            done = subprocess.run([sys.executable, "-m", "scraper.schema", self.path],
                                  capture_output=True, text=True, timeout=120, env=child_env())
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise sqlite3.DatabaseError(f"creating the tables: {exc}") from None
        if done.returncode:
            lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
            raise sqlite3.DatabaseError(lines[-1])

    def _search_index_current(self) -> bool:
        row = self.conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'articles_fts'").fetchone()
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        return row is not None and "content=''" in row[0] and version == _INDEX_VERSION

    def _search_index(self) -> None:
        """The FTS5 index, contentless: it keeps the index, not a second copy
        of every text (the archive is about half the size, and writes are
        faster). Built again from the articles when it is missing, from an
        older layout, or from another version of `fts.index_record`: the
        tokens it holds must be the ones an update deletes."""
        if self._search_index_current():
            return
        self.conn.execute("DROP TABLE IF EXISTS articles_fts")
        self.conn.execute(
            "CREATE VIRTUAL TABLE articles_fts USING fts5(title, body, content='', "
            "tokenize = 'unicode61 remove_diacritics 2')")
        rows = self.conn.execute("SELECT id, title, body FROM articles")
        self.conn.executemany(
            "INSERT INTO articles_fts (rowid, title, body) VALUES (?, ?, ?)",
            ((i, *index_record(title or "", body or "")) for i, title, body in rows))
        self.conn.execute(f"PRAGMA user_version = {_INDEX_VERSION}")

    # -- feeds -----------------------------------------------------------------
    def feed_state(self, url: str) -> FeedState:
        row = self._one("SELECT * FROM feeds WHERE url = ?", [url])
        if row is None:
            return FeedState(url=url)
        return FeedState(
            url=url,
            etag=row["etag"] or "",
            last_modified=row["last_modified"] or "",
            redirect_url=row["redirect_url"] or "",
            error_count=row["error_count"] or 0,
            body_hash=row["body_hash"] or "",
        )

    def sync_feeds(self, feeds: Iterable[Any]) -> None:
        """Record configured feeds' labels so `feeds` can list them before any poll."""
        with self._transaction():
            for feed in feeds:
                self.conn.execute(
                    "INSERT INTO feeds (url, category, source, channel, error_count) "
                    "VALUES (?, ?, ?, ?, 0) ON CONFLICT(url) DO UPDATE SET "
                    "category = excluded.category, source = excluded.source, "
                    "channel = excluded.channel",
                    [feed.url, feed.category, feed.source, feed.channel],
                )

    def set_schedule(self, url: str, next_poll: datetime | None, interval: float) -> None:
        """Remember when the service polls a feed next and its current interval."""
        with self._transaction():
            self.conn.execute(
                "UPDATE feeds SET next_poll = ?, poll_interval = ? WHERE url = ?",
                [_iso(next_poll), round(interval), url],
            )

    def schedules(self) -> dict[str, tuple[datetime | None, int | None]]:
        """Every feed's remembered next poll and interval, by URL."""
        rows = self.conn.execute("SELECT url, next_poll, poll_interval FROM feeds")
        return {url: (_parse_iso(nxt), ivl) for url, nxt, ivl in rows.fetchall()}

    def page_errors(self, feed_url: str) -> dict[str, tuple[str, int]]:
        """Content hash of every article a feed archived, with why its article
        page was not used ('' when it was, or was not wanted) and how many
        polls in a row it failed."""
        rows = self.conn.execute(
            "SELECT content_hash, fulltext_error, page_failures FROM articles "
            "WHERE feed_url = ?", [feed_url])
        return {h: (err or "", n or 0) for h, err, n in rows.fetchall()}

    def feed_rows(self) -> list[dict[str, Any]]:
        """Every feed row with its article count."""
        return list(self._rows(
            "SELECT feeds.*, (SELECT count(*) FROM articles WHERE articles.feed_url = feeds.url)"
            " AS articles FROM feeds ORDER BY url", []))

    # -- writing one feed's outcome ------------------------------------------
    def save(self, outcome: FeedOutcome, now: datetime | None = None) -> FeedSummary:
        """Write one poll's outcome in one transaction and say what changed."""
        now = now or _now()
        summary = FeedSummary(url=outcome.feed_url, status=outcome.status, error=outcome.error,
                              notes=list(outcome.notes))
        with self._transaction():
            self._save_feed_state(outcome, now)
            seen: set[int] = set()
            index = outcome.index if len(outcome.index) == len(outcome.records) else ()
            for i, record in enumerate(outcome.records):
                self._save_record(record, now, seen, summary, index[i] if index else None)
        return summary

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error. Writes inside use
        plain SQL: sqlite-utils' own helpers commit as they go."""
        conn = self.conn
        if conn.in_transaction:
            conn.commit()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
        cursor = self.conn.execute(sql, list(row.values()))
        return int(cursor.lastrowid)

    def _update(self, table: str, key: str, value: Any, row: dict[str, Any]) -> None:
        sets = ", ".join(f"{name} = ?" for name in row)
        self.conn.execute(f"UPDATE {table} SET {sets} WHERE {key} = ?",
                          [*row.values(), value])

    def _save_feed_state(self, outcome: FeedOutcome, now: datetime) -> None:
        old = self._one("SELECT * FROM feeds WHERE url = ?", [outcome.feed_url]) or {}
        row: dict[str, Any] = {
            "url": outcome.feed_url,
            "last_polled": _iso(now),
            "last_status": outcome.status,
            "last_error": outcome.error,
        }
        if outcome.ok:
            row.update(error_count=0, failing_since="", last_success=_iso(now))
            if outcome.title:
                row["title"] = outcome.title
            if not outcome.not_modified:
                row.update(etag=outcome.etag or "", last_modified=outcome.last_modified or "")
            if not outcome.not_modified and not outcome.same_body:
                row.update(ttl=outcome.ttl, body_hash=outcome.body_hash)
            row["max_age"] = outcome.max_age
        else:
            row["error_count"] = (old.get("error_count") or 0) + 1
            row["failing_since"] = old.get("failing_since") or _iso(now)
        row["retry_after"] = outcome.retry_after
        if outcome.redirect_url is not None:
            row["redirect_url"] = outcome.redirect_url
        if old:
            self._update("feeds", "url", outcome.feed_url, row)
        else:
            self._insert("feeds", row)

    def _find(self, record: Record, canonical: str) -> dict[str, Any] | None:
        """The stored article this record is, by the dedup rules in order:
        canonical URL, guid in the same feed, title and date in the same feed."""
        rules = [("canonical_url = ?", [canonical])] if canonical else []
        if record.guid:
            rules.append(("feed_url = ? AND guid = ?", [record.feed_url, record.guid]))
        rules.append(("feed_url = ? AND title = ? AND published = ?",
                      [record.feed_url, record.title, _iso(record.published)]))
        # the common case on a first poll, no match at all: one indexed query
        any_rule = " OR ".join(f"({sql})" for sql, _ in rules)
        params = [p for _, rule_params in rules for p in rule_params]
        if self.conn.execute(f"SELECT 1 FROM articles WHERE {any_rule} LIMIT 1",
                             params).fetchone() is None:
            return None
        for sql, rule_params in rules:
            row = self._one(f"SELECT * FROM articles WHERE {sql}", rule_params)
            # In its own feed, a different guid is a different article even when
            # the URLs agree once the fragment is dropped (blog permalinks).
            if row and sql.startswith("canonical_url") and row["feed_url"] == record.feed_url \
                    and row["guid"] and record.guid and row["guid"] != record.guid:
                continue
            if row:
                return row
        return None

    def _save_record(
        self, record: Record, now: datetime, seen: set[int], summary: FeedSummary,
        indexed: tuple[str, str] | None,
    ) -> None:
        canonical = canonical_url(record.url) if record.url else ""
        old = self._find(record, canonical)
        if old is not None and old["id"] in seen:  # the feed lists one article twice
            summary.unchanged += 1
            return
        action = decide(
            old["content_hash"] if old else None, record.content_hash,
            owned=old is None or old["feed_url"] == record.feed_url,
            page_recovered=bool(old and old["fulltext_error"] and not record.fulltext_error
                                and not record.summary_only),
        )
        if action is Action.UNCHANGED:
            summary.unchanged += 1
            seen.add(old["id"])
            if record.fulltext_error and old["fulltext_error"]:  # its page failed again
                self.conn.execute(
                    "UPDATE articles SET page_failures = coalesce(page_failures, 0) + 1, "
                    "fulltext_error = ? WHERE id = ?", [record.fulltext_error, old["id"]])
            return
        if action is Action.CHANGED:
            self._keep_revision(old, now)
            article_id = self._write_article(record, canonical, now, old, indexed)
            summary.updated += 1
        else:
            article_id = self._write_article(record, canonical, now, None, indexed)
            summary.new += 1
        seen.add(article_id)
        summary.written_ids.append(article_id)
        if record.fulltext_error:
            summary.notes.append(f"{record.url}: full text not used: {record.fulltext_error}")

    def _keep_revision(self, old: dict[str, Any], now: datetime) -> None:
        self._insert("revisions", {
            "article_id": old["id"], "revision": old["revision"] or 1,
            "replaced_at": _iso(now), "title": old["title"], "date": old["date"],
            "published": old["published"], "headimg": old["headimg"], "body": old["body"],
            "content_hash": old["content_hash"],
        })

    def _write_article(
        self, record: Record, canonical: str, now: datetime, old: dict[str, Any] | None,
        indexed: tuple[str, str] | None,
    ) -> int:
        first_seen = _parse_iso(old["first_seen"]) if old else now
        row = {
            "url": record.url,
            "canonical_url": canonical,
            "guid": record.guid,
            "feed_url": old["feed_url"] if old else record.feed_url,
            "title": record.title,
            "author": record.author,
            "categories": json.dumps(list(record.categories), ensure_ascii=False),
            "headimg": record.headimg,
            "thumbnail": record.thumbnail,
            "date": format_date(record.published or first_seen or now),
            "published": _iso(record.published),
            "first_seen": _iso(first_seen),
            "updated": _iso(now),
            "body": record.body,
            "content_hash": record.content_hash,
            "summary_only": int(record.summary_only),
            "fulltext_error": record.fulltext_error,
            "page_failures": 1 if record.fulltext_error else 0,
            "revision": (old["revision"] or 1) + 1 if old else 1,
        }
        indexed = indexed or index_record(record.title, record.body)
        if old:
            self._update("articles", "id", old["id"], row)
            # a contentless index forgets a row given exactly the tokens it holds
            self.conn.execute(
                "INSERT INTO articles_fts (articles_fts, rowid, title, body) "
                "VALUES ('delete', ?, ?, ?)",
                [old["id"], *index_record(old["title"] or "", old["body"] or "")])
            self.conn.execute("INSERT INTO articles_fts (rowid, title, body) VALUES (?, ?, ?)",
                              [old["id"], *indexed])
            return int(old["id"])
        article_id = self._insert("articles", row)
        self.conn.execute("INSERT INTO articles_fts (rowid, title, body) VALUES (?, ?, ?)",
                          [article_id, *indexed])
        return article_id

    # -- reading ---------------------------------------------------------------
    def article(self, id_or_url: str | int) -> StoredArticle | None:
        """An article by its id or by any URL that canonicalizes to its own."""
        text = str(id_or_url).strip()
        row = None
        if text.isdigit():
            row = self._one("SELECT * FROM articles WHERE id = ?", [int(text)])
        if row is None and text:
            row = self._one(
                "SELECT * FROM articles WHERE canonical_url = ? OR url = ? OR guid = ?",
                [canonical_url(text), text, text],
            )
        return _stored(row) if row else None

    def articles(
        self, since: datetime | None = None, feed_urls: Iterable[str] | None = None,
        ids: Iterable[int] | None = None,
    ) -> Iterator[StoredArticle]:
        """Stored articles, oldest first, optionally filtered."""
        where, params = ["1 = 1"], []
        if since is not None:
            where.append("coalesce(nullif(published, ''), first_seen) >= ?")
            params.append(_iso(since))
        if feed_urls is not None:
            urls = list(feed_urls)
            where.append(f"feed_url IN ({', '.join('?' * len(urls))})")
            params.extend(urls)
        if ids is not None:
            id_list = list(ids)
            where.append(f"id IN ({', '.join('?' * len(id_list))})")
            params.extend(id_list)
        sql = f"SELECT * FROM articles WHERE {' AND '.join(where)} ORDER BY id"
        for row in self._rows(sql, params):
            yield _stored(row)

    def revisions(self, article_id: int) -> list[dict[str, Any]]:
        return list(self._rows(
            "SELECT * FROM revisions WHERE article_id = ? ORDER BY revision", [article_id]))

    def count(self, table: str = "articles") -> int:
        if table not in {"articles", "revisions", "feeds"}:
            raise ValueError(f"no table {table!r}")
        return int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def search(self, query: str, limit: int = 20) -> list[SearchHit]:
        """Articles whose title or body text holds every word of `query`."""
        expression = match_expression(query)
        if not expression:
            return []
        rows = self._rows(
            "SELECT a.id, a.url, a.title, a.date, a.body FROM articles_fts "
            "JOIN articles a ON a.id = articles_fts.rowid "
            "WHERE articles_fts MATCH ? ORDER BY bm25(articles_fts, 5.0, 1.0) LIMIT ?",
            [expression, limit],
        )
        terms = query_terms(query)
        return [
            SearchHit(r["id"], r["url"], r["title"], r["date"], _snippet(r["body"], terms))
            for r in rows
        ]

    def integrity(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    def _one(self, sql: str, params: list[Any]) -> dict[str, Any] | None:
        return next(self._rows(sql + " LIMIT 1", params), None)

    def _rows(self, sql: str, params: list[Any]) -> Iterator[dict[str, Any]]:
        # plain sqlite3: sqlite-utils' query() costs more than the lookup itself
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(names, row, strict=True))


def _stored(row: dict[str, Any]) -> StoredArticle:
    record = Record(
        url=row["url"] or "",
        guid=row["guid"] or "",
        feed_url=row["feed_url"] or "",
        title=row["title"] or "",
        author=row["author"] or "",
        categories=tuple(json.loads(row["categories"] or "[]")),
        headimg=row["headimg"] or "",
        body=row["body"] or "",
        published=_parse_iso(row["published"]),
        summary_only=bool(row["summary_only"]),
        fulltext_error=row["fulltext_error"] or "",
    )
    first_seen = _parse_iso(row["first_seen"]) or _now()
    return StoredArticle(
        id=int(row["id"]), record=record, first_seen=first_seen,
        updated=_parse_iso(row["updated"]) or first_seen, revision=row["revision"] or 1,
    )


def _snippet(body: str, terms: list[str], width: int = 60) -> str:
    text = html_to_text(body)
    lowered = text.lower()
    positions = [p for p in (lowered.find(t.lower()) for t in terms) if p >= 0]
    start = max(0, min(positions) - width // 2) if positions else 0
    piece = text[start : start + 2 * width]
    return ("…" if start else "") + piece + ("…" if start + 2 * width < len(text) else "")
