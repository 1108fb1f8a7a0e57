"""The whole third-party corpus through the real CLI, plus dedup and encoding cases.

Everything is real: a threaded HTTP server on 127.0.0.1 (`corpus_server`),
`python -m scraper fetch --json` in a subprocess, SQLite files on disk.
Nothing reaches the internet.

1. The sweep: every feedparser test file (382, with each file's `Header:`
   lines sent as real response headers) and every finance-en feed, one
   config, one fetch. Counts are printed (`pytest -s`) and written to
   `sweep_counts.json` under the test's tmp dir.
2. A second fetch of the same config: conditional GET, nothing written.
3. One article reached through two feeds (tracking parameters, fragment,
   host case differ) is stored once; polling it again writes nothing, also
   when the two feeds' summaries differ; link-less entries stay distinct.
4. GB2312/GBK/GB18030 feeds: the chardet corpus, a header-only `charset=gbk`
   feed and `gb2312` labels on characters outside GB2312.
5. An HTML page, an empty body and a 404 are rejected with readable reasons
   and do not stop the other feeds.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import sqlite3
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import CORPUS, CliResult, make_config, need, run_cli
from corpus_server import CorpusServer, header_lines

FEEDPARSER = CORPUS / "feedparser"
FINANCE_EN = CORPUS / "finance-en" / "feeds"
GB2312_DIR = CORPUS / "finance-zh" / "chardet" / "GB2312"

RFC822_GMT = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d\d:\d\d:\d\d GMT$"
)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FIXED_LAST_MODIFIED = "Mon, 03 Apr 2023 01:02:03 GMT"
HTTP_SETTINGS = {"timeout": 10, "retries": 0}  # concurrency, per_host: the defaults (16, 2)


# -- helpers -------------------------------------------------------------------

def fetch(config: Path, db: Path, *extra: str) -> tuple[CliResult, float]:
    started = time.monotonic()
    result = run_cli("fetch", "--json", "--config", str(config), "--db", str(db), *extra,
                     timeout=120)
    return result, time.monotonic() - started


def fetch_json(config: Path, db: Path) -> dict[str, Any]:
    result, _ = fetch(config, db)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), (result.returncode, result.stderr)
    return result.json()


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def count(db: Path, table: str) -> int:
    return int(query(db, f"SELECT count(*) FROM {table}")[0][0])


def rfc822(when: datetime) -> str:
    """Our own formatter (not the project's), to check the stored `date`."""
    when = when.astimezone(UTC)
    return (f"{_WEEKDAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} "
            f"{when.year:04d} {when:%H:%M:%S} GMT")


def expected_title(raw: str) -> str:
    """The spec's title rule: entities decoded, then markup removed, whitespace collapsed."""
    text = re.sub(r"<!--.*?-->|</?[A-Za-z][^<>]*>", "", html.unescape(raw), flags=re.S)
    return " ".join(text.split())


def raw_entry_count(data: bytes) -> int:
    """<item>/<entry> start tags in a file, in any ASCII-compatible or UTF-16/32 encoding."""
    return len(re.findall(rb"<(?:[\w-]+:)?(?:item|entry)[\s>/]", data.replace(b"\x00", b"")))


def rss(title: str, items: list[dict[str, str]], decl: str | None = None) -> str:
    """A small RSS 2.0 document; `decl` is the XML declaration's encoding (None: no declaration)."""
    head = f'<?xml version="1.0" encoding="{decl}"?>\n' if decl else ""
    body = "".join(
        "<item>" + "".join(f"<{k}>{v}</{k.split()[0]}>" for k, v in item.items()) + "</item>\n"
        for item in items
    )
    return (f'{head}<rss version="2.0"><channel><title>{title}</title>'
            f"<link>https://example.com/</link><description>test</description>\n"
            f"{body}</channel></rss>\n")


# -- 1. the sweep ------------------------------------------------------------------

@dataclass(repr=False)
class Sweep:
    server: CorpusServer
    config: Path
    db: Path
    out_dir: Path
    names: dict[str, str]  # feed URL -> corpus file name (feedparser/…, finance-en/…)
    files: dict[str, Path]  # feed URL -> file
    result: CliResult
    elapsed: float
    summary: dict[str, Any] = field(default_factory=dict)
    articles_after_first: int = 0
    revisions_after_first: int = 0


def _corpus_files() -> list[tuple[str, Path]]:
    files = [(f"feedparser/{p.relative_to(FEEDPARSER).as_posix()}", p)
             for p in sorted(FEEDPARSER.rglob("*")) if p.is_file() and p.name != "README.md"]
    files += [(f"finance-en/{p.relative_to(FINANCE_EN).as_posix()}", p)
              for p in sorted(FINANCE_EN.rglob("*")) if p.is_file()]
    return files


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Any:
    need(FEEDPARSER)
    need(FINANCE_EN)
    out_dir = tmp_path_factory.mktemp("sweep")
    with CorpusServer() as server:
        feeds, names, files = [], {}, {}
        for name, path in _corpus_files():
            data = path.read_bytes()
            if name.startswith("feedparser/"):
                headers = header_lines(data)
            else:  # real publishers' feeds: validators, so the second poll can be a 304
                etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
                headers = [("ETag", etag), ("Last-Modified", FIXED_LAST_MODIFIED)]
            url = server.add(name, data, headers=headers)
            names[url], files[url] = name, path
            top = name.split("/")[1]
            feeds.append({"url": url, "category": "corpus", "source": name.split("/")[0],
                          "channel": top, "full_text": "never"})
        config = make_config(out_dir / "sweep.toml", feeds, http=dict(HTTP_SETTINGS))
        db = out_dir / "sweep.db"
        result, elapsed = fetch(config, db)
        state = Sweep(server, config, db, out_dir, names, files, result, elapsed)
        if result.stdout.strip().startswith("{"):
            state.summary = result.json()
        if db.exists():
            state.articles_after_first = count(db, "articles")
            state.revisions_after_first = count(db, "revisions")
        _report(state)
        yield state


def _report(s: Sweep) -> None:
    feeds = s.summary.get("feeds", [])
    ok = [f for f in feeds if f["status"] == "200" and not f["error"]]
    rejected: dict[str, list[str]] = defaultdict(list)
    for f in feeds:
        if f["error"]:
            rejected[f["status"]].append(f"{s.names.get(f['url'], f['url'])}: {f['error']}")
    counts = {
        "feeds_configured": len(s.names),
        "feeds_in_json": len(feeds),
        "feeds_archived": len(ok),
        "feeds_archived_with_entries": sum(
            1 for f in ok if f["new"] + f["updated"] + f["unchanged"]),
        "entries": sum(f["new"] + f["updated"] + f["unchanged"] for f in feeds),
        "new": s.summary.get("new"),
        "updated": s.summary.get("updated"),
        "articles_rows": s.articles_after_first,
        "revisions_rows": s.revisions_after_first,
        "feeds_rejected": sum(len(v) for v in rejected.values()),
        "rejected_by_status": {k: len(v) for k, v in sorted(rejected.items())},
        "rejected": {k: sorted(v) for k, v in sorted(rejected.items())},
        "exit_status": s.result.returncode,
        "fetch_seconds": round(s.elapsed, 2),
    }
    path = s.out_dir / "sweep_counts.json"
    path.write_text(json.dumps(counts, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\n=== corpus sweep ({path}) ===")
    for key, value in counts.items():
        if key != "rejected":
            print(f"{key}: {value}")
    for status, lines in counts["rejected"].items():
        print(f"rejected [{status}]:")
        for line in lines:
            print(f"    {line}")


def test_sweep_fetch_exits_cleanly_and_lists_every_feed(sweep: Sweep) -> None:
    r = sweep.result
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.returncode in (0, 1), (r.returncode, r.stderr[-3000:])
    assert sweep.summary, f"no JSON on stdout: {r.stdout[:500]!r}"
    listed = Counter(f["url"] for f in sweep.summary["feeds"])
    assert set(listed) == set(sweep.names), set(sweep.names) ^ set(listed)
    assert all(n == 1 for n in listed.values()), [u for u, n in listed.items() if n > 1]
    bad = [
        f for f in sweep.summary["feeds"]
        if not ((f["status"] == "200" and f["error"] == "")
                or (f["status"] != "200" and f["error"].strip()))
    ]
    assert not bad, bad
    failed = [f for f in sweep.summary["feeds"] if f["error"]]
    assert sweep.summary["failed"] == len(failed)
    assert r.returncode == (1 if failed else 0)
    assert sweep.summary["new"] == sum(f["new"] for f in sweep.summary["feeds"])
    assert sweep.summary["updated"] == sum(f["updated"] for f in sweep.summary["feeds"])


def test_sweep_database_is_consistent(sweep: Sweep) -> None:
    assert query(sweep.db, "PRAGMA integrity_check")[0][0] == "ok"
    feeds = {row["url"]: row for row in query(sweep.db, "SELECT * FROM feeds")}
    for f in sweep.summary["feeds"]:
        row = feeds[f["url"]]
        assert (row["last_status"], row["last_error"] or "") == (f["status"], f["error"]), f
        assert row["error_count"] == (1 if f["error"] else 0), f
    problems = []
    for a in query(sweep.db, "SELECT id, url, date, published, first_seen FROM articles"):
        if not RFC822_GMT.match(a["date"] or ""):
            problems.append(f"article {a['id']}: date {a['date']!r} is not RFC 822 GMT")
            continue
        stamp = datetime.strptime(a["date"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
        if rfc822(stamp) != a["date"]:  # e.g. a weekday that does not match the date
            problems.append(f"article {a['id']}: date {a['date']!r} is not a real date")
        when = a["published"] or a["first_seen"]
        if when and rfc822(datetime.fromisoformat(when.replace("Z", "+00:00"))) != a["date"]:
            problems.append(f"article {a['id']}: date {a['date']!r} but published/first_seen "
                            f"{when!r}")
    assert not problems, "\n".join(problems)


def test_sweep_every_article_has_a_title(sweep: Sweep) -> None:
    rows = query(sweep.db, "SELECT id, url, feed_url, title FROM articles "
                           "WHERE trim(coalesce(title, '')) = '' ORDER BY id")
    untitled = [f"{sweep.names.get(r['feed_url'], r['feed_url'])} (article {r['id']}, "
                f"url {r['url']})" for r in rows]
    assert not untitled, (f"{len(untitled)} of {count(sweep.db, 'articles')} archived articles "
                          "have an empty title:\n" + "\n".join(untitled))


def test_sweep_accepted_entries_are_archived(sweep: Sweep) -> None:
    per_feed = Counter(r["feed_url"] for r in query(sweep.db, "SELECT feed_url FROM articles"))
    assert sum(f["new"] for f in sweep.summary["feeds"]) == sum(per_feed.values())
    problems = []
    for f in sweep.summary["feeds"]:
        name = sweep.names[f["url"]]
        accepted = f["new"] + f["updated"] + f["unchanged"]
        if per_feed[f["url"]] != f["new"]:
            problems.append(f"{name}: {f['new']} new but {per_feed[f['url']]} rows")
        if f["status"] == "200" and not f["error"] and accepted == 0:
            n = raw_entry_count(sweep.files[f["url"]].read_bytes())
            if n:
                problems.append(f"{name}: accepted with {n} <item>/<entry> but no entries read")
    assert not problems, "\n".join(problems)


def _upstream_expects_bozo(data: bytes) -> bool:
    match = re.search(rb"Expect:\s*(\S+)", data.replace(b"\x00", b""))
    return bool(match and match.group(1).startswith(b"bozo"))


def test_sweep_feeds_upstream_reads_cleanly_are_not_rejected(sweep: Sweep) -> None:
    """wellformed/ and encoding/ files that feedparser reads without complaint are feeds
    (UTF-16/32 with or without a BOM, served as text/xml like many hosts do) and must
    not be rejected. (The JSON Feed and the Bloomberg sitemap are not RSS/Atom.)"""
    wrong = []
    for f in sweep.summary["feeds"]:
        name = sweep.names[f["url"]]
        top = name.split("/")[1]
        if not f["error"] or top not in ("wellformed", "encoding"):
            continue
        if not _upstream_expects_bozo(sweep.files[f["url"]].read_bytes()):
            wrong.append(f"{name}: [{f['status']}] {f['error']}")
    assert not wrong, f"{len(wrong)} well-formed feeds rejected:\n" + "\n".join(wrong)


def test_sweep_rejections_say_why(sweep: Sweep) -> None:
    """A rejected document's reason must name the real problem, not a side issue."""
    by_name = {sweep.names[f["url"]]: f for f in sweep.summary["feeds"]}
    empty = by_name["feedparser/illformed/rss_empty_document.xml"]
    assert empty["error"], empty
    sitemap = by_name["finance-en/crawinsight/bloomberg.xml"]  # a <urlset>, not a feed
    assert sitemap["error"], sitemap
    assert "us-ascii" not in sitemap["error"], sitemap["error"]


# -- 2. second fetch: conditional GET, nothing written --------------------------------

def test_second_fetch_is_conditional_and_writes_nothing(sweep: Sweep) -> None:
    assert sweep.summary, "the sweep's first fetch produced no JSON"
    first_status = {f["url"]: f["status"] for f in sweep.summary["feeds"]}
    before = len(sweep.server.requests)
    result, elapsed = fetch(sweep.config, sweep.db)
    print(f"\nsecond fetch: exit {result.returncode} in {elapsed:.2f}s")
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode in (0, 1)
    second = result.json()
    problems = []
    requests = sweep.server.requests[before:]
    by_path = {r.path: r for r in requests}
    statuses = {f["url"]: f for f in second["feeds"]}
    for url, name in sweep.names.items():
        path = urlsplit(url).path
        route = sweep.server.routes[path]
        if first_status[url] != "200":
            continue
        req = by_path.get(path)
        etag, modified = route.header("ETag"), route.header("Last-Modified")
        if req is None:
            problems.append(f"{name}: not requested again")
            continue
        if etag and req.headers.get("if-none-match") != etag:
            problems.append(f"{name}: sent If-None-Match {req.headers.get('if-none-match')!r}, "
                            f"server's ETag was {etag!r}")
        if modified and req.headers.get("if-modified-since") != modified:
            problems.append(f"{name}: sent If-Modified-Since "
                            f"{req.headers.get('if-modified-since')!r}, server's "
                            f"Last-Modified was {modified!r}")
        if (etag or modified) and statuses[url]["status"] != "304":
            problems.append(f"{name}: status {statuses[url]['status']} (expected 304)")
    assert any(r.path.startswith("/finance-en/") for r in requests)
    for f in second["feeds"]:
        if f["new"] or f["updated"]:
            problems.append(f"{sweep.names[f['url']]}: second fetch wrote "
                            f"{f['new']} new, {f['updated']} updated")
    if (second["new"], second["updated"]) != (0, 0):
        problems.append(f"totals: new {second['new']}, updated {second['updated']}")
    articles, revisions = count(sweep.db, "articles"), count(sweep.db, "revisions")
    if articles != sweep.articles_after_first:
        problems.append(f"articles rows {sweep.articles_after_first} -> {articles}")
    if revisions != sweep.revisions_after_first:
        problems.append(f"revisions rows {sweep.revisions_after_first} -> {revisions}")
    assert query(sweep.db, "PRAGMA integrity_check")[0][0] == "ok"
    assert not problems, "\n".join(problems)


# -- 3. one article through two feeds ---------------------------------------------------

def _story(link: str, guid: str, summary: str = "The committee left its target range "
           "unchanged.") -> dict[str, str]:
    return {"title": "Fed holds rates steady", "link": html.escape(link), "guid": guid,
            "description": summary, "pubDate": "Wed, 31 Jan 2024 19:00:00 GMT"}


def test_one_article_through_two_feeds_is_stored_once(tmp_path: Path) -> None:
    plain = "https://news.example.com/markets/2024/fed-holds?id=42"
    tracked = ("https://NEWS.Example.COM/markets/2024/fed-holds?utm_source=x&id=42"
               "&utm_medium=y#comments")
    other = "https://news.example.com/markets/2024/ecb-holds?id=43"
    with CorpusServer() as srv:
        a = srv.add("a/rss.xml", rss("A", [_story(plain, "a-1"), {
            "title": "ECB holds", "link": other, "guid": "a-2",
            "pubDate": "Thu, 01 Feb 2024 09:00:00 GMT"}]).encode(),
            content_type="application/rss+xml")
        b = srv.add("b/feed.xml", rss("B", [_story(tracked, "b-77")]).encode(),
                    content_type="application/rss+xml")
        config = make_config(tmp_path / "c.toml", [
            {"url": a, "source": "A", "full_text": "never"},
            {"url": b, "source": "B", "full_text": "never"},
        ], http=dict(HTTP_SETTINGS))
        db = tmp_path / "a.db"
        out = fetch_json(config, db)
        assert out["failed"] == 0, out
        assert out["new"] == 2, out
        rows = query(db, "SELECT url, canonical_url FROM articles WHERE title = ?",
                     ("Fed holds rates steady",))
        assert len(rows) == 1, [dict(r) for r in rows]
        assert count(db, "articles") == 2
        again = fetch_json(config, db)
        assert (again["new"], again["updated"]) == (0, 0), again
        assert count(db, "articles") == 2


def test_one_article_two_feeds_with_different_summaries_is_stable(tmp_path: Path) -> None:
    """Two feeds carry the same story (same link) with different summaries, as a
    wire feed and a publisher's own feed do. It is one article; polling both feeds
    again, unchanged, must write nothing (no endless new revisions)."""
    link = "https://www.sec.gov/Archives/edgar/data/1889983/000121390025006497/x-index.htm"
    with CorpusServer() as srv:
        a = srv.add("wire.xml", rss("wire", [_story(link, "w-1", "Short wire summary.")])
                    .encode(), content_type="application/rss+xml")
        b = srv.add("own.xml", rss("own", [_story(link, "o-1", "A longer summary, with "
                    "more detail from the publisher.")]).encode(),
                    content_type="application/rss+xml")
        config = make_config(tmp_path / "c.toml", [
            {"url": a, "source": "wire", "full_text": "never"},
            {"url": b, "source": "own", "full_text": "never"},
        ], http=dict(HTTP_SETTINGS))
        db = tmp_path / "a.db"
        fetch_json(config, db)
        assert count(db, "articles") == 1
        revisions = count(db, "revisions")
        for _ in range(2):
            again = fetch_json(config, db)
            assert (again["new"], again["updated"]) == (0, 0), again
        assert count(db, "articles") == 1
        assert count(db, "revisions") == revisions


def test_items_without_links_are_not_merged(tmp_path: Path) -> None:
    """Entries with no <link> but distinct guids are distinct articles (dedup falls to
    the guid); they must not all take the feed's own URL and collapse into one."""
    items = [{"title": f"Bulletin {i}", 'guid isPermaLink="false"': f"bulletin-{i}",
              "description": f"Notice number {i}.",
              "pubDate": f"Mon, 0{i} Jan 2024 08:00:00 GMT"} for i in range(1, 4)]
    with CorpusServer() as srv:
        url = srv.add("nolinks.xml", rss("bulletins", items).encode(),
                      content_type="application/rss+xml")
        config = make_config(tmp_path / "c.toml", [{"url": url, "full_text": "never"}],
                             http=dict(HTTP_SETTINGS))
        db = tmp_path / "a.db"
        out = fetch_json(config, db)
        rows = query(db, "SELECT title, url FROM articles ORDER BY title")
        assert [r["title"] for r in rows] == ["Bulletin 1", "Bulletin 2", "Bulletin 3"], (
            out, [dict(r) for r in rows])
        assert all(r["url"] != url for r in rows), [dict(r) for r in rows]


# -- 4. GB2312 / GBK / GB18030 -------------------------------------------------------------

_GB_DECL = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']gb2312[\"']", re.I)


def _expected_titles(data: bytes) -> list[str]:
    """Item/entry titles, from our own decoding of the bytes as GB18030."""
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", data.decode("gb18030"))
    root = ET.fromstring(text)
    titles = []
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] in ("item", "entry"):
            for child in el:
                if child.tag.rsplit("}", 1)[-1] == "title":
                    titles.append(expected_title("".join(child.itertext())))
    return titles


def test_gb2312_corpus_feeds_decode_right(tmp_path: Path) -> None:
    need(GB2312_DIR)
    files = [p for p in sorted(GB2312_DIR.glob("*.xml")) if _GB_DECL.match(p.read_bytes())]
    assert len(files) >= 18
    with CorpusServer() as srv:
        urls = {srv.add(f"gb/{p.name}", p.read_bytes()): p for p in files}  # text/xml
        config = make_config(tmp_path / "c.toml", [
            {"url": u, "category": "测试", "source": p.stem, "full_text": "never"}
            for u, p in urls.items()], http=dict(HTTP_SETTINGS))
        db = tmp_path / "a.db"
        out = fetch_json(config, db)
    assert out["failed"] == 0, [f for f in out["feeds"] if f["error"]]
    problems = []
    for url, path in urls.items():
        expected = _expected_titles(path.read_bytes())
        summary = next(f for f in out["feeds"] if f["url"] == url)
        seen = summary["new"] + summary["updated"] + summary["unchanged"]
        if seen != len(expected):
            problems.append(f"{path.name}: {seen} entries read, the file has {len(expected)}")
        # every stored title is one of the feed's titles, exactly; an untitled entry
        # gets text from its body instead (still no replacement character)
        for row in query(db, "SELECT title FROM articles WHERE feed_url = ?", (url,)):
            title = row["title"]
            if "\ufffd" in title or not title:
                problems.append(f"{path.name}: bad title {title!r}")
            elif title not in expected and "" not in expected:
                problems.append(f"{path.name}: title {title!r} is not in the feed")
    assert not problems, "\n".join(problems)
    acn = next(u for u, p in urls.items() if p.name == "acnnewswire.net.xml")
    acn_titles = sorted(r["title"] for r in query(
        db, "SELECT title FROM articles WHERE feed_url = ?", (acn,)))
    assert acn_titles == sorted(_expected_titles(urls[acn].read_bytes()))
    assert len(acn_titles) == 8
    assert ("JCB 与中国银联（China UnionPay）完成ATM网关协议的签订；CUP持卡者得以第一次在日本享受使用ATM"
            "网络的权利") in acn_titles
    softsea = next(u for u, p in urls.items() if p.name == "softsea.net.xml")
    feed_titles = {r["title"] for r in query(db, "SELECT title FROM feeds WHERE url = ?",
                                              (softsea,))}
    assert feed_titles == {"系统工具"}, feed_titles


GB_TITLES = ["朱镕基谈人民币汇率", "陶喆演唱会门票开售", "沪深两市成交额突破万亿元"]
GB18030_ONLY = "㛃"  # CJK Ext. A: in GB18030 (four bytes), not in GBK


def test_gbk_labels_decode_as_gb18030(tmp_path: Path) -> None:
    wide = [*GB_TITLES, f"{GB18030_ONLY}字测试"]
    cases = [  # name, titles, XML declaration, codec for the bytes, Content-Type
        # charset only in the HTTP header, no declaration; bytes from Python's 'gbk'
        ("header-gbk", GB_TITLES, None, "gbk", "application/rss+xml; charset=gbk"),
        ("header-GBK-quoted", GB_TITLES, None, "gbk", 'application/rss+xml; charset="GBK"'),
        ("header-gbk-4byte", wide, None, "gb18030", "application/rss+xml; charset=gbk"),
        # declared gb2312, with characters outside GB2312
        ("decl-gb2312-textxml", wide, "gb2312", "gb18030", "text/xml"),
        ("decl-GB2312-header-gb2312", wide, "GB2312", "gb18030",
         "application/rss+xml; charset=gb2312"),
        ("decl-gb2312-appxml", wide, "gb2312", "gb18030", "application/xml"),
        ("decl-gbk", GB_TITLES, "gbk", "gbk", "application/xml"),
    ]
    variants: dict[str, tuple[bytes, str, list[str]]] = {}
    for name, titles, decl, codec, ctype in cases:
        items = [{"title": t, "link": f"https://finance.example.cn/{name}/{i}.html",
                  "pubDate": "Mon, 05 Feb 2024 02:00:00 GMT"} for i, t in enumerate(titles)]
        variants[name] = (rss("财经要闻", items, decl).encode(codec), ctype, titles)
    with CorpusServer() as srv:
        urls = {name: srv.add(name, body, content_type=ctype)
                for name, (body, ctype, _) in variants.items()}
        config = make_config(tmp_path / "c.toml", [
            {"url": u, "source": name, "full_text": "never"} for name, u in urls.items()
        ], http=dict(HTTP_SETTINGS))
        db = tmp_path / "a.db"
        result, _ = fetch(config, db)
    assert "Traceback" not in result.stderr, result.stderr
    out = result.json()
    problems = []
    for f in out["feeds"]:
        name = next(n for n, u in urls.items() if u == f["url"])
        if f["error"]:
            problems.append(f"{name}: rejected [{f['status']}] {f['error']}")
            continue
        got = sorted(r["title"] for r in query(
            db, "SELECT title FROM articles WHERE feed_url = ?", (f["url"],)))
        want = sorted(variants[name][2])
        if got != want:
            problems.append(f"{name}: titles {got} != {want}")
    assert not problems, "\n".join(problems)
    assert result.returncode == 0


# -- 5. HTML page, empty body, 404 -------------------------------------------------------

HTML_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Markets - Example News</title></head>
<body><h1>Markets</h1><p>Our RSS feeds have moved.</p></body></html>
"""


def test_html_empty_and_404_are_rejected_and_others_archived(tmp_path: Path) -> None:
    good_items = [{"title": "Stocks rally", "link": "https://example.com/a",
                   "pubDate": "Tue, 06 Feb 2024 15:00:00 GMT"},
                  {"title": "Bonds slip", "link": "https://example.com/b",
                   "pubDate": "Tue, 06 Feb 2024 16:00:00 GMT"}]
    with CorpusServer() as srv:
        good = srv.add("good.xml", rss("good", good_items).encode(),
                       content_type="application/rss+xml")
        page = srv.add("page.xml", HTML_PAGE, content_type="text/html; charset=utf-8")
        empty = srv.add("empty.xml", b"", content_type="application/rss+xml")
        missing = srv.url("/gone.xml")
        good2 = srv.add("good2.xml", rss("good2", [{
            "title": "Oil steady", "link": "https://example.com/c",
            "pubDate": "Tue, 06 Feb 2024 17:00:00 GMT"}]).encode(),
            content_type="application/rss+xml")
        feeds = [good, page, empty, missing, good2]
        config = make_config(tmp_path / "c.toml", [
            {"url": u, "source": f"s{i}", "full_text": "never"} for i, u in enumerate(feeds)
        ], http=dict(HTTP_SETTINGS))
        db = tmp_path / "a.db"
        result, _ = fetch(config, db)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
        out = {f["url"]: f for f in result.json()["feeds"]}
        assert result.json()["failed"] == 3
        assert (out[good]["status"], out[good]["error"], out[good]["new"]) == ("200", "", 2)
        assert (out[good2]["status"], out[good2]["error"], out[good2]["new"]) == ("200", "", 1)
        assert out[page]["status"] != "200" and "html" in out[page]["error"].lower(), out[page]
        assert out[empty]["status"] != "200" and "empty" in out[empty]["error"].lower(), (
            out[empty])
        assert out[missing]["status"] == "404" and "404" in out[missing]["error"], out[missing]
        assert count(db, "articles") == 3
        rows = {r["url"]: r for r in query(db, "SELECT * FROM feeds")}
        for url in (page, empty, missing):
            assert rows[url]["last_error"] == out[url]["error"]
            assert rows[url]["error_count"] == 1
        # the human summary names each failure with its reason
        human = run_cli("fetch", "--config", str(config), "--db", str(db))
        assert human.returncode == 1 and "Traceback" not in human.stderr
        for url in (page, empty, missing):
            assert url in human.stdout and out[url]["error"] in human.stdout, human.stdout
        assert count(db, "articles") == 3
        assert {r["url"]: r["error_count"] for r in query(db, "SELECT * FROM feeds")}[page] == 2
