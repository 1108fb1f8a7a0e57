"""The `scraper` command line: fetch, export, show, search, feeds.

Options go after the sub-command. Files are chosen by option, then
environment (`SCRAPER_CONFIG`, `SCRAPER_DB`), then the config file. Exit
status: 0 fine, 1 some feeds failed (fetch) or nothing found (show), 2 bad
usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from scraper.config import ConfigError, FeedConfig, Settings, default_config_path, load_config
from scraper.workers import worker_processes

# The network, database and service layers are imported inside the commands,
# after `worker_processes` has forked: the workers then never hold them.
if TYPE_CHECKING:
    from scraper.models import FeedSummary
    from scraper.store import Store

__all__ = ["main"]


class UsageError(Exception):
    """Bad usage, or an archive that cannot be opened: exit status 2 with this message."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        settings = _settings(args)
        return int(args.handler(args, settings))
    except (ConfigError, UsageError) as exc:
        print(f"scraper: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scraper: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `scraper search x | head`
        return 0


# -- arguments ---------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scraper", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: object, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", metavar="PATH", help="config file (env SCRAPER_CONFIG)")
        p.add_argument("--db", metavar="PATH", help="SQLite archive (env SCRAPER_DB)")
        p.set_defaults(handler=handler)
        return p

    p = command("fetch", _cmd_fetch, "poll the (selected) feeds once, then exit")
    p.add_argument("--feed", action="append", default=[], metavar="URL_OR_SOURCE",
                   help="only this feed (its URL, source or channel); repeatable")
    p.add_argument("--export", metavar="DIR", help="also write new or changed records here")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = command("export", _cmd_export, "write records as a Hexo source/_posts tree")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--since", metavar="DATE", help="only articles published on or after DATE")
    p.add_argument("--feed", action="append", default=[], metavar="URL_OR_SOURCE")

    p = command("show", _cmd_show, "print one record in the reference format")
    p.add_argument("article", metavar="ID_OR_URL")

    p = command("search", _cmd_search, "full-text search over titles and bodies")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")

    p = command("feeds", _cmd_feeds, "every feed with its state")
    p.add_argument("--json", action="store_true")

    p = command("run", _cmd_run, "the service: poll every enabled feed on its schedule "
                "until SIGTERM/SIGINT (SIGHUP reloads the config)")
    p.add_argument("--log-format", choices=("text", "json"), default=None,
                   help="log lines on stderr (default: json under systemd's journal, "
                   "else text)")

    p = command("status", _cmd_status, "what the service is doing: last and next poll "
                "per feed, failing feeds")
    p.add_argument("--json", action="store_true")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    config = args.config or os.environ.get("SCRAPER_CONFIG") or str(default_config_path())
    settings = load_config(config)
    database = args.db or os.environ.get("SCRAPER_DB")
    return settings.with_database(database) if database else settings


def _select(settings: Settings, selectors: list[str]) -> list[FeedConfig]:
    if not selectors:
        return [f for f in settings.feeds if f.enabled]
    chosen = []
    for selector in selectors:
        found = [f for f in settings.feeds if f.matches(selector)]
        if not found:
            raise UsageError(f"--feed {selector!r}: no configured feed has this URL, "
                             f"source or channel (see `scraper feeds`)")
        chosen.extend(f for f in found if f not in chosen)
    return chosen


def _open(settings: Settings) -> Store:
    from scraper.store import Store, StoreError

    try:
        return Store(settings.archive.database)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


# -- commands ----------------------------------------------------------------

def _cmd_fetch(args: argparse.Namespace, settings: Settings) -> int:
    feeds = _select(settings, args.feed)
    if args.export:
        settings = settings.with_export_dir(args.export)
    if not feeds:
        raise UsageError(f"{settings.path}: no enabled feeds to fetch")
    progress = _progress if sys.stderr.isatty() and not args.json else None
    with worker_processes(settings.workers) as workers, _open(settings) as store:
        import asyncio

        from scraper.pipeline import run_pass

        summaries = asyncio.run(run_pass(settings, feeds, store, progress, workers))
    failed = [s for s in summaries if not s.ok]
    if args.json:
        print(json.dumps({
            "feeds": [s.as_json() for s in summaries],
            "new": sum(s.new for s in summaries),
            "updated": sum(s.updated for s in summaries),
            "failed": len(failed),
        }, ensure_ascii=False))
    else:
        _print_fetch_summary(summaries)
    return 1 if failed else 0


def _progress(summary: FeedSummary, done: int, total: int) -> None:
    state = f"failed: {summary.error}" if summary.error else (
        f"{summary.new} new, {summary.updated} updated")
    print(f"[{done}/{total}] {summary.url} {state}", file=sys.stderr, flush=True)


def _print_fetch_summary(summaries: list[FeedSummary]) -> None:
    from scraper.pipeline import network_down

    print(f"{'status':<10} {'new':>5} {'upd':>5} {'same':>5}  feed")
    for s in summaries:
        print(f"{s.status:<10} {s.new:>5} {s.updated:>5} {s.unchanged:>5}  {s.url}")
        if s.error:
            print(f"{'':<30}error: {s.error}")
        for note in s.notes:
            print(f"{'':<30}note: {note}")
    failed = sum(1 for s in summaries if not s.ok)
    print(f"{len(summaries)} feeds: {sum(s.new for s in summaries)} new, "
          f"{sum(s.updated for s in summaries)} updated, {failed} failed")
    if network_down(summaries):
        print("every feed failed to connect: the network or DNS looks down, not the feeds")


def _cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    since = _parse_since(args.since) if args.since else None
    feeds = [f.url for f in _select(settings, args.feed)] if args.feed else None
    from scraper.export import export

    with _open(settings) as store:
        stats = export(store, Path(args.out), since=since, feed_urls=feeds)
    print(f"exported to {args.out}: {stats.written} written, {stats.unchanged} unchanged, "
          f"{stats.removed} renamed files removed")
    return 0


def _parse_since(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r}: expected an ISO date like 2024-02-01 "
                         "or a date-time like 2024-02-01T08:00:00+08:00") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from scraper.record import render_post

    with _open(settings) as store:
        article = store.article(args.article)
    if article is None:
        print(f"scraper: no archived article {args.article!r}", file=sys.stderr)
        return 1
    sys.stdout.write(render_post(article.record, article.first_seen))
    return 0


