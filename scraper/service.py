"""The service behind `scraper run`: every enabled feed polled on its own schedule.

One APScheduler (3.x) `AsyncIOScheduler` job per enabled feed, an interval
trigger with jitter, `max_instances=1` (never two polls of one feed at once),
`coalesce=True` and no misfire limit (a late run still happens, once). The
first polls are spread over each feed's first interval, so a thousand feeds
never fire in the same second. Each poll is `pipeline.poll_feed` with one
shared `Fetcher` (its global and per-host limits hold across all feeds); the
outcome is written by the single writer `Store.save` in the event loop's own
thread, then the job is rescheduled at the interval `next_delay` computes.

Signals: SIGTERM/SIGINT stop new polls, let those in flight finish for up to
`grace` seconds, cancel the rest, and return 0. SIGHUP reloads the config:
feeds are added, removed and changed in place; a config that fails to load
is logged and the old one kept. systemd is told `READY=1`, `WATCHDOG=1` and
`STOPPING=1` through `NOTIFY_SOCKET` (`scraper.notify`).

Outages: a failing feed backs off for up to hours, which is right for a dead
feed but wrong when the network was down: every feed would lag for hours
after it came back. So when three or more feeds that were fine fail to
connect, with no successful poll of any feed in between (`pipeline.network_down`),
the network counts as down ("network down" is logged). While it is down, one of
those cut-off feeds (the one due soonest, so they take turns) is polled at
least every `probe` seconds (5 minutes, or its interval if shorter), whatever
its backoff. The first poll of any feed that succeeds ends the outage
("network back"): every cut-off feed is polled within `catch_up` seconds (a
minute), each host's feeds evenly apart so no host gets them at once (the
fetcher's `per_host` limit holds as always), and never later than it was due
anyway. A poll that was already running when the network came back and then
fails to connect is retried within that minute too. After a restart, feeds
that began failing to connect after the last successful poll of any feed
count as cut off. A feed that was already failing before the outage (a dead
host) or whose server answers with an error keeps its backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scraper.config import ConfigError, FeedConfig, Settings
from scraper.export import Exporter, write_articles
from scraper.fetcher import Fetcher
from scraper.models import FeedSummary
from scraper.notify import Notifier, watchdog_interval
from scraper.pipeline import NETWORK_FAILURES, network_down, poll_stored_feed
from scraper.store import Store
from scraper.urls import host_of

__all__ = [
    "Bounds",
    "Service",
    "bounds",
    "catch_up_delays",
    "configure_logging",
    "next_delay",
]

log = logging.getLogger("scraper.service")

MIN_INTERVAL = 1.0  # seconds: the shortest poll interval, whatever the hints
MAX_INTERVAL = 86_400.0  # a day: no feed is ever left longer than this
BACKOFF_CAP = 6 * 3600.0  # failing feeds back off to at most this (or the ceiling)
FASTER = 0.75  # interval factor after a poll that found new or changed entries
SLOWER = 1.25  # interval factor after a poll that found nothing new
OUTAGE_PROBE = 300.0  # seconds between probe polls while the network is down
CATCH_UP = 60.0  # seconds within which feeds cut off by an outage are polled once it ends


# -- interval arithmetic (pure) ------------------------------------------------

@dataclass(frozen=True)
class Bounds:
    """Where a feed's adaptive interval may move, for a configured `base`."""

    base: float
    floor: float
    ceiling: float
    backoff: float  # the longest wait after repeated failures


def bounds(base: float) -> Bounds:
    """Floor a quarter of the configured interval (at least 1 s), ceiling four
    times it (at most a day), failures back off to 64x it (at most 6 h, but never
    less than the ceiling)."""
    base = max(MIN_INTERVAL, float(base))
    floor = max(MIN_INTERVAL, base / 4)
    ceiling = max(base, min(MAX_INTERVAL, base * 4))
    backoff = max(ceiling, min(BACKOFF_CAP, base * 64))
    return Bounds(base=base, floor=floor, ceiling=ceiling, backoff=backoff)


