"""The real CLI in a subprocess: the reference case, exit codes, JSON, options."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import yaml
from conftest import SEED, fold, front_matter_and_body, make_config, need, run_cli
from pytest_httpserver import HTTPServer

SEED_LABELS = {"category": "金融", "source": "新浪财经", "channel": "新浪财经－国內",
               "full_text": "never"}


def _seed_config(tmp_path: Path, httpserver: HTTPServer) -> Path:
    feed = need(SEED / "feed.xml").read_bytes()
    httpserver.expect_request("/sina/finance").respond_with_data(
        feed, content_type="application/rss+xml; charset=utf-8")
    return make_config(tmp_path / "seed.toml",
                       [{"url": httpserver.url_for("/sina/finance"), **SEED_LABELS}])


def test_reference_record_through_fetch_and_export(tmp_path: Path, httpserver: HTTPServer) -> None:
    config = _seed_config(tmp_path, httpserver)
    db, out = tmp_path / "a.db", tmp_path / "posts"
    fetched = run_cli("fetch", "--config", str(config), "--db", str(db))
    assert fetched.returncode == 0, fetched.stderr
    exported = run_cli("export", "--out", str(out), "--config", str(config), "--db", str(db))
    assert exported.returncode == 0, exported.stderr
    (post,) = out.rglob("*.md")
    assert post.relative_to(out).parts[:3] == ("金融", "新浪财经", "新浪财经－国內")

    ours_fm, ours_body = front_matter_and_body(post.read_text(encoding="utf-8"))
    ref_fm, ref_body = front_matter_and_body((SEED / "record.md").read_text(encoding="utf-8"))
    ours, ref = yaml.safe_load(ours_fm), yaml.safe_load(ref_fm)
    assert list(ours.items()) == list(ref.items())  # keys, order and values
    assert [ln.split(":")[0] for ln in ours_fm.splitlines() if not ln.startswith(" ")] == [
        ln.split(":")[0] for ln in ref_fm.splitlines() if not ln.startswith(" ")]
    assert fold(ours_body) == fold(ref_body)
    assert not any(not line.strip() for line in ours_body.strip("\n").split("\n"))

    shown = run_cli("show", "1", "--config", str(config), "--db", str(db))
    assert shown.returncode == 0 and shown.stdout == post.read_text(encoding="utf-8")
    by_url = run_cli("show", "https://finance.sina.com.cn/china/2022-06-13/"
                     "doc-seed0000000001.shtml?utm_source=rss#x",
                     "--config", str(config), "--db", str(db))
    assert by_url.stdout == shown.stdout


def test_second_fetch_is_conditional_and_writes_nothing(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    body = need(SEED / "feed.xml").read_bytes()
    seen: list[dict[str, str]] = []

    def handler(request):  # type: ignore[no-untyped-def]
        from werkzeug import Response

        seen.append(dict(request.headers))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(body, headers={"ETag": '"v1"', "Last-Modified":
                                       "Mon, 13 Jun 2022 13:30:00 GMT"},
                        content_type="application/rss+xml")

    httpserver.expect_request("/feed").respond_with_handler(handler)
    config = make_config(tmp_path / "c.toml", [{"url": httpserver.url_for("/feed"),
                                                **SEED_LABELS}])
    db = tmp_path / "a.db"
    first = run_cli("fetch", "--json", "--config", str(config), "--db", str(db))
    assert first.json()["new"] == 1
    stamp = sqlite3.connect(db).execute("SELECT updated FROM articles").fetchone()
    second = run_cli("fetch", "--json", "--config", str(config), "--db", str(db))
    assert second.returncode == 0
    data = second.json()
    assert (data["new"], data["updated"], data["failed"]) == (0, 0, 0)
    assert data["feeds"][0]["status"] == "304"
    assert seen[1].get("If-None-Match") == '"v1"'
    assert seen[1].get("If-Modified-Since") == "Mon, 13 Jun 2022 13:30:00 GMT"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT updated FROM articles").fetchone() == stamp
        assert conn.execute("SELECT count(*) FROM revisions").fetchone()[0] == 0


def test_exit_1_names_the_failed_feed_and_archives_the_others(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/good").respond_with_data(
        need(SEED / "feed.xml").read_bytes(), content_type="text/xml")
    httpserver.expect_request("/gone").respond_with_data("nope", status=404)
    httpserver.expect_request("/html").respond_with_data(
        "<!doctype html><html><body>hi</body></html>", content_type="text/html")
    config = make_config(tmp_path / "c.toml", [
        {"url": httpserver.url_for("/good"), **SEED_LABELS},
        {"url": httpserver.url_for("/gone"), "source": "Gone"},
        {"url": httpserver.url_for("/html"), "source": "Html"},
    ])
    db = tmp_path / "a.db"
    result = run_cli("fetch", "--json", "--config", str(config), "--db", str(db))
    assert result.returncode == 1
    feeds = {f["url"].rsplit("/", 1)[1]: f for f in result.json()["feeds"]}
    assert feeds["good"]["new"] == 1 and feeds["good"]["error"] == ""
    assert feeds["gone"]["status"] == "404" and "404" in feeds["gone"]["error"]
    assert feeds["html"]["status"] == "parse" and "HTML" in feeds["html"]["error"]
    plain = run_cli("fetch", "--config", str(config), "--db", str(db))
    assert plain.returncode == 1
    assert re.search(r"error: HTTP 404", plain.stdout)
    listed = run_cli("feeds", "--json", "--config", str(config), "--db", str(db)).json()
    rows = {r["url"].rsplit("/", 1)[1]: r for r in listed}
    assert rows["gone"]["error_count"] == 2 and rows["gone"]["last_status"] == "404"
    assert rows["good"]["articles"] == 1 and rows["good"]["last_error"] == ""


def test_bad_config_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[http]\ntimeout = "soon"\n[[feeds]]\nurl = "http://127.0.0.1:9/x"\n')
    db = tmp_path / "a.db"
    for command in (["fetch"], ["feeds"], ["search", "x"], ["show", "1"],
                    ["export", "--out", str(tmp_path / "o")]):
        result = run_cli(*command, "--config", str(config), "--db", str(db))
        assert result.returncode == 2, command
        assert result.stderr.count("\n") == 1
        assert str(config) in result.stderr and "http.timeout" in result.stderr
    assert not db.exists() and not (tmp_path / "o").exists()


def test_unknown_feed_selector_is_bad_usage(tmp_path: Path) -> None:
    config = make_config(tmp_path / "c.toml", [{"url": "http://127.0.0.1:9/x", "source": "S"}])
    result = run_cli("fetch", "--feed", "Nobody", "--config", str(config),
                     "--db", str(tmp_path / "a.db"))
    assert result.returncode == 2 and "Nobody" in result.stderr


def test_show_search_and_env_precedence(tmp_path: Path, httpserver: HTTPServer) -> None:
    config = _seed_config(tmp_path, httpserver)
    db = tmp_path / "env.db"
    env = {"SCRAPER_CONFIG": str(config), "SCRAPER_DB": str(db)}
    assert run_cli("fetch", env=env).returncode == 0
    assert db.exists()
    found = run_cli("search", "疫情防控", "--json", env=env)
    assert found.returncode == 0
    (hit,) = found.json()
    assert set(hit) == {"id", "url", "title", "date", "snippet"}
    assert "疫情防控" in hit["snippet"]
    none = run_cli("search", "降准", "--json", env=env)
    assert none.returncode == 0 and none.json() == []
    missing = run_cli("show", "999", env=env)
    assert missing.returncode == 1 and "999" in missing.stderr
    # the command-line option wins over the environment
    other = tmp_path / "other.db"
    run_cli("search", "x", "--db", str(other), env=env)
    assert other.exists()


def test_fetch_export_option_writes_posts(tmp_path: Path, httpserver: HTTPServer) -> None:
    config = _seed_config(tmp_path, httpserver)
    out = tmp_path / "live"
    result = run_cli("fetch", "--export", str(out), "--config", str(config),
                     "--db", str(tmp_path / "a.db"))
    assert result.returncode == 0
    assert len(list(out.rglob("*.md"))) == 1


def test_json_output_is_only_json(tmp_path: Path, httpserver: HTTPServer) -> None:
    config = _seed_config(tmp_path, httpserver)
    result = run_cli("fetch", "--json", "--config", str(config), "--db", str(tmp_path / "a.db"))
    data = json.loads(result.stdout)
    assert set(data) == {"feeds", "new", "updated", "failed"}
    assert set(data["feeds"][0]) == {"url", "status", "new", "updated", "unchanged", "error"}


def test_python_dash_m_and_help() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("fetch", "export", "show", "search", "feeds"):
        assert command in result.stdout


def test_every_feed_unreachable_is_told_as_network_down(tmp_path: Path) -> None:
    import socket

    ports = []
    for _ in range(3):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        ports.append(sock.getsockname()[1])
        sock.close()  # nothing listens there any more
    config = make_config(tmp_path / "c.toml",
                         [{"url": f"http://127.0.0.1:{p}/feed", "source": f"S{p}"} for p in ports])
    result = run_cli("fetch", "--config", str(config), "--db", str(tmp_path / "a.db"))
    assert result.returncode == 1
    assert "network or DNS looks down" in result.stdout
    assert result.stdout.count("connection failed") == 3
