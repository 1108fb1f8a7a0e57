"""Full text through the real CLI: summary feeds get their article page's body."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
from conftest import make_config, run_cli
from pytest_httpserver import HTTPServer

from scraper.config import FeedConfig, HttpSettings
from scraper.fetcher import Fetcher
from scraper.models import FeedOutcome
from scraper.pipeline import poll_feed
from scraper.store import FeedState, Store

PAGES = Path(__file__).parent / "pages"

ARTICLE = """<!doctype html><html lang="zh"><head><meta charset="gbk">
<title>央行宣布降准_新浪财经</title>
<meta property="og:image" content="/og.jpg"></head><body>
<div class="nav"><a href="/">首页</a> <a href="/a">财经</a></div>
<div id="artibody"><p>中国人民银行决定于2024年2月5日下调金融机构存款准备金率0.5个百分点。</p>
<p>此次降准将向市场提供长期流动性约1万亿元，有助于保持流动性合理充裕。</p>
<img data-src="/img/chart.png" src="data:image/gif;base64,R0lGOD">
<p>专家表示，这体现了稳健货币政策的灵活适度、精准有效。</p>
<p class="article-editor">责任编辑：张三</p></div>
<div class="footer">版权所有</div></body></html>"""


def _feed(base: str, pages: list[str]) -> str:
    items = "".join(
        f"<item><title>第{i}条 央行宣布降准</title><link>{base}{page}</link>"
        f"<pubDate>Mon, 05 Feb 2024 0{i}:00:00 GMT</pubDate>"
        f"<description>中国人民银行决定下调存款准备金率……阅读全文</description></item>"
        for i, page in enumerate(pages)
    )
    return f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>"


def _setup(tmp_path: Path, server: HTTPServer, pages: list[str], **http: object) -> Path:
    server.expect_request("/feed").respond_with_data(
        _feed(server.url_for(""), pages), content_type="application/rss+xml")
    server.expect_request("/article").respond_with_data(
        ARTICLE.encode("gbk"), content_type="text/html; charset=gbk")
    server.expect_request("/missing").respond_with_data("gone", status=404)
    server.expect_request("/huge").respond_with_data(b"<p>x</p>" * 200_000,
                                                     content_type="text/html")
    return make_config(tmp_path / "c.toml", [{
        "url": server.url_for("/feed"), "category": "金融", "source": "新浪财经",
        "channel": "国内", "full_text": "auto", "selector": "#artibody",
    }], http={"max_bytes": 500_000, **http})


def _rows(db: Path) -> dict[str, sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    return {r["url"].rsplit("/", 1)[1]: r for r in conn.execute("SELECT * FROM articles")}


def test_summary_entry_gets_the_article_page_once(tmp_path: Path, httpserver: HTTPServer) -> None:
    config = _setup(tmp_path, httpserver, ["/article"], allow_private=True)
    db = tmp_path / "a.db"
    first = run_cli("fetch", "--json", "--config", str(config), "--db", str(db))
    assert first.returncode == 0, first.stderr
    row = _rows(db)["article"]
    assert "1万亿元" in row["body"] and "稳健货币政策" in row["body"]
    assert "阅读全文" not in row["body"] and "版权所有" not in row["body"]
    assert "首页" not in row["body"]
    assert row["summary_only"] == 0 and row["fulltext_error"] == ""
    assert row["headimg"] == httpserver.url_for("/img/chart.png")  # lazy image made real
    # the page's words are searchable, not only the summary's
    found = run_cli("search", "稳健货币政策", "--config", str(config), "--db", str(db)).stdout
    assert "第0条 央行宣布降准" in found and "稳健货币政策" in found
    shown = run_cli("show", "1", "--config", str(config), "--db", str(db)).stdout
    assert "<div>\n" in shown and "&#123;" not in row["body"]
    second = run_cli("fetch", "--json", "--config", str(config), "--db", str(db))
    assert second.json()["updated"] == 0
    pages = [r.path for r, _ in httpserver.log if r.path == "/article"]
    assert len(pages) == 1  # never fetched again for an unchanged entry


def test_refused_pages_keep_the_summary_and_say_why(tmp_path: Path, httpserver: HTTPServer) -> None:
    config = _setup(tmp_path, httpserver, ["/missing", "/huge"], allow_private=True)
    db = tmp_path / "a.db"
    result = run_cli("fetch", "--config", str(config), "--db", str(db))
    assert result.returncode == 0  # a refused page does not fail the feed
    assert "full text not used: 404" in result.stdout
    assert "full text not used: too-large" in result.stdout
    rows = _rows(db)
    assert rows["missing"]["fulltext_error"].startswith("404")
    assert rows["huge"]["fulltext_error"].startswith("too-large")
    for row in rows.values():
        assert "阅读全文" in row["body"] and row["summary_only"] == 1


def test_private_article_links_are_refused_by_default(tmp_path: Path, httpserver: HTTPServer) -> None:
    config = _setup(tmp_path, httpserver, ["/article"])  # allow_private = false
    db = tmp_path / "a.db"
    result = run_cli("fetch", "--json", "--config", str(config), "--db", str(db))
    assert result.returncode == 0
    assert not [r for r, _ in httpserver.log if r.path == "/article"]  # no request sent
    row = _rows(db)["article"]
    assert row["fulltext_error"].startswith("blocked") and "127.0.0.1" in row["fulltext_error"]
    assert "阅读全文" in row["body"]


def test_full_text_never_fetches_no_page(tmp_path: Path, httpserver: HTTPServer) -> None:
    config = _setup(tmp_path, httpserver, ["/article"], allow_private=True)
    text = config.read_text().replace('full_text = "auto"', 'full_text = "never"')
    config.write_text(text)
    result = run_cli("fetch", "--config", str(config), "--db", str(tmp_path / "a.db"))
    assert result.returncode == 0
    assert not [r for r, _ in httpserver.log if r.path == "/article"]


def test_page_date_fills_a_missing_feed_date_in_the_feeds_zone(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    page = ARTICLE.replace(
        '<meta property="og:image" content="/og.jpg">',
        '<meta property="article:published_time" content="2024-02-05 09:30:00">')
    httpserver.expect_request("/feed").respond_with_data(
        f"<rss version='2.0'><channel><title>t</title><item><title>无日期</title>"
        f"<link>{httpserver.url_for('/dated')}</link><description>摘要……</description>"
        f"</item></channel></rss>", content_type="application/rss+xml")
    httpserver.expect_request("/dated").respond_with_data(
        page.encode("gbk"), content_type="text/html; charset=gbk")
    config = make_config(tmp_path / "c.toml", [{
        "url": httpserver.url_for("/feed"), "source": "S", "full_text": "always",
        "timezone": "+08:00"}], http={"allow_private": True})
    db = tmp_path / "a.db"
    assert run_cli("fetch", "--config", str(config), "--db", str(db)).returncode == 0
    row = _rows(db)["dated"]
    assert row["published"] == "2024-02-05T01:30:00Z"
    assert row["date"] == "Mon, 05 Feb 2024 01:30:00 GMT"


def _poll_through(proxy: str, feed: FeedConfig, db: Path) -> None:
    """One real poll (Fetcher + poll_feed), saved by the real store. Every host
    name is served by the local server acting as an HTTP proxy: publishers' names
    cannot resolve here, and the site rules are keyed on them."""
    http = HttpSettings(retries=0, timeout=5, allow_private=True)

    async def go() -> FeedOutcome:
        transport = httpx.AsyncHTTPTransport(proxy=proxy)
        async with Fetcher(http, transport=transport) as fetcher:
            return await poll_feed(fetcher, feed, FeedState(url=feed.url))

    outcome = asyncio.run(go())
    with Store(db) as store:
        store.sync_feeds([feed])
        store.save(outcome)


def test_page_behind_a_redirect_gets_the_final_hosts_rule(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    link = "http://finance.sina.com.cn/roll/2024-01-02/doc-inaaxyzu1234567.shtml"
    final = "http://finance.eastmoney.com/a/202401022951234567.html"
    feed = FeedConfig(url="http://rsshub.app/sina/finance/china", source="新浪财经")
    httpserver.expect_request("/sina/finance/china", headers={"Host": "rsshub.app"}) \
        .respond_with_data(
            f"<rss version='2.0'><channel><title>新浪财经</title><item><title>贵州茅台业绩预告"
            f"</title><link>{link}</link><description>贵州茅台1月2日晚间公告……</description>"
            f"</item></channel></rss>", content_type="application/rss+xml")
    httpserver.expect_request("/roll/2024-01-02/doc-inaaxyzu1234567.shtml",
                              headers={"Host": "finance.sina.com.cn"}) \
        .respond_with_data("", status=302, headers={"Location": final})
    httpserver.expect_request("/a/202401022951234567.html",
                              headers={"Host": "finance.eastmoney.com"}) \
        .respond_with_data((PAGES / "eastmoney.com.html").read_bytes(),
                           content_type="text/html; charset=utf-8")

    _poll_through(httpserver.url_for("/").rstrip("/"), feed, tmp_path / "a.db")
    with Store(tmp_path / "a.db") as store:
        stored = store.article(link)
    assert stored is not None and stored.record.fulltext_error == ""
    body = stored.record.body
    # eastmoney's rule: #ContentBody, two paragraphs, nothing of the page around
    # them, and without the stock widget, source and editor lines inside it
    assert body.count("<p>") == 2
    assert "1月2日晚间公告" in body and "完成了年度经营目标" in body
    for junk in ("摘要", "东方财富APP", "文章来源", "责任编辑", "郑重声明", "分享到"):
        assert junk not in body, junk
    hosts = [request.host for request, _ in httpserver.log]
    assert hosts == ["rsshub.app", "finance.sina.com.cn", "finance.eastmoney.com"]


def test_a_failed_page_is_retried_next_poll_when_the_failure_was_passing(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    answers = iter([503, 200, 200])  # busy once, then fine

    def flaky(_request: object) -> object:
        from werkzeug import Response

        status = next(answers)
        if status != 200:
            return Response("busy", status=status)
        return Response(ARTICLE.encode("gbk"), content_type="text/html; charset=gbk")

    httpserver.expect_request("/flaky").respond_with_handler(flaky)
    config = _setup(tmp_path, httpserver, ["/flaky", "/missing"], allow_private=True,
                    retries=0)
    db = tmp_path / "a.db"
    first = run_cli("fetch", "--json", "--config", str(config), "--db", str(db))
    assert first.returncode == 0, first.stderr
    rows = _rows(db)
    assert rows["flaky"]["fulltext_error"].startswith("503")
    assert rows["missing"]["fulltext_error"].startswith("404")
    second = run_cli("fetch", "--json", "--config", str(config), "--db", str(db))
    assert second.json()["updated"] == 1  # the same entry, now with its page
    rows = _rows(db)
    assert "1万亿元" in rows["flaky"]["body"] and rows["flaky"]["fulltext_error"] == ""
    assert rows["missing"]["fulltext_error"].startswith("404")
    third = run_cli("fetch", "--json", "--config", str(config), "--db", str(db))
    assert third.json()["updated"] == 0
    paths = [r.path for r, _ in httpserver.log]
    assert paths.count("/flaky") == 2  # retried once, then never again
    assert paths.count("/missing") == 1  # a 404 is not asked again


def test_the_same_body_again_is_not_parsed_again(tmp_path: Path, httpserver: HTTPServer) -> None:
    # a server without ETag or Last-Modified: every poll is a full 200
    config = _setup(tmp_path, httpserver, ["/article"], allow_private=True)
    db = tmp_path / "a.db"
    first = run_cli("fetch", "--json", "--config", str(config), "--db", str(db))
    assert first.json()["new"] == 1
    again = run_cli("fetch", "--json", "--config", str(config), "--db", str(db)).json()
    feed = again["feeds"][0]
    # parsed, the entry would count as unchanged; skipped, it counts as nothing
    assert (feed["status"], feed["new"], feed["updated"], feed["unchanged"]) == ("200", 0, 0, 0)
    httpserver.clear()
    _setup(tmp_path, httpserver, ["/article", "/missing"], allow_private=True)
    changed = run_cli("fetch", "--json", "--config", str(config), "--db", str(db)).json()
    assert changed["feeds"][0]["new"] == 1 and changed["feeds"][0]["unchanged"] == 1


def test_a_page_that_keeps_failing_is_tried_three_polls_then_left(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/down").respond_with_data("busy", status=503)
    config = _setup(tmp_path, httpserver, ["/down"], allow_private=True, retries=0)
    db = tmp_path / "a.db"
    for _ in range(5):
        result = run_cli("fetch", "--json", "--config", str(config), "--db", str(db))
        assert result.returncode == 0, result.stderr
    assert [r.path for r, _ in httpserver.log].count("/down") == 3
    row = _rows(db)["down"]
    assert row["fulltext_error"].startswith("503") and row["page_failures"] == 3
    assert "阅读全文" in row["body"]  # the feed's summary is kept
