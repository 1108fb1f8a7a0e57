"""GB2312/GBK labels are read as GB18030, in feeds and in article pages alike."""

from __future__ import annotations

import pytest

from scraper.charsets import relabel, relabel_content_type, relabel_xml_declaration
from scraper.extractor import decode_page, extract
from scraper.parser import parse_feed

# 镕 and 堃 are in GBK, not GB2312; 䶮 is in GB18030 only (four bytes)
TITLES = ["朱镕基讲话", "王堃任董事长", "刘䶮与南汉"]


@pytest.mark.parametrize("label", [
    "gb2312", "GB2312", " gbk ", "x-gbk", "csgb2312", "gb_2312-80", "chinese", "cp936",
    "euc-cn", "iso-ir-58",
])
def test_gb2312_and_gbk_labels_are_read_as_gb18030(label: str) -> None:
    assert relabel(label) == "gb18030"


@pytest.mark.parametrize("label", ["gb18030", "utf-8", "big5", "hz", "shift_jis", "gbk2"])
def test_other_labels_are_kept(label: str) -> None:
    assert relabel(label) == label


def test_header_and_declaration_keep_everything_but_the_label() -> None:
    assert relabel_content_type('text/xml; charset="GBK"') == 'text/xml; charset="gb18030"'
    assert relabel_content_type("text/xml; charset=utf-8") == "text/xml; charset=utf-8"
    doc = b"\xef\xbb\xbf<?xml version='1.0' encoding='gb2312' standalone='yes'?><rss/>"
    assert relabel_xml_declaration(doc) == doc.replace(b"gb2312", b"gb18030")
    # only a declaration at the start counts
    text = b"<rss><title>encoding='gbk'</title></rss>"
    assert relabel_xml_declaration(text) == text


def _feed(declaration: str) -> bytes:
    items = "".join(f"<item><title>{t}</title><link>http://news.example/{i}</link>"
                    f"<description>{t}。</description></item>" for i, t in enumerate(TITLES))
    head = f'<?xml version="1.0" encoding="{declaration}"?>' if declaration else ""
    return (f"{head}<rss version='2.0'><channel><title>财经</title>{items}</channel></rss>"
            ).encode("gb18030")


@pytest.mark.parametrize("fast", [True, False], ids=["fastfeed", "feedparser"])
@pytest.mark.parametrize(("declaration", "content_type"), [
    ("gb2312", "application/xml"),  # the declaration alone
    ("", "application/rss+xml; charset=gbk"),  # the header alone
    ("GBK", 'text/xml; charset="GB2312"'),  # both, quoted, upper case
])
def test_gb_labelled_feed_reads_characters_outside_its_label(
    declaration: str, content_type: str, fast: bool
) -> None:
    feed = parse_feed(_feed(declaration), "http://news.example/feed",
                      {"Content-Type": content_type}, fast=fast)
    assert [e.title for e in feed.entries] == TITLES
    assert feed.entries[0].summary == f"{TITLES[0]}。"


@pytest.mark.parametrize(("meta", "content_type"), [
    ('<meta charset="gb2312">', ""),
    ('<meta http-equiv="Content-Type" content="text/html; charset=GBK">', ""),
    ("", "text/html; charset=gb2312"),
])
def test_gb_labelled_page_reads_characters_outside_its_label(meta: str, content_type: str) -> None:
    body = "".join(f"<p>{t}，这是一段足够长的正文，用来让提取器认出文章的主体内容。</p>" for t in TITLES)
    page = (f"<html><head>{meta}<title>{TITLES[0]}</title></head><body><article>"
            f"{body * 3}</article></body></html>").encode("gb18030")
    text, encoding = decode_page(page, content_type)
    assert encoding == "gb18030" and all(t in text for t in TITLES)
    extracted = extract(page, "http://news.example/a/1.html", content_type=content_type)
    assert extracted.title == TITLES[0]
    assert all(t in extracted.text for t in TITLES)