def next_delay(
    base: float,
    current: float | None,
    *,
    ok: bool,
    changed: int = 0,
    error_count: int = 0,
    ttl: int | None = None,
    max_age: int | None = None,
    retry_after: int | None = None,
) -> tuple[float, float]:
    """After one poll: the feed's new adaptive interval and the seconds until
    its next poll.

    - success with new or changed entries: interval x0.75, down to the floor;
      success with nothing new (or 304): x1.25, up to the ceiling. The interval
      settles where roughly 4 polls in 10 find something.
    - the server's hints are honoured: the delay is at least RSS `<ttl>`
      (minutes) and `Cache-Control: max-age` (seconds), up to the ceiling, and
      at least `Retry-After` (up to a day);
    - failure: `base * 2**error_count` (error_count counts this failure too),
      up to the backoff bound; the adaptive interval is kept for when the feed
      recovers. A failing feed is polled again, however long it fails.
    """
    b = bounds(base)
    interval = b.base if current is None else min(b.ceiling, max(b.floor, float(current)))
    if ok:
        interval = interval * (FASTER if changed else SLOWER)
        interval = min(b.ceiling, max(b.floor, interval))
        hint = max((ttl or 0) * 60, max_age or 0)
        delay = max(interval, min(float(hint), b.ceiling))
    else:
        delay = min(b.backoff, b.base * 2 ** min(max(error_count, 1), 32))
    if retry_after:
        delay = max(delay, min(float(retry_after), MAX_INTERVAL))
    return interval, delay


def first_delay(base: float, rand: float) -> float:
    """The first poll of a feed after start: spread uniformly over its first
    interval (`rand` in [0, 1))."""
    return max(0.0, float(base)) * rand


def catch_up_delays(hosts: list[str], window: float, rand: Callable[[], float]) -> list[float]:
    """Seconds from now at which to poll feeds an outage cut off, given their
    hosts: each host's feeds evenly apart over `window`, from a random phase per
    host, so no host gets them all at once and the hosts are not in step."""
    count = Counter(hosts)
    phase = {host: rand() for host in count}
    seen: Counter[str] = Counter()
    delays = []
    for host in hosts:
        delays.append(window * (seen[host] + phase[host]) / count[host])
        seen[host] += 1
    return delays


def effective_jitter(jitter: float, interval: float) -> float:
    """The configured jitter, but never more than half the interval."""
    return max(0.0, min(float(jitter), interval / 2))


# -- logging -------------------------------------------------------------------

class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields: dict[str, Any] = getattr(record, "fields", {}) or {}
        text = f"{when} {record.levelname.lower()} {record.getMessage()}"
        if fields:
            text += " " + " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _text_value(value: object) -> str:
    text = "" if value is None else str(value)
    if not text or any(c.isspace() or c in "\"=" for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def configure_logging(log_format: str | None = None, stream: Any = None) -> None:
    """One line per event on stderr: text, or JSON lines with `json` (the default
    when stderr is systemd's journal, `JOURNAL_STREAM` being set)."""
    import os

    if log_format is None:
        log_format = "json" if os.environ.get("JOURNAL_STREAM") else "text"
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JsonFormatter() if log_format == "json" else _TextFormatter())
    root = logging.getLogger("scraper")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
    aps = logging.getLogger("apscheduler")
    aps.handlers[:] = [handler]
    aps.setLevel(logging.WARNING)
    aps.propagate = False


def _event(level: int, message: str, **fields: Any) -> None:
    log.log(level, message, extra={"fields": fields})


# -- the service -----------------------------------------------------------------

@dataclass
class _FeedJob:
    feed: FeedConfig
    base: float
    interval: float  # the adaptive interval
    polling: bool = False