def _cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit {args.limit}: must be at least 1")
    with _open(settings) as store:
        hits = store.search(args.query, limit=args.limit)
    if args.json:
        print(json.dumps([h.as_json() for h in hits], ensure_ascii=False))
        return 0
    for hit in hits:
        print(f"{hit.id:>6}  {hit.date}  {hit.title}\n        {hit.url}\n        {hit.snippet}")
    if not hits:
        print("no match", file=sys.stderr)
    return 0


def _cmd_feeds(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings) as store:
        store.sync_feeds(settings.feeds)
        configured = {f.url for f in settings.feeds}
        rows = [r for r in store.feed_rows() if r["url"] in configured]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        state = "never polled" if not row["last_polled"] else (
            f"ok ({row['last_status']})" if not row["last_error"] else
            f"FAILING x{row['error_count']} since {row['failing_since']}: {row['last_error']}")
        print(f"{row['url']}\n    {row['source'] or '-'} / {row['channel'] or '-'}: "
              f"{row['articles']} articles, last poll {row['last_polled'] or '-'}, {state}")
    return 0


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    with worker_processes(settings.workers) as workers:  # forked before any thread starts
        import asyncio

        from scraper.service import Service, configure_logging

        configure_logging(args.log_format)
        with _open(settings):  # a database that cannot be used: exit 2 before starting
            pass
        service = Service(settings, reload=lambda: _settings(args), executor=workers)
        return asyncio.run(service.run())


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from scraper.service import status_lines, status_report

    with _open(settings) as store:
        store.sync_feeds(settings.feeds)
        configured = {f.url for f in settings.feeds if f.enabled}
        rows = [r for r in store.feed_rows() if r["url"] in configured]
    report = status_report(rows, datetime.now(UTC))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print("\n".join(status_lines(report)))
    return 0
