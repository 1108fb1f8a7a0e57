"""`scraper export` against its real consumer, Hexo, with awkward titles and bodies.

A local HTTP server (pytest-httpserver) serves an RSS 2.0 feed whose items have
the titles and bodies that break naive exporters (quotes, `: `, `#`, `---`,
newlines, Nunjucks tags, path separators, `..`, long Chinese, emoji, empty and
blank titles, leading `.`/`_`/`-`/`?`/`*`, `%`, markup and entities, the
ideographic space; bodies with braces, fences, blank lines, indented HTML,
`<pre>`, `<script>` and `onclick=`), plus the seed feed. The real CLI fetches
and exports them in a subprocess; the tree is then checked for valid YAML,
safe file names, Hexo-safe bodies, `--since`/`--feed` selection, renames, and
finally rendered with the real Hexo (`tools/hexo-check`).
"""

from __future__ import annotations

import email.utils
import html
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
import yaml
from conftest import HEXO_CHECK, SEED, fold, front_matter_and_body, make_config, need, run_cli
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

KEY_ORDER = ["title", "categories", "headimg", "author", "comments", "date", "thumbnail"]
DATE_FORMAT = "%a, %d %b %Y %H:%M:%S GMT"
FORBIDDEN_IN_NAMES = set('/\\:*?"<>|%')

CATEGORY = "Markets"
SOURCE = "Awkward Wire"
CHANNEL = "Edge/Cases: 100%"  # the channel folder has to be made safe too
SEED_CATEGORIES = ["金融", "新浪财经", "新浪财经－国內"]
FEED_PATH = "/awkward.xml"
SEED_PATH = "/sina/finance"
CST = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Item:
    key: str
    title: str  # the title's text as the XML parser reads it (markup/entities as text)
    expected: str  # the record's title, as SPEC "Record"/"Titles" defines it
    body: str = ""  # description HTML; default "<p>Story KEY.</p>"
    published: datetime | None = None  # default: derived from the item's position

    @property
    def link(self) -> str:
        return f"https://news.example.com/markets/{self.key}?id=1"


FALLBACK_TEXT = ("No headline: the desk filed this brief without a title, "
                 "so the first words stand in for it.")
BLANK_TEXT = ("Blank headline, whitespace only; this summary's opening words "
              "become the title instead.")
CHINESE = "中国经济稳中向好" * 25  # 200 characters, 600 bytes in UTF-8

SIMPLE_BODY = "<p>Hello <b>world</b> &amp; friends.</p>\n\n<p>Second   paragraph.</p>\n"
SIMPLE_EXPECTED = (
    "<div>\n<p>Hello <b>world</b> &amp; friends.</p>\n<p>Second paragraph.</p>\n</div>"
)
PRE_TEXT = "line one\n\nline three\n\n\n    indented line six\n"

