"""The fast feed path gives exactly what feedparser gives, or steps aside.

Every document the fast path accepts is parsed both ways and the entries
compared field by field: corpus feeds nobody here wrote, the benchmark's
synthetic feeds, and documents hypothesis builds from awkward values.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, SEED, need
from corpus_server import header_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scraper.fastfeed import fast_parse
from scraper.parser import FeedParseError, ParsedFeed, parse_feed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from workload import Workload

URL = "http://example.com/news/feed.xml"


def both(data: bytes, headers: dict[str, str], url: str = URL
         ) -> tuple[ParsedFeed, ParsedFeed] | None:
    """(fast, feedparser) when the fast path takes the document, else None."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if fast_parse(data, {**lowered, "content-location": url}, url) is None:
        return None
    return parse_feed(data, url, headers), parse_feed(data, url, headers, fast=False)


def assert_same(fast: ParsedFeed, slow: ParsedFeed) -> None:
    assert (fast.title, fast.ttl, len(fast.entries)) == (slow.title, slow.ttl, len(slow.entries))
    for mine, theirs in zip(fast.entries, slow.entries, strict=True):
        assert mine == theirs


def _corpus_files() -> list[Path]:
    files = sorted((CORPUS / "feedparser").rglob("*.xml"))
    files += sorted(p for p in (CORPUS / "finance-en" / "feeds").rglob("*") if p.is_file())
    return files


def test_corpus_feeds_read_the_same_both_ways() -> None:
    need(CORPUS / "feedparser")
    accepted = 0
    for path in _corpus_files():
        data = path.read_bytes()
        headers = dict(header_lines(data)) or {"Content-Type": "application/xml"}
        headers.setdefault("Content-Type", "application/xml")
        try:
            pair = both(data, headers)
        except FeedParseError:
            pytest.fail(f"{path}: the fast path took a document feedparser rejects")
        if pair is not None:
            accepted += 1
            assert_same(*pair), path
    # the fast path must really be used, not step aside every time
    assert accepted >= 140


def test_seed_feed_takes_the_fast_path() -> None:
    need(SEED / "feed.xml")
    pair = both((SEED / "feed.xml").read_bytes(), {"Content-Type": "application/rss+xml"})
    assert pair is not None
    assert_same(*pair)


def test_benchmark_feeds_take_the_fast_path_and_decode_gbk_header_only() -> None:
    for mode in ("content", "summary"):
        w = Workload(feeds=30, items=5, mode=mode)
        for feed in range(w.feeds):
            body, ctype = w.feed_doc("http://127.0.0.1:9", feed)
            pair = both(body, {"Content-Type": ctype})
            assert pair is not None, (mode, feed, ctype)
            assert_same(*pair)
            titles = [e.title for e in pair[0].entries]
            assert titles == [w.title(feed, i) for i in range(w.items)]


def test_documents_outside_the_subset_step_aside() -> None:
    rss = b'<rss version="2.0"><channel><title>t</title><item>%s</item></channel></rss>'
    cases = {
        "xml:base": rss % b'<title xml:base="http://x/">a</title>',
        "unknown element": rss % b"<foo>bar</foo>",
        "markup in title": rss % b"<title>a <b>b</b></title>",
        "doctype": b'<!DOCTYPE rss [<!ENTITY a "b">]>' + rss % b"<title>&a;</title>",
        "two titles": rss % b"<title>a</title><title>b</title>",
    }
    for name, data in cases.items():
        assert fast_parse(data, {"content-type": "application/rss+xml"}, URL) is None, name
    text_html = {"content-type": "text/html; charset=utf-8"}
    assert fast_parse(rss % b"<title>a</title>", text_html, URL) is None


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)
_awkward = st.one_of(
    _text,
    st.sampled_from(["  S&P 500  ", "caf\u00c3\u00a9", "\x93quoted\x94", "a &amp; b",
                     "<b>bold</b>", "", " ", "50% off…", "日本語 \u3000"]),
)
_dates = st.sampled_from(["Mon, 06 Sep 2010 00:01:00 +0000", "2024-02-01T08:00:00+08:00",
                          "2024-02-01", "Tue, 31 Feb 2024 25:00:00 GMT", "garbage", "",
                          "Sun, 1 Nov 2026 10:00:00 EST"])
_links = st.sampled_from(["http://example.com/a?x=1&y=2", "/relative/path", "a b", "",
                          "javascript:alert(1)", "https://例え.jp/記事", "urn:uuid:1234",
                          "http://example.com/a?x=1&amp;y=2"])


def _xml(text: str) -> str:
    return html.escape(text, quote=False)