class Service:
    """`scraper run`: construct with settings and a way to reload them, then
    `asyncio.run(service.run())`."""

    def __init__(
        self,
        settings: Settings,
        reload: Callable[[], Settings] | None = None,
        notifier: Notifier | None = None,
        grace: float = 10.0,
        rand: Callable[[], float] | None = None,
        probe: float = OUTAGE_PROBE,
        catch_up: float = CATCH_UP,
        executor: Executor | None = None,
    ) -> None:
        import random

        self.settings = settings
        self._reload = reload
        self.notifier = notifier or Notifier()
        self.grace = grace
        self._rand = rand or random.random
        self.probe = probe
        self.catch_up = catch_up
        self.executor = executor  # parse/extract workers (`workers.worker_processes`)
        # feeds that lost their connection since the last successful poll
        self._cut_off: dict[str, FeedSummary] = {}
        self._back_at = -math.inf  # monotonic time the network last came back
        self.jobs: dict[str, _FeedJob] = {}
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self._stopping = False
        self._old_fetchers: list[Fetcher] = []
        self.store: Store | None = None
        self.fetcher: Fetcher | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.exporter: Exporter | None = None
        self.polls = 0

    # -- lifecycle ---------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.store = Store(self.settings.archive.database)
        self.fetcher = Fetcher(self.settings.http)
        self.exporter = self._exporter(self.settings)
        self.scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC, job_defaults={
            "max_instances": 1, "coalesce": True, "misfire_grace_time": None,
        })
        self._apply(self.settings, starting=True)
        self.scheduler.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop, sig.name)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        watchdog = asyncio.create_task(self._watchdog())
        self.notifier.notify("READY=1", f"STATUS={self._status_text()}")
        _event(logging.INFO, "started", config=self.settings.path,
               database=self.settings.archive.database, feeds=len(self.jobs))
        self._resume_outage()
        try:
            await self._stop.wait()
        finally:
            self.notifier.notify("STOPPING=1")
            await self._shutdown()
            watchdog.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self.notifier.close()
        return 0

    def stop(self, why: str = "stop") -> None:
        if not self._stopping:
            self._stopping = True
            _event(logging.INFO, "stopping", signal=why, in_flight=len(self._inflight))
        self._stop.set()

    async def _shutdown(self) -> None:
        assert self.scheduler is not None and self.store is not None
        self._stopping = True
        self.scheduler.pause()  # no new polls
        pending = {t for t in self._inflight if not t.done()}
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=self.grace)
        if pending:
            _event(logging.WARNING, "cancelling polls still running", count=len(pending),
                   grace=self.grace)
        self.scheduler.shutdown(wait=False)  # cancels what is still running
        if pending:
            await asyncio.wait(pending, timeout=5)
        for fetcher in [self.fetcher, *self._old_fetchers]:
            if fetcher is not None:
                await fetcher.aclose()
        self.store.close()
        _event(logging.INFO, "stopped", polls=self.polls)

    def reload(self) -> None:
        """SIGHUP: read the config again and apply it; keep the old one on error."""
        if self._reload is None or self._stopping:
            return
        self.notifier.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            settings = self._reload()
        except ConfigError as exc:
            _event(logging.ERROR, "reload failed, keeping the running config", error=str(exc))
        else:
            if settings.archive.database != self.settings.archive.database:
                _event(logging.WARNING, "archive.database changed: takes effect on restart",
                       database=settings.archive.database)
                settings = settings.with_database(self.settings.archive.database)
            self._apply(settings, starting=False)
        self.notifier.notify("READY=1", f"STATUS={self._status_text()}")

    def _apply(self, settings: Settings, starting: bool) -> None:
        """Make the jobs match `settings`' enabled feeds."""
        assert self.scheduler is not None and self.store is not None
        old = self.settings
        self.settings = settings
        if not starting and settings.http != old.http:
            if self.fetcher is not None:
                self._old_fetchers.append(self.fetcher)  # polls in flight still use it
            self.fetcher = Fetcher(settings.http)
        if not starting and settings.archive.export_dir != old.archive.export_dir:
            self.exporter = self._exporter(settings)
        wanted = {f.url: f for f in settings.feeds if f.enabled}
        self.store.sync_feeds(wanted.values())
        remembered = self.store.schedules() if starting else {}
        now = datetime.now(UTC)
        added, removed, changed = 0, 0, 0
        for url in list(self.jobs):
            if url not in wanted:
                del self.jobs[url]
                if self.scheduler.get_job(url) is not None:
                    self.scheduler.remove_job(url)
                self.store.set_schedule(url, None, 0)
                removed += 1
        for url, feed in wanted.items():
            base = float(feed.interval or settings.schedule.interval)
            job = self.jobs.get(url)
            if job is not None:
                if job.feed != feed or job.base != base:
                    changed += 1
                    rebase = job.base != base
                    job.feed, job.base = feed, base
                    if rebase:
                        job.interval = base
                        self._schedule(url, now + timedelta(
                            seconds=first_delay(base, self._rand())))
                continue
            next_poll, interval = remembered.get(url, (None, None))
            b = bounds(base)
            current = float(interval) if interval and b.floor <= interval <= b.ceiling else base
            self.jobs[url] = _FeedJob(feed=feed, base=base, interval=current)
            if next_poll is None or next_poll <= now or next_poll > now + timedelta(
                    seconds=b.backoff):
                next_poll = now + timedelta(seconds=first_delay(base, self._rand()))
            self._schedule(url, next_poll)
            added += 1
        if not starting:
            _event(logging.INFO, "reloaded", config=settings.path, feeds=len(self.jobs),
                   added=added, removed=removed, changed=changed)
        self._cut_off = {u: s for u, s in self._cut_off.items() if u in self.jobs}
        if not self.jobs:
            _event(logging.WARNING, "no enabled feeds: waiting for a config reload (SIGHUP)",
                   config=settings.path)

    def _schedule(self, url: str, when: datetime) -> datetime | None:
        """(Re)schedule a feed's job to fire at `when`, then every interval."""
        assert self.scheduler is not None and self.store is not None
        job = self.jobs[url]
        trigger = IntervalTrigger(
            seconds=max(MIN_INTERVAL, job.interval), start_date=when, timezone=UTC,
            jitter=effective_jitter(self.settings.schedule.jitter, job.interval) or None,
        )
        existing = self.scheduler.get_job(url)
        if existing is None:
            aps_job = self.scheduler.add_job(
                self._poll, trigger, args=[url], id=url, name=url,
                next_run_time=when,
            )
        else:
            aps_job = existing.modify(next_run_time=when, trigger=trigger)
        fire = getattr(aps_job, "next_run_time", None) or when
        self.store.set_schedule(url, fire, job.interval)
        return fire

    def _hold(self, url: str, job: _FeedJob) -> None:
        """While a poll runs, move the job's next run past the longest the poll can
        take, so the trigger does not fire (and get skipped) meanwhile; the poll
        reschedules the job when it is done."""
        assert self.scheduler is not None
        http = self.settings.http
        longest = http.timeout * (http.retries + 1) + 30.0 * http.retries + 60.0
        with contextlib.suppress(JobLookupError):
            self.scheduler.modify_job(url, next_run_time=datetime.now(UTC) + timedelta(
                seconds=max(longest, job.interval)))

    @staticmethod
    def _exporter(settings: Settings) -> Exporter | None:
        export_dir = settings.archive.export_dir
        return Exporter(Path(export_dir)) if export_dir else None

    # -- one poll -----------------------------------------------------------
    async def _poll(self, url: str) -> None:
        job = self.jobs.get(url)
        if job is None or self._stopping:
            return
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        started = time.monotonic()
        self._hold(url, job)
        job.polling = True
        try:
            await self._poll_once(url, job, started)
        except asyncio.CancelledError:
            _event(logging.WARNING, "poll cancelled", feed=url)
            raise
        except Exception as exc:  # a bug in one poll must not stop the service
            log.exception("poll failed: %s", url, extra={"fields": {"feed": url,
                                                                      "error": repr(exc)}})
            if not self._stopping and url in self.jobs:
                self._schedule(url, datetime.now(UTC) + timedelta(seconds=job.base))
        finally:
            job.polling = False
            if task is not None:
                self._inflight.discard(task)

    async def _poll_once(self, url: str, job: _FeedJob, started: float) -> None:
        assert self.store is not None and self.fetcher is not None
        outcome = await poll_stored_feed(self.fetcher, job.feed, self.store, self.executor)
        summary = self.store.save(outcome)  # the single writer, in the loop thread
        self.polls += 1
        exported = 0
        if self.exporter is not None and summary.written_ids:
            try:
                exported = write_articles(self.store, self.exporter, summary.written_ids).written
            except OSError as exc:
                _event(logging.ERROR, "export failed", feed=url, error=str(exc))
        error_count = self.store.feed_state(url).error_count
        interval, delay = next_delay(
            job.base, job.interval, ok=outcome.ok, changed=summary.new + summary.updated,
            error_count=error_count, ttl=outcome.ttl, max_age=outcome.max_age,
            retry_after=outcome.retry_after,
        )
        job.interval = interval
        if summary.status in NETWORK_FAILURES and started < self._back_at:
            # it failed while down, the network is back: retry soon (once this poll is over)
            delay = max(MIN_INTERVAL, self.catch_up * self._rand())
        delay += effective_jitter(self.settings.schedule.jitter, interval) * self._rand()
        fire = None
        if not self._stopping and self.jobs.get(url) is job:
            fire = self._schedule(url, datetime.now(UTC) + timedelta(seconds=delay))
            self._watch_network(url, summary, error_count)
        self._log_poll(summary, time.monotonic() - started, fire, delay, error_count, exported)

    def _log_poll(self, s: FeedSummary, duration: float, fire: datetime | None,
                  delay: float, error_count: int, exported: int) -> None:
        fields: dict[str, Any] = {
            "feed": s.url, "status": s.status, "new": s.new, "updated": s.updated,
            "unchanged": s.unchanged, "duration": round(duration, 3),
            "next_poll": fire.strftime("%Y-%m-%dT%H:%M:%SZ") if fire else "",
            "next_in": round(delay, 1),
        }
        if exported:
            fields["exported"] = exported
        if s.error:
            fields.update(error=s.error, errors=error_count)
        _event(logging.WARNING if s.error else logging.INFO, "poll", **fields)

    # -- outages (see the module docstring) ---------------------------------------
    def _watch_network(self, url: str, summary: FeedSummary, error_count: int) -> None:
        """After a poll: notice an outage, probe while it lasts, catch up when it ends."""
        if summary.ok:
            if self._outage():
                self._catch_up(url)
            self._cut_off.clear()
        elif summary.status not in NETWORK_FAILURES:
            self._cut_off.pop(url, None)  # its server answered: not the network
        elif error_count == 1 or url in self._cut_off:  # not a feed that was already failing
            was_down = self._outage()
            self._cut_off[url] = summary
            if self._outage():
                if not was_down:
                    self._tell_down()
                self._probe()

    def _outage(self) -> bool:
        return network_down(list(self._cut_off.values()))

    def _due(self, url: str) -> datetime | None:
        """When an idle feed is polled next (None: its poll is running, or it is gone)."""
        assert self.scheduler is not None
        job = self.jobs.get(url)
        aps_job = self.scheduler.get_job(url) if job and not job.polling else None
        return aps_job.next_run_time if aps_job else None

    def _probe(self) -> None:
        """Make sure one cut-off feed, the one due soonest, is polled within the
        probe interval: whatever their backoff, the network's return is noticed."""
        due = {url: when for url in self._cut_off if (when := self._due(url)) is not None}
        if not due:
            return
        url = min(due, key=due.__getitem__)
        when = datetime.now(UTC) + timedelta(seconds=min(self.probe, self.jobs[url].base))
        if due[url] > when:
            self._schedule(url, when)

    def _catch_up(self, reached: str) -> None:
        """The network is back: poll the cut-off feeds within `catch_up` seconds,
        spread per host, none later than it was due anyway (those polling now are
        seen to when their poll ends)."""
        self._back_at = time.monotonic()
        due = {url: when for url in sorted(self._cut_off)
               if url != reached and (when := self._due(url)) is not None}
        hosts = [host_of(self.jobs[url].feed.url) for url in due]
        now = datetime.now(UTC)
        for url, delay in zip(due, catch_up_delays(hosts, self.catch_up, self._rand),
                              strict=True):
            when = now + timedelta(seconds=delay)
            if due[url] > when:
                self._schedule(url, when)
        _event(logging.INFO, "network back", feed=reached, catching_up=len(due),
               within=self.catch_up)
        self.notifier.notify(f"STATUS={self._status_text()}")

    def _tell_down(self) -> None:
        _event(logging.WARNING, "network down", feeds=len(self._cut_off))
        self.notifier.notify(f"STATUS={self._status_text()}")

    def _resume_outage(self) -> None:
        """At start: feeds that began failing to connect after the last successful
        poll of any feed were cut off by an outage that may still last."""
        assert self.store is not None
        rows = [r for r in self.store.feed_rows() if r["url"] in self.jobs]
        last_ok = max((r["last_success"] or "" for r in rows), default="")
        self._cut_off = {
            r["url"]: FeedSummary(url=r["url"], status=r["last_status"]) for r in rows
            if r["last_status"] in NETWORK_FAILURES and (r["failing_since"] or "") >= last_ok
        }
        if self._outage():
            self._tell_down()
            self._probe()

    # -- health -------------------------------------------------------------
    async def _watchdog(self) -> None:
        """Ping systemd's watchdog while the event loop is alive (from the loop
        itself, so a stuck loop misses its pings and systemd restarts us)."""
        every = watchdog_interval()
        if every is None or not self.notifier.enabled:
            return
        while True:
            self.notifier.notify("WATCHDOG=1")
            await asyncio.sleep(every)

    def _status_text(self) -> str:
        text = f"polling {len(self.jobs)} feeds"
        if self._outage():
            text += f"; network down: {len(self._cut_off)} feeds cannot connect, probing"
        return text


