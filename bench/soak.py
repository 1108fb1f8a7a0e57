#!/usr/bin/env python3
"""Soak benchmark for `scraper run`: does the daemon's memory stay flat?

Serves N feeds (default 1,000) on 127.0.0.1 from a small asyncio HTTP server
(ETag / 304 like real publishers; each feed publishes a new item every few
seconds and keeps its latest 20), starts the daemon through the real CLI
(`python -m scraper run`) with a short interval, and counts poll cycles by
the server's requests (one cycle = N feed requests). At each cycle it reads
the daemon's resident memory (VmRSS in /proc/PID/status) and prints it; at
the end, the growth from cycle 5 to the last. It stops by itself: after
`--cycles` cycles or `--max-seconds`, whichever comes first, with SIGTERM
(and checks the daemon exits 0).

    .venv/bin/python bench/soak.py                # 1,000 feeds, 5 s, 20 cycles
    .venv/bin/python bench/soak.py --feeds 200 --interval 2 --cycles 30

Exit status: 0 when the growth from cycle 5 is under `--max-growth` percent
(default 5) and the daemon stopped cleanly, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from email.utils import formatdate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class FeedServer:
    """N RSS feeds at /feed/<i>; feed i publishes an item every `every` seconds."""

    def __init__(self, feeds: int, every: float) -> None:
        self.feeds = feeds
        self.every = every
        self.started = time.time()
        self.requests = 0
        self.not_modified = 0
        self.errors = 0
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, backlog=1024))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def _generation(self, i: int) -> int:
        # feeds publish out of step with each other
        return int((time.time() - self.started + (i % 97) * self.every / 97) / self.every)

    def _feed(self, i: int, generation: int) -> bytes:
        items = []
        for g in range(max(0, generation - 19), generation + 1):
            when = formatdate(self.started + g * self.every, usegmt=True)
            items.append(
                f"<item><title>Feed {i} story {g}: rates, bonds and earnings</title>"
                f"<link>https://news.example.com/{i}/{g}</link><guid>f{i}-{g}</guid>"
                f"<pubDate>{when}</pubDate><description>&lt;p&gt;Story {g} of feed {i}. "
                f"{'Markets moved on the central bank decision. ' * 8}&lt;/p&gt;"
                f"&lt;img src=\"/img/{i}/{g}.jpg\"&gt;</description></item>")
        return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>Feed {i}</title><link>https://news.example.com/{i}</link>"
                f"<description>soak</description>{''.join(items)}</channel></rss>").encode()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:] if line)}
                self.requests += 1
                try:
                    i = int(path.rsplit("/", 1)[1])
                except ValueError:
                    i = -1
                if not path.startswith("/feed/") or not 0 <= i < self.feeds:
                    self.errors += 1
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                generation = self._generation(i)
                etag = f'"{i}-{generation}"'
                if headers.get("if-none-match") == etag:
                    self.not_modified += 1
                    writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n"
                                 "Content-Length: 0\r\n\r\n".encode())
                else:
                    body = self._feed(i, generation)
                    writer.write(
                        f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8"
                        f"\r\nETag: {etag}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                        + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def write_config(path: Path, server: FeedServer, interval: int) -> None:
    lines = [
        "[http]", "timeout = 10", "retries = 0", "concurrency = 64", "per_host = 64",
        "[schedule]", f'interval = "{interval}s"', 'jitter = "1s"',
    ]
    for i in range(server.feeds):
        # full_text = "never": the soak measures the poll loop; its links name a
        # host that does not exist, and concurrent lookups of it can stall in
        # the resolver for seconds (5 s here), which would measure the resolver
        lines += ["[[feeds]]", f'url = "http://127.0.0.1:{server.port}/feed/{i}"',
                  'category = "Soak"', f'source = "Source {i % 50}"', f'channel = "Channel {i}"',
                  'full_text = "never"']
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--interval", type=int, default=5, help="poll interval, seconds")
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--publish-every", type=float, default=None,
                    help="seconds between a feed's new items (default: 3x interval)")
    ap.add_argument("--max-seconds", type=float, default=600)
    ap.add_argument("--max-growth", type=float, default=5.0, help="percent, cycle 5 to last")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    server = FeedServer(args.feeds, args.publish_every or 3.0 * args.interval)
    server.start()
    work = Path(tempfile.mkdtemp(prefix="scraper-soak-"))
    config, db, log_path = work / "soak.toml", work / "soak.db", work / "daemon.log"
    write_config(config, server, args.interval)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SCRAPER_", "NOTIFY_SOCKET", "WATCHDOG", "JOURNAL_STREAM"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    print(f"soak: {args.feeds} feeds on 127.0.0.1:{server.port}, interval {args.interval}s, "
          f"{args.cycles} cycles, work dir {work}", flush=True)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scraper", "run", "--config", str(config), "--db", str(db),
             "--log-format", "json"],
            cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    started = time.monotonic()
    samples: list[tuple[int, float, int, int]] = []  # cycle, seconds, requests, RSS KiB
    print(f"{'cycle':>5} {'time':>7} {'requests':>9} {'304s':>7} {'VmRSS':>10}", flush=True)
    ok = True
    try:
        cycle = 0
        while cycle < args.cycles:
            if proc.poll() is not None:
                print(f"soak: the daemon exited early with {proc.returncode}; see {log_path}")
                ok = False
                break
            if time.monotonic() - started > args.max_seconds:
                print(f"soak: stopped after {args.max_seconds:.0f}s at cycle {cycle}")
                break
            if server.requests >= (cycle + 1) * args.feeds:
                cycle += 1
                rss = rss_kib(proc.pid)
                elapsed = time.monotonic() - started
                samples.append((cycle, elapsed, server.requests, rss))
                print(f"{cycle:>5} {elapsed:>6.1f}s {server.requests:>9} "
                      f"{server.not_modified:>7} {rss / 1024:>7.1f} MiB", flush=True)
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        server.stop()
    polls = errors = 0
    for line in log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "poll":
            polls += 1
            errors += bool(entry.get("error"))
    print(f"soak: daemon exit status {code} after SIGTERM; {polls} polls logged, "
          f"{errors} failed; {server.requests} requests, {server.not_modified} answered 304; "
          f"database {db.stat().st_size / 1e6:.1f} MB")
    if code != 0:
        ok = False
    if len(samples) >= 6:
        base = next(s for s in samples if s[0] == 5)[3]
        last = samples[-1][3]
        growth = (last - base) / base * 100
        print(f"soak: VmRSS cycle 5 {base / 1024:.1f} MiB -> cycle {samples[-1][0]} "
              f"{last / 1024:.1f} MiB: growth {growth:+.1f}% (limit {args.max_growth}%)")
        ok = ok and growth < args.max_growth
    else:
        print("soak: fewer than 6 cycles: no growth figure")
        ok = False
    if not args.keep:
        for path in sorted(work.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        work.rmdir()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
