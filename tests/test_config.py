"""Config loading: durations, routes, validation messages, the bundled default."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_config

from scraper.config import ConfigError, default_config_path, load_config, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("0s", 0), (30, 30)],
)
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["15", "1.5m", "m", "-1m", "15 minutes", True, None])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad, "schedule.interval")


def test_route_is_joined_to_rsshub_base(tmp_path: Path) -> None:
    path = make_config(
        tmp_path / "c.toml",
        [{"route": "/sina/finance/china", "source": "新浪财经", "interval": "10m",
          "timezone": "Asia/Shanghai"}],
        rsshub={"base_url": "http://127.0.0.1:1200/"},
        schedule={"interval": "2h", "jitter": "0s"},
    )
    settings = load_config(path)
    feed = settings.feeds[0]
    assert feed.url == "http://127.0.0.1:1200/sina/finance/china"
    assert feed.interval == 600
    assert settings.schedule.interval == 7200
    assert settings.schedule.jitter == 0
    assert feed.full_text == "auto" and feed.enabled
    assert feed.timezone == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("feeds", "sections", "names"),
    [
        ([{"url": "ftp://x/feed"}], {}, "feeds[0].url"),
        ([{"url": "http://a/x", "route": "/x"}], {}, "feeds[0].url"),
        ([{"source": "no url"}], {}, "feeds[0].url"),
        ([{"url": "http://a/x", "full_text": "sometimes"}], {}, "feeds[0].full_text"),
        ([{"url": "http://a/x", "interval": "soon"}], {}, "feeds[0].interval"),
        ([{"url": "http://a/x", "colour": "red"}], {}, "feeds[0].colour"),
        ([{"url": "http://a/x"}, {"url": "http://a/x"}], {}, "feeds[1].url"),
        ([], {"http": {"retries": -1}}, "http.retries"),
        ([], {"http": {"timeout": "fast"}}, "http.timeout"),
        ([], {"http": {"per_host": 0}}, "http.per_host"),
        ([], {"schedule": {"interval": "0s"}}, "schedule.interval"),
        ([], {"archive": {"database": 3}}, "archive.database"),
        ([{"url": "http://a/x", "timezone": "Mars/Olympus"}], {}, "feeds[0].timezone"),
        ([], {"workers": {"processes": -1}}, "workers.processes"),
        ([], {"workers": {"processes": "many"}}, "workers.processes"),
        ([], {"workers": {"threads": 2}}, "workers.threads"),
    ],
)
def test_bad_config_names_file_and_key(
    tmp_path: Path, feeds: list, sections: dict, names: str
) -> None:
    path = make_config(tmp_path / "bad.toml", feeds, **sections)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert names in message


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[http\ntimeout = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_bundled_default_lists_real_finance_feeds() -> None:
    settings = load_config(default_config_path())
    feeds = settings.feeds
    assert len(feeds) >= 20
    assert all(f.category and f.source and f.channel for f in feeds)
    sina = [f for f in feeds if f.url.endswith("/sina/finance/china")]
    assert sina and sina[0].channel == "新浪财经－国內"
    rsshub = [f for f in feeds if f.url.startswith(settings.rsshub_base_url)]
    own = [f for f in feeds if not f.url.startswith(settings.rsshub_base_url)]
    assert len(rsshub) >= 8 and len(own) >= 8
    assert all(f.url.startswith("https://") for f in own)


def test_worker_processes_setting(tmp_path: Path) -> None:
    assert load_config(make_config(tmp_path / "a.toml", [])).workers is None  # one per core
    path = make_config(tmp_path / "b.toml", [], workers={"processes": 0})
    assert load_config(path).workers == 0