@st.composite
def rss_items(draw: st.DrawFn) -> str:
    parts = [f"<title>{_xml(draw(_awkward))}</title>"]
    if draw(st.booleans()):
        parts.append(f"<link>{_xml(draw(_links))}</link>")
    if draw(st.booleans()):
        permalink = draw(st.sampled_from(["", ' isPermaLink="false"', ' isPermaLink="true"',
                                          ' isPermaLink="False"']))
        parts.append(f"<guid{permalink}>{_xml(draw(_links))}</guid>")
    if draw(st.booleans()):
        parts.append(f"<description>{_xml(draw(_awkward))}</description>")
    if draw(st.booleans()):
        parts.append(f"<content:encoded><![CDATA[{draw(_awkward)}]]></content:encoded>")
    if draw(st.booleans()):
        parts.append(f"<pubDate>{draw(_dates)}</pubDate>")
    if draw(st.booleans()):
        parts.append(f"<dc:date>{draw(_dates)}</dc:date>")
    if draw(st.booleans()):
        parts.append(f"<author>{_xml(draw(_awkward))}</author>")
    if draw(st.booleans()):
        parts.append(f'<enclosure url="{html.escape(draw(_links))}" type="Image/JPEG"/>')
    if draw(st.booleans()):
        parts.append(f'<media:thumbnail url="{html.escape(draw(_links))}"/>')
    return "<item>" + "".join(draw(st.permutations(parts))) + "</item>"


@st.composite
def atom_entries(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["", ' type="html"', ' type="text"']))
    parts = [f"<title{kind}>{_xml(draw(_awkward))}</title>"]
    if draw(st.booleans()):
        rel = draw(st.sampled_from(["", ' rel="alternate"', ' rel="enclosure" type="image/png"',
                                    ' rel="related"', ' rel="alternate" type="text/plain"']))
        parts.append(f'<link{rel} href="{html.escape(draw(_links))}"/>')
    if draw(st.booleans()):
        parts.append(f"<id>{_xml(draw(_links))}</id>")
    if draw(st.booleans()):
        parts.append(f"<summary{kind}>{_xml(draw(_awkward))}</summary>")
    if draw(st.booleans()):
        parts.append(f"<content{kind}>{_xml(draw(_awkward))}</content>")
    for tag in ("published", "updated"):
        if draw(st.booleans()):
            parts.append(f"<{tag}>{draw(_dates)}</{tag}>")
    if draw(st.booleans()):
        name, email = draw(_awkward), draw(st.sampled_from(["", "a@b.example"]))
        inner = (f"<name>{_xml(name)}</name>" if name else "") + \
            (f"<email>{email}</email>" if email else "")
        parts.append(f"<author>{inner}</author>")
    return "<entry>" + "".join(draw(st.permutations(parts))) + "</entry>"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(rss_items(), max_size=3), title=_awkward,
       charset=st.sampled_from(["utf-8", "gb18030"]))
def test_generated_rss_reads_the_same_both_ways(items: list[str], title: str,
                                                charset: str) -> None:
    doc = ('<?xml version="1.0"?><rss version="2.0" '
           'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
           'xmlns:dc="http://purl.org/dc/elements/1.1/" '
           'xmlns:media="http://search.yahoo.com/mrss/">'
           f"<channel><title>{_xml(title)}</title>{''.join(items)}</channel></rss>")
    pair = both(doc.encode(charset), {"Content-Type": f"application/rss+xml; charset={charset}"})
    assert pair is not None  # every generated element is in the subset
    assert_same(*pair)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(atom_entries(), max_size=3))
def test_generated_atom_reads_the_same_both_ways(entries: list[str]) -> None:
    doc = ('<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
           f"{''.join(entries)}</feed>")
    pair = both(doc.encode("utf-8"), {"Content-Type": "application/atom+xml"})
    if pair is not None:
        assert_same(*pair)


_MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@st.composite
def strict_dates(draw: st.DrawFn) -> str:
    y, mo, d = draw(st.integers(0, 9999)), draw(st.integers(0, 13)), draw(st.integers(0, 32))
    h, mi, s = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    sign, oh, om = draw(st.sampled_from("+-")), draw(st.integers(0, 23)), draw(st.integers(0, 59))
    if draw(st.booleans()):
        zone = draw(st.sampled_from(["GMT", "UT", "UTC", "Z", f"{sign}{oh:02d}{om:02d}"]))
        day = draw(st.sampled_from(["", "Mon, ", "Sat, "]))
        return f"{day}{d} {_MONTH_NAMES[mo % 12]} {y:04d} {h:02d}:{mi:02d}:{s:02d} {zone}"
    zone = draw(st.sampled_from(["Z", f"{sign}{oh:02d}:{om:02d}"]))
    frac = draw(st.sampled_from(["", ".5", ".123456"]))
    if draw(st.booleans()):
        return f"{y:04d}-{mo:02d}-{d:02d}"
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{zone}"


@settings(max_examples=400, deadline=None)
@given(strict_dates())
def test_dates_read_on_the_fast_path_match_feedparser(text: str) -> None:
    from feedparser.datetimes import _parse_date as feedparser_date

    from scraper.fastfeed import _parse_date

    assert _parse_date(text) == feedparser_date(text)
