"""Plain, picklable results passed from the fetch/parse stages to the writer.

Nothing here imports the network or database layers: worker processes
unpickle these, and stay small without httpx or sqlite-utils (`scraper.workers`).
"""

from __future__ import annotations

import contextlib
import email.utils
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from scraper.record import Record

__all__ = ["FeedOutcome", "FeedSummary", "FetchResult", "StoredArticle", "http_date"]


@dataclass(frozen=True)
class FeedOutcome:
    """Everything one poll of one feed produced; the store writes it in one go.

    `status` is the HTTP status as text ("200", "304") or a short failure word
    ("timeout", "connection", "tls", "too-large", "blocked", "parse").
    `etag`/`last_modified` are None when the response gave none to remember.
    """

    feed_url: str
    status: str
    error: str = ""
    etag: str | None = None
    last_modified: str | None = None
    redirect_url: str | None = None  # a permanent redirect's new address
    title: str = ""
    records: tuple[Record, ...] = ()
    ttl: int | None = None  # minutes, from RSS <ttl>
    max_age: int | None = None  # seconds, from Cache-Control / Expires
    retry_after: int | None = None  # seconds, from Retry-After
    notes: tuple[str, ...] = ()  # worth telling the user, not failures
    elapsed: float = 0.0
    body_hash: str = ""  # digest of the body parsed, when all of it was used
    same_body: bool = False  # a 200 with the very bytes parsed last time: not parsed again
    # search-index text (title, body) for each record, computed where the CPU
    # work runs, not in the single writer; empty: the store computes it
    index: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def not_modified(self) -> bool:
        return self.status == "304"


@dataclass
class FeedSummary:
    """What the writer did with one feed's outcome (for the fetch summary)."""

    url: str
    status: str
    error: str = ""
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    written_ids: list[int] = field(default_factory=list)  # new and changed articles
    notes: list[str] = field(default_factory=list)  # e.g. full-text refusals

    @property
    def ok(self) -> bool:
        return not self.error

    def as_json(self) -> dict[str, object]:
        return {
            "url": self.url,
            "status": self.status,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "error": self.error,
        }


@dataclass(frozen=True)
class StoredArticle:
    """An archived article: its record plus what the archive knows of it."""

    id: int
    record: Record
    first_seen: datetime
    updated: datetime
    revision: int = 1


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one download (after redirects and retries)."""

    url: str
    final_url: str
    status: int | None = None
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error_kind: str = ""
    error: str = ""
    permanent_redirect: str | None = None  # where a 301/308 chain ended
    retry_after: int | None = None
    attempts: int = 1
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error_kind

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def max_age(self) -> int | None:
        """Freshness the server declared (Cache-Control max-age, else Expires)."""
        match = re.search(r"max-age\s*=\s*(\d+)", self.headers.get("cache-control", ""))
        if match:
            return int(match.group(1))
        expires = http_date(self.headers.get("expires", ""))
        if expires is None:
            return None
        return max(0, int((expires - datetime.now(UTC)).total_seconds()))


def http_date(value: str) -> datetime | None:
    """An HTTP date (Expires, Retry-After, Last-Modified) as an aware datetime, or None."""
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(value)
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None