def describe_delay(seconds: float) -> str:
    """`90` -> `1m30s`, for people reading `scraper status`."""
    seconds = math.ceil(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s" if sec else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"


# -- `scraper status` ------------------------------------------------------------

_OVERDUE = 60.0  # seconds late before a next poll counts as overdue


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def status_report(rows: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """What `scraper status --json` prints: per feed last and next poll, and
    counts (ok, failing, never polled, overdue)."""
    feeds = []
    for row in rows:
        next_poll = _when(row.get("next_poll"))
        state = ("never polled" if not row.get("last_polled") else
                 "failing" if row.get("last_error") else "ok")
        overdue = next_poll is not None and (now - next_poll).total_seconds() > _OVERDUE
        feeds.append({
            "url": row["url"], "source": row.get("source") or "",
            "channel": row.get("channel") or "", "state": state,
            "last_polled": row.get("last_polled") or "",
            "last_status": row.get("last_status") or "",
            "last_error": row.get("last_error") or "",
            "error_count": row.get("error_count") or 0,
            "failing_since": row.get("failing_since") or "",
            "next_poll": row.get("next_poll") or "",
            "poll_interval": row.get("poll_interval") or None,
            "overdue": overdue, "articles": row.get("articles") or 0,
        })
    polled = [f["last_polled"] for f in feeds if f["last_polled"]]
    upcoming = sorted(f["next_poll"] for f in feeds if f["next_poll"])
    return {
        "now": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "feeds": feeds,
        "total": len(feeds),
        "ok": sum(f["state"] == "ok" for f in feeds),
        "failing": sum(f["state"] == "failing" for f in feeds),
        "never_polled": sum(f["state"] == "never polled" for f in feeds),
        "overdue": sum(f["overdue"] for f in feeds),
        "last_poll": max(polled) if polled else "",
        "next_poll": upcoming[0] if upcoming else "",
    }


def status_lines(report: dict[str, Any]) -> list[str]:
    """`scraper status` for people: a summary, failing feeds first, then the rest."""
    now = _when(report["now"]) or datetime.now(UTC)
    lines = [
        f"{report['total']} feeds: {report['ok']} ok, {report['failing']} failing, "
        f"{report['never_polled']} never polled; last poll {report['last_poll'] or '-'}, "
        f"next poll {_relative(report['next_poll'], now)}"
    ]
    if report["overdue"]:
        lines.append(f"{report['overdue']} feeds are overdue for their next poll: "
                     "is `scraper run` running?")
    if report["total"] and not report["next_poll"]:
        lines.append("no poll scheduled: `scraper run` has not run with this database")
    order = {"failing": 0, "never polled": 1, "ok": 2}
    for f in sorted(report["feeds"], key=lambda f: (order[f["state"]], f["url"])):
        state = f["state"] if f["state"] != "ok" else f"ok ({f['last_status']})"
        if f["state"] == "failing":
            state = (f"FAILING x{f['error_count']} since {f['failing_since']} "
                     f"({f['last_status']}): {f['last_error']}")
        every = f" every ~{describe_delay(f['poll_interval'])}" if f["poll_interval"] else ""
        lines.append(
            f"{f['url']}\n    {f['source'] or '-'} / {f['channel'] or '-'}: {state}; "
            f"{f['articles']} articles; last poll {f['last_polled'] or '-'}, "
            f"next {_relative(f['next_poll'], now)}{every}"
            + (" OVERDUE" if f["overdue"] else "")
        )
    return lines


def _relative(text: str, now: datetime) -> str:
    when = _when(text)
    if when is None:
        return "-"
    seconds = (when - now).total_seconds()
    if seconds >= 0:
        return f"{text} (in {describe_delay(seconds)})"
    return f"{text} ({describe_delay(-seconds)} ago)"
