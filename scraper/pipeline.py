"""One feed end to end (fetch → parse → records), and a pass over many feeds.

Fetching and parsing never touch the database: `poll_feed` returns a
picklable `FeedOutcome`, and `run_pass` hands each one to the single writer
(`Store.save`) as soon as it arrives, one short transaction per feed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path

from scraper.config import FeedConfig, Settings
from scraper.export import Exporter, write_articles
from scraper.extractor import needs_full_text
from scraper.fetcher import NO_SUCH_HOST, Fetcher
from scraper.models import FeedOutcome, FeedSummary, FetchResult
from scraper.processor import apply_pages, body_digest, outcome_from_fetch
from scraper.record import Record
from scraper.store import FeedState, Store
from scraper.workers import run_cpu

__all__ = [
    "NETWORK_FAILURES",
    "PAGE_TRIES",
    "network_down",
    "page_settled",
    "poll_feed",
    "poll_stored_feed",
    "run_pass",
]

NETWORK_FAILURES = frozenset({"connection", "timeout", "tls"})
PAGE_TRIES = 3  # polls in a row an article page is tried after a passing failure
_TRANSIENT = NETWORK_FAILURES | {"429"}

Progress = Callable[[FeedSummary, int, int], None]
log = logging.getLogger("scraper.fulltext")


async def poll_feed(
    fetcher: Fetcher, feed: FeedConfig, state: FeedState, executor: Executor | None = None,
    known: Collection[str] = (),
) -> FeedOutcome:
    """Fetch one feed (at its remembered address, with its validators), parse
    it, and where needed fetch article pages; `known` holds the content hashes
    already archived, whose pages are never fetched again."""
    url = state.redirect_url or feed.url
    fetched = await fetcher.fetch(url, etag=state.etag, last_modified=state.last_modified)
    if not fetched.ok or fetched.not_modified:
        return outcome_from_fetch(feed, fetched)
    if state.body_hash and body_digest(fetched.content) == state.body_hash:
        # a server without conditional GET sent what we parsed last time
        return outcome_from_fetch(feed, fetched, same_body=True)
    outcome = await run_cpu(executor, outcome_from_fetch, feed, fetched, light=True)
    if feed.full_text == "never" or not outcome.records:
        return outcome
    downloads = await asyncio.gather(
        *(_download_page(fetcher, feed, r, known) for r in outcome.records))
    # one task for all of a feed's pages: a message each way, not one per page
    pages = [(record, page) for record, page in downloads if page is not None]
    extracted = iter(await run_cpu(executor, apply_pages, pages, feed) if pages else ())
    done = [next(extracted) if page is not None else (record, None)
            for record, page in downloads]
    records = tuple(record for record, _ in done)
    index = tuple(new or old for (_, new), old in zip(done, outcome.index, strict=True))
    if not all(page_settled(r.fulltext_error) for r in records):
        outcome = replace(outcome, body_hash="")  # parse it again: those pages get retried
    return replace(outcome, records=records, index=index)


def page_settled(error: str, failures: int = 1) -> bool:
    """False when an article page failed in a way worth another try on the
    next poll (timeout, connection, 429, 5xx) and has not yet failed
    `PAGE_TRIES` polls in a row; True when it was used, not wanted, failed
    for good (404, refused, too large, no text, no such host), or failed too
    often (a site that is down must not cost every poll all its pages again)."""
    kind = error.split(":", 1)[0]
    transient = kind in _TRANSIENT or (kind.isdigit() and kind.startswith("5"))
    transient = transient and NO_SUCH_HOST not in error
    return not error or not transient or failures >= PAGE_TRIES


async def _download_page(
    fetcher: Fetcher, feed: FeedConfig, record: Record, known: Collection[str],
) -> tuple[Record, FetchResult | None]:
    """The record and its downloaded article page, to extract; or, with no
    page, the record as it stays: with the feed's summary, and the reason
    the page was not used when it failed."""
    if record.content_hash in known or not record.url:
        return record, None
    if feed.full_text == "always":
        want, reason = True, "full_text = always"
    else:
        content, summary = ("", record.body) if record.summary_only else (record.body, "")
        want, reason = needs_full_text(content, summary)
    log.info("%s: %s page: %s", record.url, "fetching" if want else "not fetching", reason)
    if not want:
        return record, None
    page = await fetcher.fetch(record.url, untrusted=True)
    if not page.ok:
        return record.without_full_text(f"{page.error_kind}: {page.error}"), None
    return record, page


async def run_pass(
    settings: Settings,
    feeds: Iterable[FeedConfig],
    store: Store,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> list[FeedSummary]:
    """Poll every feed once, concurrently; write each outcome as it arrives.

    The writes happen in the event loop's thread: a writer thread of its own
    was measured slower (its Python half fights the loop for the GIL, and
    each feed pays two thread hops). At most `http.concurrency` feeds are
    between their first request and their write at any moment: downloads
    outrun parsing, and without this bound every document and its records
    would pile up in memory."""
    feeds = list(feeds)
    store.sync_feeds(feeds)
    export_dir = settings.archive.export_dir
    exporter = Exporter(Path(export_dir)) if export_dir else None
    summaries: list[FeedSummary] = []
    queue = iter(feeds)

    async def lane(fetcher: Fetcher) -> None:
        for feed in queue:  # lanes share one iterator: each feed is taken once
            # the outcome is in no local: one would keep its records through
            # the lane's next poll (16 lanes: 3 MB at 500 feeds)
            summary = store.save(await poll_stored_feed(fetcher, feed, store, executor))
            if exporter is not None and summary.written_ids:
                write_articles(store, exporter, summary.written_ids)
            summary.written_ids = []  # done with; a pass over thousands of feeds keeps the rest
            summaries.append(summary)
            if progress:
                progress(summary, len(summaries), len(feeds))

    async with Fetcher(settings.http) as fetcher:
        await asyncio.gather(*(lane(fetcher) for _ in range(settings.http.concurrency)))
    order = {feed.url: i for i, feed in enumerate(feeds)}
    summaries.sort(key=lambda s: order.get(s.url, 0))
    return summaries


async def poll_stored_feed(
    fetcher: Fetcher, feed: FeedConfig, store: Store, executor: Executor | None = None
) -> FeedOutcome:
    """`poll_feed` with the feed's remembered state and archived hashes read
    from the store (reads only: the caller writes). Never raises: a bug in
    one poll becomes that feed's error, not every feed's."""
    state = store.feed_state(feed.url)
    known = () if feed.full_text == "never" else {
        h for h, (error, failures) in store.page_errors(feed.url).items()
        if page_settled(error, failures)}
    started = time.monotonic()
    try:
        return await poll_feed(fetcher, feed, state, executor, known)
    except Exception as exc:
        return FeedOutcome(feed_url=feed.url, status="error",
                           error=f"internal error: {type(exc).__name__}: {exc}",
                           elapsed=time.monotonic() - started)


def network_down(summaries: list[FeedSummary]) -> bool:
    """True when every feed of several failed to connect: the network (or DNS)
    is down, rather than each of those feeds."""
    return len(summaries) >= 3 and all(s.status in NETWORK_FAILURES for s in summaries)
