"""The TOML configuration file, loaded and validated into typed settings.

`load_config(path)` is the only entry point. Every problem is raised as a
`ConfigError` whose message names the file, the key and what is wrong, so the
command line can print one line and exit 2 before anything is fetched.
"""

from __future__ import annotations

import os
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ArchiveSettings",
    "ConfigError",
    "FeedConfig",
    "HttpSettings",
    "ScheduleSettings",
    "Settings",
    "default_config_path",
    "load_config",
    "parse_duration",
]

FULL_TEXT_MODES = ("auto", "always", "never")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(Exception):
    """A configuration file that cannot be used; the message is user-facing."""


@dataclass(frozen=True)
class ArchiveSettings:
    database: str = "archive.db"
    export_dir: str = ""


@dataclass(frozen=True)
class HttpSettings:
    user_agent: str = "scraper/0.1 (finance news archiver)"
    timeout: float = 20.0
    retries: int = 2
    concurrency: int = 16
    per_host: int = 2
    max_bytes: int = 10_000_000
    allow_private: bool = False


@dataclass(frozen=True)
class ScheduleSettings:
    interval: int = 900  # seconds
    jitter: int = 60


@dataclass(frozen=True)
class FeedConfig:
    """One configured feed. `url` is absolute (routes are already joined)."""

    url: str
    category: str = ""
    source: str = ""
    channel: str = ""
    interval: int | None = None
    full_text: str = "auto"
    selector: str = ""
    enabled: bool = True
    timezone: str = ""  # zone for page dates that carry none ("+08:00", "Asia/Shanghai")

    @property
    def categories(self) -> list[str]:
        """Category, source and channel in that order, empty ones left out."""
        return [c for c in (self.category, self.source, self.channel) if c]

    def matches(self, selector: str) -> bool:
        """True if `selector` names this feed by URL, source or channel."""
        return selector in (self.url, self.source, self.channel)


@dataclass(frozen=True)
class Settings:
    path: str
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    rsshub_base_url: str = "https://rsshub.app"
    feeds: tuple[FeedConfig, ...] = ()
    # processes that parse feeds and extract pages: None = one per core (none
    # on a single core), 0 = none (threads of the main process)
    workers: int | None = None

    def with_database(self, database: str) -> Settings:
        return replace(self, archive=replace(self.archive, database=database))

    def with_export_dir(self, export_dir: str) -> Settings:
        return replace(self, archive=replace(self.archive, export_dir=export_dir))


def default_config_path() -> Path:
    """The bundled default config: the checkout's, else the installed copy."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "config" / "scraper.toml"
    return checkout if checkout.is_file() else here / "default.toml"


def parse_duration(value: Any, key: str = "duration") -> int:
    """`"90s"`, `"15m"`, `"2h"`, `"1d"` (or a bare number of seconds) to seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{key}: expected a duration like \"15m\", got {value!r}")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if not match:
            raise ValueError(
                f"{key}: expected a duration like \"90s\", \"15m\", \"2h\" or \"1d\", "
                f"got {value!r}"
            )
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError(f"{key}: must not be negative, got {value!r}")
    return seconds


def load_config(path: str | os.PathLike[str]) -> Settings:
    """Read and validate a config file; raise `ConfigError` naming file and key."""
    path = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return _build(path, data)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# --- validation helpers -------------------------------------------------------

_SECTIONS = {"archive", "http", "schedule", "rsshub", "workers", "feeds"}


def _build(path: str, data: dict[str, Any]) -> Settings:
    _no_unknown(data, _SECTIONS, "")
    archive = _table(data, "archive")
    http = _table(data, "http")
    schedule = _table(data, "schedule")
    rsshub = _table(data, "rsshub")
    workers = _table(data, "workers")
    _no_unknown(workers, {"processes"}, "workers.")
    _no_unknown(archive, {"database", "export_dir"}, "archive.")
    _no_unknown(http, set(HttpSettings.__dataclass_fields__), "http.")
    _no_unknown(schedule, {"interval", "jitter"}, "schedule.")
    _no_unknown(rsshub, {"base_url"}, "rsshub.")
    base_url = _string(rsshub, "base_url", "rsshub.", "https://rsshub.app")
    if base_url and not _is_http_url(base_url):
        raise ValueError(f"rsshub.base_url: expected an http(s) URL, got {base_url!r}")
    feeds_raw = data.get("feeds", [])
    if not isinstance(feeds_raw, list):
        raise ValueError("feeds: expected an array of tables ([[feeds]])")
    feeds = tuple(_feed(item, i, base_url) for i, item in enumerate(feeds_raw))
    _no_duplicate_feeds(feeds)
    return Settings(
        path=path,
        archive=ArchiveSettings(
            database=_string(archive, "database", "archive.", "archive.db") or "archive.db",
            export_dir=_string(archive, "export_dir", "archive.", ""),
        ),
        http=_http(http),
        schedule=ScheduleSettings(
            interval=_duration(schedule, "interval", "schedule.", 900, minimum=1),
            jitter=_duration(schedule, "jitter", "schedule.", 60, minimum=0),
        ),
        rsshub_base_url=base_url,
        feeds=feeds,
        workers=_processes(workers),
    )