ITEMS: list[Item] = [
    Item("quotes", "It's a \"quoted\" title: yes, 'both' kinds",
         "It's a \"quoted\" title: yes, 'both' kinds", body=SIMPLE_BODY),
    Item("hash", "# Breaking #1: stocks #up", "# Breaking #1: stocks #up"),
    Item("dashes", "--- Markets --- close ---", "--- Markets --- close ---"),
    Item("newlines", "First line\nsecond line\r\n\n   third line\n",
         "First line second line third line"),
    Item("mustache", "{{ x }} and {{ page.title }}", "{{ x }} and {{ page.title }}",
         body="<p>Template {{ page.title }} and {% if x %}y{% endif %} and {# note #}.</p>\n"
              "<p>A dict: {'a': {\"b\": 1}} }} {{</p>"),
    Item("raw", "{% raw %}Raw{% endraw %} and {% endraw %}",
         "{% raw %}Raw{% endraw %} and {% endraw %}",
         body="{% raw %}\n<p>{% endraw %} {%- comment -%} {{- y -}}</p>"),
    Item("separators", "a/b\\c: path/separators\\here", "a/b\\c: path/separators\\here"),
    Item("dotdot", "..", ".."),
    Item("traversal", "../../etc/passwd", "../../etc/passwd"),
    Item("chinese", CHINESE, CHINESE),
    Item("emoji", "📈 Stocks rally 🚀 as 👨‍👩‍👧 families buy 🇺🇸",
         "📈 Stocks rally 🚀 as 👨‍👩‍👧 families buy 🇺🇸"),
    Item("empty", "", " ".join(FALLBACK_TEXT.split())[:60].strip(),
         body=f"<p>{FALLBACK_TEXT}</p>"),
    Item("blank", "  \t \u3000\n ", " ".join(BLANK_TEXT.split())[:60].strip(),
         body=f"<p><b>{BLANK_TEXT}</b></p>"),
    Item("dot", ".hidden dot title", ".hidden dot title"),
    Item("underscore", "_underscore title", "_underscore title"),
    Item("percent", "Rates 100%20 up 5% and %E4%B8%AD today",
         "Rates 100%20 up 5% and %E4%B8%AD today"),
    Item("dash", "- leading dash", "- leading dash"),
    Item("question", "? leading question", "? leading question"),
    Item("star", "* leading star *", "* leading star *"),
    Item("markup", "Fed <b>holds</b> &lt;i&gt;rates&lt;/i&gt; &amp; AT&amp;T",
         "Fed holds rates & AT&T"),
    Item("lt", "S&P 500 < 5000 & yields > 4%", "S&P 500 < 5000 & yields > 4%"),
    Item("ideographic", "中国\u3000\u3000经济\u3000增长  \u3000 quarterly",
         "中国 经济 增长 quarterly"),
    Item("yamlish", "null", "null"),
    Item("yamldate", "2024-01-01", "2024-01-01"),
    Item("yamlmix", "key: value # comment\n- item\n---\n...",
         "key: value # comment - item --- ..."),
    Item("fence", "Code fence body", "Code fence body",
         body="<p>before</p>\n```python\nprint('x')\n```\n~~~\ntilde\n~~~\n<p>after</p>"),
    Item("indented", "Indented HTML after blank lines", "Indented HTML after blank lines",
         body="<div class=\"a\">\n\n    <p>indented four after a blank line</p>\n\n"
              "        <table>\n\n            <tr><td>cell</td></tr>\n\n        </table>\n"
              "\n\t\t<p>tabs</p>\n\n</div>"),
    Item("pre", "Preformatted body", "Preformatted body",
         body=f"<p>code:</p>\n\n<pre>{PRE_TEXT}</pre>\n\n    <p>after pre</p>"),
    Item("script", "Active content body", "Active content body",
         body="<p onclick=\"alert(1)\" class=\"x\">click</p>\n"
              "<script>alert('x')</script>\n<SCRIPT type=\"text/javascript\">evil()</SCRIPT>\n"
              "<a href=\"javascript:alert(1)\" onmouseover='steal()'>js link</a>\n"
              "<img src=\"/img/chart.png\" onerror=\"pwn()\">"),
    # --since 2024-02-01 boundaries: the feed gives China Standard Time
    Item("before-midnight", "Just before February (UTC)", "Just before February (UTC)",
         published=datetime(2024, 2, 1, 7, 59, 59, tzinfo=CST)),
    Item("at-midnight", "February at midnight (UTC)", "February at midnight (UTC)",
         published=datetime(2024, 2, 1, 8, 0, 0, tzinfo=CST)),
]

SEED_TITLE = "上海市疫情防控工作领导小组今天召开会议，对常态化防控重点工作再部署再压实"
N_RECORDS = len(ITEMS) + 1  # plus the seed's article


def published(index: int, item: Item) -> datetime:
    """Distinct dates from 2024-01-10 on, every other one in +08:00."""
    if item.published is not None:
        return item.published
    when = datetime(2024, 1, 10, 9, 30, tzinfo=UTC) + timedelta(days=index, minutes=7 * index)
    return when.astimezone(CST) if index % 2 else when


def expected_date(index: int, item: Item) -> str:
    return email.utils.format_datetime(published(index, item).astimezone(UTC), usegmt=True)


def body_of(item: Item) -> str:
    return item.body or f"<p>Story {item.key}.</p>"


def rss(items: list[Item], title: str = SOURCE) -> str:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0">',
        "<channel>",
        f"<title>{escape(title)}</title>",
        "<link>https://news.example.com/</link>",
        "<description>titles and bodies that break exporters</description>",
    ]
    for index, item in enumerate(items):
        pub = published(index, item)
        pub_text = (email.utils.format_datetime(pub, usegmt=True) if pub.utcoffset() == timedelta(0)
                    else email.utils.format_datetime(pub))
        parts += [
            "<item>",
            f"<title>{escape(item.title)}</title>",
            f"<link>{escape(item.link)}</link>",
            f'<guid isPermaLink="false">{escape(item.key)}</guid>',
            f"<pubDate>{pub_text}</pubDate>",
            f"<description><![CDATA[{body_of(item)}]]></description>",
            "</item>",
        ]
    parts += ["</channel>", "</rss>", ""]
    return "\n".join(parts)


