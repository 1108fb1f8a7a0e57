"""The CPU side of a poll: a downloaded feed into records, an article page
into a record's full text.

These run in the worker processes (`scraper.workers`). The module imports
nothing of the network or the database: the workers are forked before
httpx, asyncio and sqlite-utils are loaded, so those never sit in their
memory, and what they receive and return (`scraper.models`) is plain data.
"""

from __future__ import annotations

import hashlib

from scraper.config import FeedConfig
from scraper.extractor import extract
from scraper.fts import index_record
from scraper.models import FeedOutcome, FetchResult
from scraper.parser import FeedParseError, parse_feed
from scraper.record import Record, build_record

__all__ = ["apply_pages", "body_digest", "outcome_from_fetch"]


def outcome_from_fetch(
    feed: FeedConfig, fetched: FetchResult, same_body: bool = False
) -> FeedOutcome:
    """Turn a download into records. `same_body`: the bytes are those parsed
    last time, so only the feed's state is updated."""
    common = {
        "feed_url": feed.url,
        "redirect_url": fetched.permanent_redirect,
        "retry_after": fetched.retry_after,
        "elapsed": fetched.elapsed,
    }
    if not fetched.ok:
        return FeedOutcome(status=fetched.error_kind, error=fetched.error, **common)
    status = str(fetched.status)
    if fetched.not_modified:
        return FeedOutcome(status=status, max_age=fetched.max_age, **common)
    etag = fetched.headers.get("etag")
    last_modified = fetched.headers.get("last-modified")
    if same_body:
        return FeedOutcome(status=status, etag=etag, last_modified=last_modified,
                           max_age=fetched.max_age, same_body=True, **common)
    try:
        parsed = parse_feed(fetched.content, fetched.final_url, fetched.headers)
    except FeedParseError as exc:
        return FeedOutcome(status="parse", error=str(exc), **common)
    records = tuple(build_record(entry, feed) for entry in parsed.entries)
    return FeedOutcome(
        status=status, etag=etag, last_modified=last_modified, title=parsed.title,
        records=records, index=_index(records), ttl=parsed.ttl, max_age=fetched.max_age,
        body_hash=body_digest(fetched.content),
        notes=(parsed.charset_note,) if parsed.charset_note else (), **common,
    )


def apply_pages(
    pages: list[tuple[Record, FetchResult]], feed: FeedConfig
) -> list[tuple[Record, tuple[str, str] | None]]:
    """Each of a feed's downloaded article pages applied to its record, in
    one task (one message each way between the processes, not one per page):
    the record with the page's main content and its new search text, or
    with the reason the page gave no text and None."""
    return [_apply_page(record, feed, page) for record, page in pages]


def body_digest(content: bytes) -> str:
    """A digest of a response body, to notice the same bytes coming back."""
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def _apply_page(
    record: Record, feed: FeedConfig, page: FetchResult
) -> tuple[Record, tuple[str, str] | None]:
    extracted = extract(page.content, page.final_url, selector=feed.selector,
                        content_type=page.headers.get("content-type", ""), tz_hint=feed.timezone)
    if not extracted.text.strip():
        return record.without_full_text("no article text found on the page"), None
    full = record.with_full_text(extracted.html, page.final_url, extracted.image,
                                 extracted.published, clean=True)
    return full, index_record(full.title, full.body)


def _index(records: tuple[Record, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(index_record(r.title, r.body) for r in records)
