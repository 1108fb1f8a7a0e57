"""`scraper run`, the service: interval arithmetic, sd_notify, status, and the
real daemon in a subprocess against feeds served on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, run_cli

from scraper.config import Settings, load_config
from scraper.notify import Notifier, watchdog_interval
from scraper.service import (
    Service,
    bounds,
    catch_up_delays,
    describe_delay,
    effective_jitter,
    first_delay,
    next_delay,
    status_lines,
    status_report,
)

# -- interval arithmetic ---------------------------------------------------------


def test_bounds_floor_ceiling_backoff() -> None:
    b = bounds(900)
    assert (b.floor, b.ceiling, b.backoff) == (225, 3600, 6 * 3600)
    tiny = bounds(1)
    assert tiny.floor == 1 and tiny.ceiling == 4 and tiny.backoff == 64
    huge = bounds(12 * 3600)
    assert huge.ceiling == 86400 and huge.backoff == 86400


def test_publishing_feeds_speed_up_quiet_ones_slow_down_within_bounds() -> None:
    interval = 600.0
    for _ in range(20):
        interval, delay = next_delay(600, interval, ok=True, changed=3)
        assert delay == interval
    assert interval == 150  # the floor: a quarter of the configured interval
    for _ in range(30):
        interval, delay = next_delay(600, interval, ok=True, changed=0)
    assert interval == 2400  # the ceiling: four times it
    assert next_delay(600, None, ok=True, changed=1)[0] == 450
    assert next_delay(600, None, ok=True)[0] == 750


def test_server_hints_are_honoured_up_to_the_ceiling() -> None:
    interval, delay = next_delay(600, 600, ok=True, changed=1, ttl=30)
    assert interval == 450 and delay == 1800  # <ttl>30</ttl>: 30 minutes
    _, delay = next_delay(600, 600, ok=True, ttl=24 * 60)
    assert delay == 2400  # a day's ttl is capped at the ceiling
    _, delay = next_delay(600, 600, ok=True, max_age=1200)
    assert delay == 1200
    _, delay = next_delay(600, 600, ok=True, max_age=10)
    assert delay == 750  # a short max-age never makes us poll faster
    _, delay = next_delay(600, 600, ok=True, retry_after=7200)
    assert delay == 7200  # Retry-After is honoured beyond the ceiling...
    _, delay = next_delay(600, 600, ok=False, error_count=1, retry_after=10 * 86400)
    assert delay == 86400  # ...but never parks a feed longer than a day


def test_failing_feeds_back_off_exponentially_but_are_never_parked() -> None:
    delays = [next_delay(60, 60, ok=False, error_count=n)[1] for n in range(1, 12)]
    assert delays[:5] == [120, 240, 480, 960, 1920]
    assert delays[-1] == 3840 == max(delays)  # 64x the interval
    assert next_delay(900, 900, ok=False, error_count=50)[1] == 6 * 3600
    # the adaptive interval is kept for when the feed recovers
    assert next_delay(60, 30, ok=False, error_count=3)[0] == 30
    assert next_delay(60, 30, ok=True, changed=0)[1] == 37.5


def test_first_polls_are_spread_and_jitter_is_bounded() -> None:
    assert first_delay(900, 0.0) == 0 and first_delay(900, 0.5) == 450
    starts = [first_delay(900, i / 1000) for i in range(1000)]
    assert max(starts) < 900 and len({int(s) for s in starts}) == 900
    assert effective_jitter(60, 900) == 60
    assert effective_jitter(60, 2) == 1
    assert effective_jitter(0, 2) == 0


def test_describe_delay() -> None:
    assert [describe_delay(s) for s in (0.2, 59, 60, 90, 3600, 5400)] == [
        "1s", "59s", "1m", "1m30s", "1h", "1h30m"]


# -- sd_notify -------------------------------------------------------------------


def test_notifier_sends_to_path_and_abstract_sockets() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        path = os.path.join(tmp, "n.sock")
        for address, bind in ((path, path), (f"@sc-{uuid.uuid4().hex}", None)):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(bind or "\0" + address[1:])
            sock.settimeout(2)
            n = Notifier(address)
            assert n.enabled and n.notify("READY=1", "STATUS=ok")
            assert sock.recv(4096) == b"READY=1\nSTATUS=ok"
            n.close()
            sock.close()
    assert not Notifier("").enabled and not Notifier("").notify("READY=1")
    assert not Notifier("relative").enabled


def test_watchdog_interval() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000",
                              "WATCHDOG_PID": str(os.getpid())}) == 15
    assert watchdog_interval({}) is None


def test_status_report_counts_failing_and_overdue() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    rows = [
        {"url": "http://a/", "last_polled": "2026-01-01T11:59:00Z", "last_status": "200",
         "last_error": "", "next_poll": "2026-01-01T12:05:00Z", "poll_interval": 600},
        {"url": "http://b/", "last_polled": "2026-01-01T11:00:00Z", "last_status": "timeout",
         "last_error": "timed out", "error_count": 3, "failing_since": "2026-01-01T10:00:00Z",
         "next_poll": "2026-01-01T11:30:00Z"},
        {"url": "http://c/"},
    ]
    report = status_report(rows, now)
    assert (report["ok"], report["failing"], report["never_polled"], report["overdue"]) == (
        1, 1, 1, 1)
    assert report["next_poll"] == "2026-01-01T11:30:00Z"
    text = "\n".join(status_lines(report))
    assert "FAILING x3" in text and "is `scraper run` running?" in text
    assert text.index("http://b/") < text.index("http://a/")  # failing feeds first


# -- the daemon through the real CLI ----------------------------------------------


class FeedServer:
    """Feeds on 127.0.0.1 whose items can change between polls; counts requests.

    `down_for = n` cuts the next n requests off without an answer, as if the
    network were down (counted in `dropped`); `held[feed] = n` makes that feed's
    cut-off request wait until n requests have got through (`started`)."""

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}
        self.delay: dict[str, float] = {}
        self.hits: dict[str, int] = {}
        self.started: dict[str, int] = {}
        self.down_for = 0
        self.dropped: dict[str, int] = {}
        self.held: dict[str, int] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.strip("/")
                if server.cut_off(name):
                    self.close_connection = True
                    return
                with server.lock:
                    server.started[name] = server.started.get(name, 0) + 1
                    server.changed.notify_all()
                    items = list(server.items.get(name, ()))
                    known = name in server.items
                time.sleep(server.delay.get(name, 0))
                body = server.render(name, items).encode() if known else b"no such feed"
                self.send_response(200 if known else 404)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with server.lock:
                    server.hits[name] = server.hits.get(name, 0) + 1

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def render(name: str, items: list[str]) -> str:
        base = datetime(2026, 1, 1, tzinfo=UTC)
        entries = "".join(
            f"<item><title>{title}</title><link>https://example.com/{name}/{i}</link>"
            f"<guid>{name}-{i}</guid><description>&lt;p&gt;{title} body&lt;/p&gt;</description>"
            f"<pubDate>{format_datetime(base + timedelta(hours=i), usegmt=True)}</pubDate></item>"
            for i, title in enumerate(items)
        )
        return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>{name}</title><link>https://example.com/{name}</link>"
                f"<description>test</description>{entries}</channel></rss>")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def cut_off(self, name: str) -> bool:
        """Whether this request goes unanswered (the network is down)."""
        with self.lock:
            if not self.down_for:
                return False
            self.down_for -= 1
            self.dropped[name] = self.dropped.get(name, 0) + 1
            self.changed.wait_for(
                lambda: sum(self.started.values()) >= self.held.get(name, 0), timeout=30)
            return True

    def count(self, name: str) -> int:
        with self.lock:
            return self.hits.get(name, 0)


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def wait_for(condition: Callable[[], Any], timeout: float = 10, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


class Daemon:
    """`python -m scraper run` in a subprocess with a fake NOTIFY_SOCKET."""

    def __init__(self, config: Path, db: Path, cwd: Path, *extra: str) -> None:
        self.notify_name = f"@scraper-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.notify_name[1:])
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._reading = True
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()  # a socket's queue is short: drain it as systemd does
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SCRAPER_", "JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG"))}
        env.update(NOTIFY_SOCKET=self.notify_name, WATCHDOG_USEC="1000000")
        self.stderr_path = cwd / "daemon.log"
        self.stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scraper", "run", "--config", str(config), "--db", str(db),
             *extra],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )

    def _read(self) -> None:
        while self._reading:
            try:
                self.messages.extend(self.sock.recv(4096).decode().split("\n"))
            except TimeoutError:
                continue
            except OSError:
                return

    def received(self, message: str) -> bool:
        return message in self.messages

    def log(self) -> str:
        return self.stderr_path.read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()
        self._reading = False
        self.reader.join(timeout=2)
        self.sock.close()


def _rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        conn.close()


def test_run_polls_archives_reloads_and_stops_cleanly(tmp_path: Path, feeds: FeedServer) -> None:
    feeds.items.update(a=["A zero"], b=["B zero"], c=["C zero"])
    export_dir = tmp_path / "posts"
    db = tmp_path / "archive.db"

    def config(*names: str, broken: bool = False) -> None:
        make_config(tmp_path / "scraper.toml",
                    [{"url": feeds.url(n), "category": "Test", "source": n.upper(),
                      "channel": f"{n}-channel"} for n in names],
                    archive={"export_dir": str(export_dir)},
                    schedule={"interval": "1s", "jitter": "0s"})
        if broken:
            with (tmp_path / "scraper.toml").open("a") as fh:
                fh.write("[schedule]\ninterval = 'soon'\n")

    config("a", "b")
    daemon = Daemon(tmp_path / "scraper.toml", db, tmp_path, "--log-format", "json")
    try:
        wait_for(lambda: daemon.received("READY=1"), what="READY=1")
        # each feed is polled repeatedly, never blocked by the other
        wait_for(lambda: feeds.count("a") >= 3 and feeds.count("b") >= 3, what="3 polls each")
        assert daemon.received("WATCHDOG=1")  # WATCHDOG_USEC=1s: a ping every 0.5 s

        # an item added between polls is archived, and exported as it arrives
        with feeds.lock:
            feeds.items["a"].append("A one")
        wait_for(lambda: _rows(db, "SELECT id FROM articles WHERE title = 'A one'"),
                 what="the new item archived")
        wait_for(lambda: list(export_dir.rglob("A-one-*.md")), what="the new item exported")
        assert (export_dir / "Test" / "A" / "a-channel").is_dir()

        # SIGHUP adds a feed (and removes one)
        config("a", "c")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: feeds.count("c") >= 2, what="the added feed polled")
        wait_for(lambda: _rows(db, "SELECT id FROM articles WHERE title = 'C zero'"),
                 what="the added feed archived")
        b_after = feeds.count("b")
        time.sleep(2.5)
        assert feeds.count("b") <= b_after + 1  # removed: at most one poll was in flight

        # a config that fails to load is reported and the old one kept
        config("a", broken=True)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in daemon.log(), what="the reload error logged")
        c_before = feeds.count("c")
        wait_for(lambda: feeds.count("c") > c_before, what="feed c still polled")

        # SIGTERM: exit 0 within 10 s, STOPPING=1, database intact
        stop = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(timeout=10) == 0
        assert time.monotonic() - stop < 10
        assert wait_for(lambda: daemon.received("STOPPING=1"), timeout=2, what="STOPPING=1")
        assert daemon.messages.index("READY=1") < daemon.messages.index("STOPPING=1")
    finally:
        daemon.close()

    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    titles = {t for (t,) in _rows(db, "SELECT title FROM articles")}
    assert titles == {"A zero", "A one", "B zero", "C zero"}  # each stored once

    # one JSON line per poll: feed, status, new, updated, duration, next poll
    lines = [json.loads(line) for line in daemon.log().splitlines()]
    polls = [entry for entry in lines if entry["message"] == "poll"]
    assert len(polls) >= 8
    assert {"feed", "status", "new", "updated", "duration", "next_poll"} <= set(polls[0])
    assert any(p["feed"] == feeds.url("a") and p["new"] == 1 for p in polls[3:])
    assert [e["message"] for e in lines if e["message"] in ("started", "stopped")] == [
        "started", "stopped"]

    # `scraper status` and `scraper feeds` show last and next poll
    config("a", "c")
    result = run_cli("status", "--config", str(tmp_path / "scraper.toml"), "--db", str(db),
                     "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = result.json()
    assert report["total"] == 2 and report["ok"] == 2 and report["failing"] == 0
    assert all(f["last_polled"] and f["next_poll"] for f in report["feeds"])
    text = run_cli("status", "--config", str(tmp_path / "scraper.toml"), "--db", str(db),
                   cwd=tmp_path)
    assert text.returncode == 0 and "2 feeds: 2 ok, 0 failing" in text.stdout
    rows = run_cli("feeds", "--config", str(tmp_path / "scraper.toml"), "--db", str(db),
                   "--json", cwd=tmp_path).json()
    assert all(r["next_poll"] and r["last_polled"] for r in rows)


def test_sigint_lets_a_poll_in_flight_finish_and_commits_it(
    tmp_path: Path, feeds: FeedServer
) -> None:
    feeds.items.update(slow=["Slow news"], gone=[])
    del feeds.items["gone"]  # 404: a failing feed backs off, and is shown as failing
    feeds.delay["slow"] = 2.0
    config = make_config(tmp_path / "c.toml",
                         [{"url": feeds.url("slow"), "source": "Slow"},
                          {"url": feeds.url("gone"), "source": "Gone"}],
                         schedule={"interval": "1s", "jitter": "0s"})
    db = tmp_path / "a.db"
    daemon = Daemon(config, db, tmp_path)
    try:
        wait_for(lambda: daemon.received("READY=1"), what="READY=1")
        wait_for(lambda: feeds.started.get("slow"), what="the slow poll to start")
        daemon.proc.send_signal(signal.SIGINT)
        assert daemon.proc.wait(timeout=10) == 0
        assert daemon.received("STOPPING=1")
    finally:
        daemon.close()
    log = daemon.log()
    assert "status=200" in log and "new=1" in log, log  # text log lines by default
    assert _rows(db, "SELECT title FROM articles") == [("Slow news",)]
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    result = run_cli("status", "--config", str(config), "--db", str(db), cwd=tmp_path)
    assert "FAILING" in result.stdout or feeds.started.get("gone") is None, result.stdout


def test_run_with_a_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[schedule]\ninterval = 'often'\n")
    result = run_cli("run", "--config", str(bad), "--db", str(tmp_path / "a.db"),
                     cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert "schedule.interval" in result.stderr
    assert not (tmp_path / "a.db").exists()


def test_a_thousand_feeds_start_spread_and_a_restart_keeps_their_schedule(
    tmp_path: Path,
) -> None:
    import asyncio
    from collections import Counter

    from scraper.config import load_config
    from scraper.service import Service

    config = make_config(tmp_path / "c.toml",
                         [{"url": f"http://127.0.0.1:9/feed/{i}"} for i in range(1000)],
                         archive={"database": str(tmp_path / "a.db")},
                         schedule={"interval": "15m", "jitter": "1m"})
    settings = load_config(config)

    async def start_and_stop() -> dict[str, str]:
        service = Service(settings)
        task = asyncio.create_task(service.run())
        await asyncio.sleep(0.3)
        service.stop()
        assert await asyncio.wait_for(task, 10) == 0
        conn = sqlite3.connect(tmp_path / "a.db")
        rows = dict(conn.execute("SELECT url, next_poll FROM feeds").fetchall())
        conn.close()
        return rows

    first = asyncio.run(start_and_stop())
    assert len(first) == 1000 and all(first.values())
    when = sorted(datetime.fromisoformat(v.replace("Z", "+00:00")) for v in first.values())
    assert (when[-1] - when[0]).total_seconds() > 800  # spread over the first 15 minutes
    assert max(Counter(when).values()) <= 10  # not all in the same second
    second = asyncio.run(start_and_stop())
    kept = sum(first[url] == second[url] for url in first)
    assert kept >= 990  # polls still ahead keep their time across a restart


# -- network outages --------------------------------------------------------------


def test_catch_up_is_spread_per_host() -> None:
    hosts = ["rsshub.app", "rsshub.app", "www.ecb.europa.eu", "rsshub.app"]
    assert catch_up_delays(hosts, 60, lambda: 0.5) == [10, 30, 30, 50]
    delays = catch_up_delays(["h"] * 4, 60, lambda: 0.0)
    assert delays == [0, 15, 30, 45]  # a quarter of the window apart, all within it


def _hourly(tmp_path: Path, feeds: FeedServer, names: list[str]) -> Settings:
    """Feeds polled hourly: after one failed poll their backoff is 2 h or more,
    so a feed polled again during a test was brought forward."""
    config = make_config(tmp_path / "c.toml",
                         [{"url": feeds.url(n), "source": n, "full_text": "never"}
                          for n in names],
                         archive={"database": str(tmp_path / "a.db")},
                         schedule={"interval": "1h", "jitter": "0s"}, http={"timeout": 20})
    return load_config(config)


async def _serve(settings: Settings, until: Callable[[], Any], **options: Any) -> None:
    """Run the service in this event loop until `until()` (or a 30 s hang guard),
    then stop it. First polls at once (rand 0); catch-up within 0.3 s."""
    service = Service(settings, rand=lambda: 0.0, catch_up=0.3, **options)
    task = asyncio.create_task(service.run())
    for _ in range(600):
        if until() or task.done():
            break
        await asyncio.sleep(0.05)
    service.stop()
    assert await asyncio.wait_for(task, 15) == 0
    assert until(), "the service stopped waiting for this"


def _archived(db: Path) -> set[str]:
    return {t for (t,) in _rows(db, "SELECT title FROM articles")} if db.exists() else set()


def test_after_a_network_outage_every_feed_catches_up_at_once(
    tmp_path: Path, feeds: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    names = ["a", "b", "c", "d", "e"]
    feeds.items.update({n: [f"{n} news"] for n in names})
    # the network is down for the first poll of each feed and four probes; e's
    # first poll hangs until the network is back, then fails
    feeds.down_for = 9
    feeds.held["e"] = 2
    db = tmp_path / "a.db"
    caplog.set_level(logging.INFO, "scraper.service")
    asyncio.run(_serve(_hourly(tmp_path, feeds, names),
                       lambda: len(_archived(db)) == len(names), probe=0.2))
    # while down, one feed at a time was probed, taking turns: nothing hammered
    assert feeds.dropped == {"a": 2, "b": 2, "c": 2, "d": 2, "e": 1}
    # once back, every feed was polled once, hours before its backoff was over
    assert feeds.started == dict.fromkeys(names, 1)
    assert _rows(db, "SELECT count(*) FROM feeds WHERE error_count = 0") == [(len(names),)]
    events = [r.getMessage() for r in caplog.records]
    assert events.count("network down") == 1 and events.count("network back") == 1
    back = next(r for r in caplog.records if r.getMessage() == "network back")
    assert back.fields["catching_up"] == 3  # type: ignore[attr-defined]


def test_a_daemon_restarted_during_an_outage_catches_up_when_it_is_back(
    tmp_path: Path, feeds: FeedServer
) -> None:
    names = ["a", "b", "c"]
    feeds.items.update({n: [f"{n} news"] for n in names})
    feeds.down_for = 3  # each feed's first poll; no probe within the hour
    settings = _hourly(tmp_path, feeds, names)
    asyncio.run(_serve(settings, lambda: sum(feeds.dropped.values()) == 3, probe=3600))
    assert not feeds.started
    db = tmp_path / "a.db"
    asyncio.run(_serve(settings, lambda: len(_archived(db)) == len(names), probe=0.2))
    assert feeds.started == dict.fromkeys(names, 1)