# -- harness -----------------------------------------------------------------


class Site:
    """A served feed (changeable), the seed feed, a config and an archive."""

    def __init__(self, tmp_path: Path, server: HTTPServer, items: list[Item],
                 with_seed: bool = True) -> None:
        self.tmp = tmp_path
        self.items = list(items)
        self.xml = rss(self.items)
        server.expect_request(FEED_PATH).respond_with_handler(self._feed)
        feeds: list[dict[str, Any]] = [{
            "url": server.url_for(FEED_PATH), "category": CATEGORY, "source": SOURCE,
            "channel": CHANNEL, "full_text": "never",
        }]
        if with_seed:
            seed_xml = need(SEED / "feed.xml").read_bytes()
            server.expect_request(SEED_PATH).respond_with_data(
                seed_xml, content_type="application/rss+xml; charset=utf-8")
            feeds.append({
                "url": server.url_for(SEED_PATH), "category": SEED_CATEGORIES[0],
                "source": SEED_CATEGORIES[1], "channel": SEED_CATEGORIES[2],
                "full_text": "never",
            })
        self.feeds = feeds
        self.config = tmp_path / "scraper.toml"
        self.write_config()
        self.db = tmp_path / "archive.db"

    def write_config(self) -> None:
        make_config(self.config, self.feeds, schedule={"interval": "15m", "jitter": "0s"})

    def _feed(self, request: Request) -> Response:
        return Response(self.xml.encode("utf-8"), content_type="application/rss+xml; charset=utf-8")

    def set_items(self, items: list[Item]) -> None:
        self.items = list(items)
        self.xml = rss(self.items)

    def cli(self, *args: str) -> Any:
        return run_cli(*args, "--config", str(self.config), "--db", str(self.db), cwd=self.tmp)

    def fetch(self, *extra: str) -> None:
        result = self.cli("fetch", *extra)
        assert result.returncode == 0, (result.stdout, result.stderr)

    def export(self, out: Path, *extra: str) -> Path:
        result = self.cli("export", "--out", str(out), *extra)
        assert result.returncode == 0, (result.stdout, result.stderr)
        return out

    def article_count(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute("SELECT count(*) FROM articles").fetchone()[0])


def posts(out: Path) -> dict[str, str]:
    """Every file under `out` (relative POSIX path -> text)."""
    return {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(out.rglob("*")) if p.is_file()}


def read_post(text: str) -> tuple[dict[str, Any], str]:
    fm_text, body = front_matter_and_body(text)
    data = yaml.safe_load(fm_text)
    assert isinstance(data, dict), fm_text
    return data, body


def by_title(out: Path) -> dict[str, tuple[str, dict[str, Any], str]]:
    """Exported posts keyed by their front-matter title: (path, front matter, body)."""
    found: dict[str, tuple[str, dict[str, Any], str]] = {}
    for rel, text in posts(out).items():
        data, body = read_post(text)
        assert data["title"] not in found, f"two posts titled {data['title']!r}: {rel}"
        found[data["title"]] = (rel, data, body)
    return found


@pytest.fixture
def site(tmp_path: Path, httpserver: HTTPServer) -> Site:
    s = Site(tmp_path, httpserver, ITEMS)
    s.fetch()
    return s


# -- 1. the real consumer ----------------------------------------------------