def _processes(workers: dict[str, Any]) -> int | None:
    value = workers.get("processes", "auto")
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f'workers.processes: expected "auto" or a whole number >= 0, '
                         f"got {value!r}")
    return value


def _http(http: dict[str, Any]) -> HttpSettings:
    d = HttpSettings()
    timeout = http.get("timeout", d.timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"http.timeout: expected a positive number of seconds, got {timeout!r}")
    user_agent = _string(http, "user_agent", "http.", d.user_agent)
    if not user_agent.strip():
        raise ValueError("http.user_agent: must not be empty")
    return HttpSettings(
        user_agent=user_agent,
        timeout=float(timeout),
        retries=_int(http, "retries", "http.", d.retries, minimum=0),
        concurrency=_int(http, "concurrency", "http.", d.concurrency, minimum=1),
        per_host=_int(http, "per_host", "http.", d.per_host, minimum=1),
        max_bytes=_int(http, "max_bytes", "http.", d.max_bytes, minimum=1),
        allow_private=_bool(http, "allow_private", "http.", d.allow_private),
    )


_FEED_KEYS = {
    "url", "route", "category", "source", "channel", "interval",
    "full_text", "selector", "enabled", "timezone",
}


def _feed(item: Any, index: int, base_url: str) -> FeedConfig:
    where = f"feeds[{index}]."
    if not isinstance(item, dict):
        raise ValueError(f"feeds[{index}]: expected a table")
    _no_unknown(item, _FEED_KEYS, where)
    url = _string(item, "url", where, "")
    route = _string(item, "route", where, "")
    if url and route:
        raise ValueError(f"{where}url: give either url or route, not both")
    if route:
        if not route.startswith("/"):
            raise ValueError(f"{where}route: must start with '/', got {route!r}")
        url = base_url.rstrip("/") + route
    if not url:
        raise ValueError(f"{where}url: missing (give url or route)")
    if not _is_http_url(url):
        raise ValueError(f"{where}url: expected an http(s) URL, got {url!r}")
    full_text = _string(item, "full_text", where, "auto")
    if full_text not in FULL_TEXT_MODES:
        raise ValueError(
            f"{where}full_text: expected one of auto, always, never, got {full_text!r}"
        )
    interval = (
        _duration(item, "interval", where, 0, minimum=1) if "interval" in item else None
    )
    timezone = _string(item, "timezone", where, "").strip()
    if timezone and not _valid_zone(timezone):
        raise ValueError(f"{where}timezone: expected an offset like \"+08:00\" or a zone "
                         f"name like \"Asia/Shanghai\", got {timezone!r}")
    return FeedConfig(
        url=url,
        category=_string(item, "category", where, "").strip(),
        source=_string(item, "source", where, "").strip(),
        channel=_string(item, "channel", where, "").strip(),
        interval=interval,
        full_text=full_text,
        selector=_string(item, "selector", where, "").strip(),
        enabled=_bool(item, "enabled", where, True),
        timezone=timezone,
    )


def _valid_zone(name: str) -> bool:
    if re.fullmatch(r"[+-]\d\d:?\d\d", name) or name.upper() in ("UTC", "GMT"):
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _no_duplicate_feeds(feeds: tuple[FeedConfig, ...]) -> None:
    seen: dict[str, int] = {}
    for i, feed in enumerate(feeds):
        if feed.url in seen:
            raise ValueError(
                f"feeds[{i}].url: {feed.url} is already configured as feeds[{seen[feed.url]}]"
            )
        seen[feed.url] = i


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _no_unknown(table: dict[str, Any], known: set[str], prefix: str) -> None:
    for key in table:
        if key not in known:
            raise ValueError(f"{prefix}{key}: unknown key (known: {', '.join(sorted(known))})")


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key}: expected a table ([{key}])")
    return value


def _string(table: dict[str, Any], key: str, prefix: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{prefix}{key}: expected a string, got {value!r}")
    return value


def _bool(table: dict[str, Any], key: str, prefix: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{prefix}{key}: expected true or false, got {value!r}")
    return value


def _int(table: dict[str, Any], key: str, prefix: str, default: int, minimum: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{prefix}{key}: expected a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{prefix}{key}: must be at least {minimum}, got {value}")
    return value


def _duration(table: dict[str, Any], key: str, prefix: str, default: int, minimum: int) -> int:
    if key not in table:
        return default
    seconds = parse_duration(table[key], f"{prefix}{key}")
    if seconds < minimum:
        raise ValueError(f"{prefix}{key}: must be at least {minimum}s, got {table[key]!r}")
    return seconds
