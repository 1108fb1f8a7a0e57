"""The reference format: titles, dates, YAML, body rules, sanitizing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
import yaml
from conftest import front_matter_and_body
from hypothesis import given
from hypothesis import strategies as st

from scraper.config import FeedConfig
from scraper.parser import parse_feed
from scraper.record import (
    Record,
    body_for_hexo,
    build_record,
    clean_title,
    format_date,
    render_post,
)
from scraper.sanitize import clean_html

FEED = FeedConfig(url="http://127.0.0.1/feed", category="金融", source="新浪财经",
                  channel="新浪财经－国內", full_text="never")


def _record(title: str = "t", body: str = "<p>x</p>", **kw: object) -> Record:
    base = dict(url="http://a/1", guid="g", feed_url=FEED.url, title=title, author="新浪财经",
                categories=("金融", "新浪财经"), headimg="", body=body,
                published=datetime(2024, 2, 1, 8, 0, tzinfo=UTC))
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ("Fed &lt;b&gt;holds&lt;/b&gt; rates", "Fed holds rates"),
        ("Fed <b>holds</b>", "Fed holds"),
        ("  央行\u3000\u3000宣布\n降准  ", "央行 宣布 降准"),
        ("AT&amp;T: 'quotes' \"too\"", "AT&T: 'quotes' \"too\""),
        ("a < b and c > d", "a < b and c > d"),
        ("bell\x07 char", "bell char"),
    ],
)
def test_title_rules(raw: str, title: str) -> None:
    assert clean_title(raw) == title


def test_missing_title_takes_first_60_characters_of_text() -> None:
    body = "<p>" + "央行宣布降准" * 20 + "</p>"
    assert clean_title("", body) == ("央行宣布降准" * 20)[:60]


def test_date_is_rfc822_gmt_in_english_whatever_the_zone() -> None:
    shanghai = timezone(timedelta(hours=8))
    assert format_date(datetime(2022, 6, 13, 21, 22, 54, tzinfo=shanghai)) == (
        "Mon, 13 Jun 2022 13:22:54 GMT"
    )


@given(st.text(max_size=200))
def test_any_title_survives_yaml(raw: str) -> None:
    title = clean_title(raw)
    fm, _ = front_matter_and_body(render_post(_record(title=title), datetime.now(UTC)))
    assert yaml.safe_load(fm)["title"] == title


@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=3))
def test_any_category_survives_yaml(names: list[str]) -> None:
    names = [" ".join(n.split()) for n in names if n.split()]
    record = _record(categories=tuple(n for n in names if clean_title(n) == n))
    fm, _ = front_matter_and_body(render_post(record, datetime.now(UTC)))
    assert (yaml.safe_load(fm)["categories"] or []) == list(record.categories)


def test_front_matter_keys_in_reference_order() -> None:
    fm, body = front_matter_and_body(render_post(_record(), datetime.now(UTC)))
    keys = [line.split(":")[0] for line in fm.splitlines() if not line.startswith(" ")]
    assert keys == ["title", "categories", "headimg", "author", "comments", "date", "thumbnail"]
    assert body.startswith("<div>\n") and body.rstrip().endswith("</div>")


def test_body_for_hexo_escapes_braces_fences_and_blank_lines() -> None:
    body = "<p>{{ x }} {% raw %}</p>\n\n\n    <p>code?</p>\n```js\nx\n```\n<pre>a\n\nb</pre>"
    out = body_for_hexo(body)
    assert "{" not in out and "}" not in out
    assert "&#123;&#123; x &#125;&#125;" in out
    assert "```" not in out
    assert not any(not line.strip() for line in out.split("\n"))
    assert "<pre>a&#10;\nb</pre>" in out  # blank line inside <pre> kept as a newline


def test_sanitizer_removes_active_content_and_keeps_the_rest_verbatim() -> None:
    html = (
        '<!-- note <img src="/ad.png"> --><style>.a{color:red}</style>'
        '<p cms-style="font-L" onclick="evil()">Hi <a href="javascript:alert(1)">x</a>'
        '<a href="/rel?a=1&amp;b=2">rel</a></p><script>alert(1)</script>'
        '<iframe src="https://evil.example/x"></iframe>'
        '<iframe src="https://www.youtube.com/embed/abc"></iframe>'
        '<img data-src="lazy.jpg" src="data:image/gif;base64,R0l"><object><embed src=x></object>'
    )
    out = clean_html(html, "https://news.example/a/b.html")
    assert out.html.startswith('<!-- note <img src="/ad.png"> --><style>.a{color:red}</style>')
    assert "onclick" not in out.html and "javascript:" not in out.html
    assert "<script" not in out.html and "alert(1)" not in out.html
    assert "evil.example" not in out.html and "youtube.com/embed/abc" in out.html
    assert 'href="https://news.example/rel?a=1&amp;b=2"' in out.html
    assert 'src="https://news.example/a/lazy.jpg"' in out.html
    assert "<object" not in out.html and "<embed" not in out.html
    assert out.first_image == "https://news.example/a/lazy.jpg"  # not the one in the comment


def test_relative_urls_resolve_against_xml_base_then_link_then_feed() -> None:
    feed = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
    <entry><title>based</title><id>1</id><link href="http://site.example/post/1"/>
      <content type="html" xml:base="http://cdn.example/dir/">&lt;img src="a.png"&gt;</content>
    </entry>
    <entry><title>linked</title><id>2</id><link href="http://site.example/post/2"/>
      <content type="html">&lt;img src="b.png"&gt;</content></entry>
    <entry><title>bare</title><id>3</id><content type="html">&lt;img src="c.png"&gt;</content>
    </entry></feed>"""
    parsed = parse_feed(feed, "http://feeds.example/x/atom.xml")
    heads = [build_record(e, FEED).headimg for e in parsed.entries]
    assert heads == [
        "http://cdn.example/dir/a.png",
        "http://site.example/post/b.png",
        "http://feeds.example/x/c.png",
    ]


def test_headimg_falls_back_to_media_thumbnail() -> None:
    feed = b"""<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title>
    <item><title>x</title><link>http://a.example/1</link><description>no image</description>
    <media:thumbnail url="/thumb.jpg"/></item></channel></rss>"""
    entry = parse_feed(feed, "http://a.example/feed").entries[0]
    assert build_record(entry, FEED).headimg == "http://a.example/thumb.jpg"


def test_content_encoded_wins_over_description() -> None:
    feed = b"""<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
    <channel><title>t</title><item><title>x</title><link>http://a.example/1</link>
    <description>short</description><content:encoded><![CDATA[<p>full text</p>]]></content:encoded>
    </item></channel></rss>"""
    record = build_record(parse_feed(feed, "http://a.example/feed").entries[0], FEED)
    assert record.body == "<p>full text</p>" and not record.summary_only
    assert re.fullmatch(r"[0-9a-f]{64}", record.content_hash)