def hexo_check(posts_dir: Path) -> subprocess.CompletedProcess[str]:
    script = need(HEXO_CHECK)
    for tool in ("bash", "node", "npm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: hexo-check needs bash, Node >= 20.19 and npm")
    proc = subprocess.run(["bash", str(script), "--strict", str(posts_dir)],
                          capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    if proc.returncode == 2 and re.search(r"is not installed|too old", proc.stdout):
        pytest.skip(f"hexo-check cannot run here: {proc.stdout.strip().splitlines()[0]}")
    return proc


def test_hexo_renders_every_exported_post(site: Site) -> None:
    out = site.export(site.tmp / "posts")
    files = [p for p in out.rglob("*.md")]
    assert len(files) == N_RECORDS == site.article_count()
    proc = hexo_check(out)
    report = proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, report
    assert lines and lines[-1] == f"hexo: {N_RECORDS}/{N_RECORDS} posts rendered", report
    assert not [line for line in lines if line.startswith(("FAIL", "WARN"))], report


# -- 2. YAML round trip ------------------------------------------------------


def test_front_matter_round_trips_titles_order_and_dates(site: Site) -> None:
    out = site.export(site.tmp / "posts")
    exported = by_title(out)
    assert len(exported) == N_RECORDS

    for index, item in enumerate(ITEMS):
        assert item.expected in exported, (
            f"{item.key}: no post titled {item.expected!r}; titles: {sorted(exported)}")
        rel, data, _ = exported[item.expected]
        assert list(data) == KEY_ORDER, rel
        assert data["categories"] == [CATEGORY, SOURCE, CHANNEL], rel
        assert data["author"] == SOURCE
        assert data["comments"] is False
        assert isinstance(data["date"], str), (rel, data["date"])
        datetime.strptime(data["date"], DATE_FORMAT)  # raises unless the format matches
        assert data["date"] == expected_date(index, item), item.key
        assert data["headimg"] == data["thumbnail"]
        expected_img = "https://news.example.com/img/chart.png" if item.key == "script" else ""
        assert data["headimg"] == expected_img, item.key

    # the seed's article is the reference record (whitespace is the one freedom)
    rel, data, body = exported[SEED_TITLE]
    ref_data, ref_body = read_post(need(SEED / "record.md").read_text(encoding="utf-8"))
    assert list(data) == list(ref_data) == KEY_ORDER
    assert data == ref_data
    assert fold(body) == fold(ref_body)


# -- 3. file names -----------------------------------------------------------


def test_file_names_are_safe_unique_and_stable(site: Site) -> None:
    out = site.export(site.tmp / "site" / "posts")
    first = posts(out)
    assert len(first) == N_RECORDS == site.article_count()
    assert all(rel.endswith(".md") for rel in first), sorted(first)
    root = out.resolve()
    for rel in first:
        path = out / rel
        assert root in path.resolve().parents, rel
        for part in Path(rel).parts:
            assert not FORBIDDEN_IN_NAMES & set(part), (rel, part)
            assert not part.startswith((".", "_")), (rel, part)
            assert part.strip() == part and part, (rel, part)
            assert len(part.encode("utf-8")) <= 255, (rel, len(part.encode("utf-8")))
    # nothing was written beside the export folder
    assert sorted(p.name for p in (site.tmp / "site").iterdir()) == ["posts"]
    outside = {p.relative_to(site.tmp).as_posix() for p in site.tmp.rglob("*")
               if p.is_file() and not p.is_relative_to(out)}
    assert {p for p in outside if not p.startswith("archive.db")} == {"scraper.toml"}, outside
    # one file per article, named with its id
    ids = [re.search(r"-(\d+)\.md$", rel) for rel in first]
    assert all(ids), sorted(first)
    assert len({m.group(1) for m in ids if m}) == N_RECORDS

    result = site.cli("export", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert posts(out) == first  # same files, same content, nothing added


# -- 4. bodies ---------------------------------------------------------------


def test_bodies_are_safe_for_hexo_and_kept(site: Site) -> None:
    out = site.export(site.tmp / "posts")
    exported = by_title(out)
    for title, (rel, _, body) in exported.items():
        lines = body.splitlines()
        assert lines[0] == "<div>" and lines[-1] == "</div>", (rel, body[:200])
        assert all(line.strip() for line in lines), f"blank line in {rel}:\n{body}"
        assert "{" not in body and "}" not in body, (rel, body)
        assert "```" not in body and "~~~" not in body, (rel, body)
        lowered = body.lower()
        for bad in ("<script", "onclick", "onmouseover", "onerror", "javascript:"):
            assert bad not in lowered, (rel, bad, body)
        assert title  # every post has a title

    _, _, simple = exported[ITEMS[0].expected]
    assert fold(simple) == fold(SIMPLE_EXPECTED)

    _, _, mustache = exported["{{ x }} and {{ page.title }}"]
    assert "Template &#123;&#123; page.title &#125;&#125; and &#123;% if x %&#125;y" in mustache
    assert html.unescape(fold(mustache)) == fold(
        "<div> <p>Template {{ page.title }} and {% if x %}y{% endif %} and {# note #}.</p>"
        " <p>A dict: {'a': {\"b\": 1}} }} {{</p> </div>")

    _, _, pre = exported["Preformatted body"]
    match = re.search(r"<pre>(.*?)</pre>", pre, re.S)
    assert match, pre
    assert html.unescape(match.group(1)) == PRE_TEXT  # blank lines kept as &#10;
    assert "<p>after pre</p>" in pre

    _, _, indented = exported["Indented HTML after blank lines"]
    assert fold(indented) == fold(
        "<div> <div class=\"a\"> <p>indented four after a blank line</p> <table>"
        " <tr><td>cell</td></tr> </table> <p>tabs</p> </div> </div>")

    _, _, active = exported["Active content body"]
    assert "click</p>" in active and "js link</a>" in active
    assert 'src="https://news.example.com/img/chart.png"' in active
    assert "alert" not in active and "evil" not in active and "steal" not in active


# -- 5. selection --------------------------------------------------------------


def test_export_since_and_feed_select_articles(site: Site) -> None:
    since = datetime(2024, 2, 1, tzinfo=UTC)
    recent = {item.expected for index, item in enumerate(ITEMS)
              if published(index, item) >= since}
    assert "February at midnight (UTC)" in recent
    assert "Just before February (UTC)" not in recent
    assert 0 < len(recent) < len(ITEMS)

    out = site.export(site.tmp / "since", "--since", "2024-02-01")
    assert set(by_title(out)) == recent

    out = site.export(site.tmp / "since-time", "--since", "2024-02-01T08:00:00+08:00")
    assert set(by_title(out)) == recent

    out = site.export(site.tmp / "seed-only", "--feed", SEED_CATEGORIES[1])
    assert set(by_title(out)) == {SEED_TITLE}

    out = site.export(site.tmp / "awkward-only", "--feed", SOURCE)
    assert set(by_title(out)) == {item.expected for item in ITEMS}

    out = site.export(site.tmp / "both", "--feed", SOURCE, "--feed", SEED_CATEGORIES[2],
                      "--since", "2024-02-01")
    assert set(by_title(out)) == recent


# -- 6. renamed articles -------------------------------------------------------


@pytest.mark.parametrize("how", ["export", "fetch --export"])
def test_changed_title_replaces_the_old_file(tmp_path: Path, httpserver: HTTPServer,
                                              how: str) -> None:
    items = [ITEMS[0], ITEMS[6], ITEMS[9]]  # quotes, separators, the long Chinese title
    site = Site(tmp_path, httpserver, items, with_seed=False)
    out = tmp_path / "posts"
    site.fetch()
    site.export(out)
    before = by_title(out)
    assert len(before) == 3
    old_rel = before[items[2].expected][0]
    match = re.search(r"-(\d+)\.md$", old_rel)
    assert match, old_rel
    article_id = match.group(1)
    untouched = {rel: (out / rel).read_text(encoding="utf-8")
                 for rel, _, _ in (before[i.expected] for i in items[:2])}

    new_title = "Renamed: a \"new\" title / 新标题"
    renamed = Item(items[2].key, new_title, new_title)
    site.set_items([items[0], items[1], renamed])
    if how == "export":
        site.fetch()
        site.export(out)
    else:
        site.fetch("--export", str(out))

    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert old_rel not in files
    mine = [rel for rel in files if rel.endswith(f"-{article_id}.md")]
    assert len(mine) == 1, files
    data, _ = read_post((out / mine[0]).read_text(encoding="utf-8"))
    assert data["title"] == renamed.expected
    assert len(files) == 3, files
    for rel, text in untouched.items():
        assert (out / rel).read_text(encoding="utf-8") == text
    assert site.article_count() == 3


def test_changed_channel_moves_the_file(tmp_path: Path, httpserver: HTTPServer) -> None:
    item = ITEMS[0]
    site = Site(tmp_path, httpserver, [item], with_seed=False)
    out = tmp_path / "posts"
    site.fetch()
    site.export(out)
    (old_rel,) = posts(out)
    match = re.search(r"-(\d+)\.md$", old_rel)
    assert match, old_rel

    site.feeds[0]["channel"] = "Renamed channel"
    site.write_config()
    site.set_items([Item(item.key, "Moved: a new title", "Moved: a new title", body=item.body)])
    site.fetch()
    site.export(out)

    files = sorted(posts(out))
    mine = [rel for rel in files if rel.endswith(f"-{match.group(1)}.md")]
    assert len(mine) == 1, files  # fails today: the old folder's file is still there
    data, _ = read_post((out / mine[0]).read_text(encoding="utf-8"))
    assert data["title"] == "Moved: a new title"
    assert data["categories"] == [CATEGORY, SOURCE, "Renamed channel"]
