"""Extraction core: decoding, site rules, selectors, images, dates, auto full text.

Local pages only (no network). Corpus pages are used when present and skipped
with a message otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scraper.extractor import decode_page, extract, needs_full_text
from scraper.rules import rule_for
from scraper.sanitize import clean_html

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
GNE = CORPUS / "finance-zh" / "gne"
CST = timezone(timedelta(hours=8))

PARAS = "".join(
    f"<p>Paragraph {i} of the article tells the story, with enough words, commas, and "
    f"detail to read like real prose about markets, rates and earnings.</p>"
    for i in range(6)
)


def page(body: str, head: str = "", title: str = "Markets rally") -> str:
    return (
        f"<!doctype html><html><head><title>{title}</title>{head}</head><body>"
        f"<nav><a href='/'>Home</a> <a href='/markets'>Markets</a></nav>{body}"
        f"<footer>Copyright 2024 Example News. <a href='/privacy'>Privacy</a></footer>"
        f"</body></html>"
    )


def corpus_file(rel: str) -> bytes:
    path = GNE / rel
    if not path.exists():
        pytest.skip(f"corpus page {path} not present")
    return path.read_bytes()


# -- site rules ----------------------------------------------------------------

def test_sina_rule_on_real_page():
    raw = corpus_file("sina/2.html")
    url = "https://finance.sina.com.cn/roll/2018-12-28/doc-ihqfskcn2160999.shtml"
    got = extract(raw, url)
    assert got.method == "rule:sina.com.cn"
    assert "新京报快讯" in got.text
    assert "中国铁路总公司通过官方微博发布辟谣消息" in got.text
    assert "责任编辑" not in got.text
    assert "appendQr" not in got.html and "<script" not in got.html
    assert got.title.startswith("60万")
    assert got.published == datetime(2018, 12, 28, 19, 56, 29, tzinfo=CST)
    assert got.image.startswith("https://")
    # the lead passes it through the sanitizer: nothing is lost there
    assert "新京报快讯" in clean_html(got.html, url).html


def test_sina_rule_removes_boilerplate_synthetic():
    body = (
        '<div class="article" id="artibody"><p>　　新浪财经讯 央行今日开展逆回购操作，'
        '市场流动性保持合理充裕，债市情绪稳定。</p>'
        '<div class="appendQr_wrap"><img src="qr.png">扫二维码下载新浪财经APP</div>'
        '<div class="share">分享到微博</div><ins class="sinaads">ad</ins>'
        '<p class="article-editor">责任编辑：张三</p><p>责任编辑：李四</p></div>'
    )
    got = extract(page(body), "https://finance.sina.com.cn/roll/doc-1.shtml")
    assert got.method == "rule:sina.com.cn"
    assert "逆回购" in got.text
    for junk in ("责任编辑", "二维码", "分享到", "qr.png", "ad"):
        assert junk not in got.text
        assert junk not in got.html.replace("<p>", "").replace("</p>", "")


def test_rule_matches_parent_domain_and_final_host():
    assert rule_for("finance.sina.com.cn")[0] == "sina.com.cn"
    assert rule_for("www.cnbc.com")[0] == "cnbc.com"
    assert rule_for("example.org") is None
    # the rule of the host the page came from (after a redirect), not the feed's
    body = '<div id="ContentBody"><p>东方财富网讯 沪指今日收涨，成交额放大，北向资金净流入。</p></div>'
    assert extract(page(body), "https://finance.eastmoney.com/a/1.html").method == \
        "rule:eastmoney.com"
    assert extract(page(body + PARAS), "https://example.org/a").method == "generic"


def test_rule_without_match_falls_back_to_generic():
    got = extract(page(f"<div class='story'>{PARAS}</div>"), "https://finance.sina.com.cn/x")
    assert got.method == "generic"
    assert "Paragraph 5" in got.text


# -- selector override ---------------------------------------------------------

def test_selector_override_wins():
    body = (f"<div id='main'>{PARAS}</div>"
            "<div class='brief'><p>Only this short brief is wanted.</p></div>")
    got = extract(page(body), "https://finance.sina.com.cn/x", selector=".brief")
    assert got.method == "selector"
    assert got.text == "Only this short brief is wanted."
    # a selector that matches nothing falls back to the rules/generic
    assert extract(page(body), "https://example.org/x", selector="#nope").method == "generic"


def test_generic_drops_boilerplate_and_keeps_structure():
    body = (
        "<div class='sidebar'><ul><li><a href='/a'>Most read one</a></li>"
        "<li><a href='/b'>Most read two</a></li></ul></div>"
        f"<article><h1>Markets rally</h1>{PARAS}<h2>Outlook</h2>"
        "<ul><li>Rates steady at five percent, according to the central bank.</li>"
        "<li>Earnings beat estimates, analysts said, across most sectors.</li></ul>"
        "<table><tr><th>Index</th><th>Close</th></tr><tr><td>DJIA</td><td>39,000</td></tr></table>"
        "<div class='share-bar'><a href='https://twitter.com/x'>Tweet</a></div>"
        "<script>track()</script></article>"
    )
    got = extract(page(body), "https://example.org/news/1")
    assert got.method == "generic"
    for tag in ("<p>", "<h2>", "<ul>", "<li>", "<table>", "<td>"):
        assert tag in got.html
    assert "Most read" not in got.text and "Tweet" not in got.text
    assert "track()" not in got.html and "Privacy" not in got.text
    assert "Markets rally" not in got.text  # the repeated title is not body
    assert "class=" not in got.html and "\n\n" not in got.html


# -- images --------------------------------------------------------------------

def _img_page(img_html: str) -> str:
    return page(f"<article>{PARAS}<figure>{img_html}</figure>{PARAS}</article>")


@pytest.mark.parametrize(
    ("img", "expected"),
    [
        ('<img data-src="/img/a.jpg" src="data:image/gif;base64,R0lGOD">',
         "https://example.org/img/a.jpg"),
        ('<img data-original="https://cdn.example.org/b.jpg" src="/static/blank.gif">',
         "https://cdn.example.org/b.jpg"),
        ('<img srcset="/c-small.jpg 320w, /c-large.jpg 1024w">',
         "https://example.org/c-large.jpg"),
        ('<img data-srcset="/d-1x.jpg 1x, /d-2x.jpg 2x" class="lazy">',
         "https://example.org/d-2x.jpg"),
        ('<img class="lazy"><noscript><img src="/e.jpg" alt="E"></noscript>',
         "https://example.org/e.jpg"),
        ('<img src="pics/f.png" alt="F">', "https://example.org/news/pics/f.png"),
    ],
)
def test_image_sources(img, expected):
    got = extract(_img_page(img), "https://example.org/news/1")
    assert f'src="{expected}"' in got.html
    assert "data:image" not in got.html
    assert got.image == expected
    assert clean_html(got.html, "https://example.org/news/1").first_image == expected


def test_tracking_pixels_dropped():
    imgs = ('<img src="https://t.example.com/p.gif" width="1" height="1">'
            '<img src="https://stats.example.com/pixel.gif">'
            '<img src="https://example.org/real.jpg" width="600">')
    got = extract(_img_page(imgs), "https://example.org/news/1")
    assert "p.gif" not in got.html and "pixel.gif" not in got.html
    assert 'src="https://example.org/real.jpg"' in got.html


def test_og_image_wins_and_links_absolute():
    head = '<meta property="og:image" content="/og.jpg">'
    got = extract(page(f"<article>{PARAS}<p><a href='../other'>more</a> text here "
                       f"long enough to stay inside the paragraph for sure.</p></article>",
                       head), "https://example.org/news/1")
    assert got.image == "https://example.org/og.jpg"
    assert 'href="https://example.org/other"' in got.html


# -- charsets ------------------------------------------------------------------

ZH_BODY = "".join(
    f"<p>第{i}段：中国人民银行今日宣布下调存款准备金率，释放长期资金约一万亿元，"
    f"市场人士认为此举有助于稳定经济增长预期。</p>" for i in range(4)
)


def test_gbk_page_with_gb2312_meta():
    html = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
            f'<title>央行降准</title></head><body><div id="artibody">{ZH_BODY}'
            '<p>珺镕</p></div></body></html>')  # 珺/镕 are outside GB2312: needs gbk/gb18030
    raw = html.encode("gbk")
    text, encoding = decode_page(raw)
    assert encoding == "gb18030" and "珺镕" in text
    got = extract(raw, "https://finance.sina.com.cn/roll/doc-2.shtml")
    assert got.title == "央行降准"
    assert "下调存款准备金率" in got.text and "珺镕" in got.text
    assert "\ufffd" not in got.text


def test_http_charset_beats_meta():
    raw = ('<html><head><meta charset="iso-8859-1"><title>x</title></head><body>'
           f'<div id="artibody">{ZH_BODY}</div></body></html>').encode("gb18030")
    assert decode_page(raw, "text/html; charset=GBK")[1] == "gb18030"
    got = extract(raw, "https://finance.sina.com.cn/a", content_type="text/html; charset=GBK")
    assert "存款准备金率" in got.text


def test_charset_lie_meta_gb2312_bytes_utf8_synthetic():
    raw = ('<html><head><meta charset="gb2312"><title>交通运输部</title></head><body>'
           f'<div class="art_contextBox">{ZH_BODY}</div></body></html>').encode()
    text, encoding = decode_page(raw)
    assert encoding == "utf-8" and "交通运输部" in text


def test_charset_lie_hexun_real_page():
    raw = corpus_file("hexun/1.html")
    got = extract(raw, "https://stock.hexun.com/2019-09-26/198678130.html?from=rss")
    assert got.title == "交通运输部：着力打造京津冀区域综合立体交通网络"
    assert "京津冀交通一体化建设" in got.text
    assert "\ufffd" not in got.text


def test_bom_and_undeclared_legacy_bytes():
    assert decode_page(b"\xef\xbb\xbf<p>caf\xc3\xa9</p>")[0] == "<p>café</p>"
    raw = ("<html><body><p>" + "证券市场今日震荡上行，成交量温和放大。" * 20
           + "</p></body></html>").encode("gb18030")
    text, _ = decode_page(raw)
    assert "证券市场今日震荡上行" in text


# -- dates and authors ---------------------------------------------------------

def test_date_from_meta_published_time():
    head = ('<meta property="article:published_time" content="2024-03-05T14:30:00Z">'
            '<meta name="author" content="By Jane Doe">')
    got = extract(page(f"<article>{PARAS}</article>", head), "https://example.org/a")
    assert got.published == datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    assert got.author == "Jane Doe"


def test_date_and_author_from_json_ld():
    head = ('<script type="application/ld+json">{"@context":"https://schema.org",'
            '"@graph":[{"@type":"WebSite","name":"X"},{"@type":"NewsArticle",'
            '"headline":"H","datePublished":"2024-03-05T09:00:00-05:00",'
            '"author":[{"@type":"Person","name":"Ann Lee"}],'
            '"image":{"@type":"ImageObject","url":"https://example.org/ld.jpg"}}]}</script>')
    got = extract(page(f"<article>{PARAS}</article>", head), "https://example.org/a")
    assert got.published == datetime(2024, 3, 5, 14, 0, tzinfo=UTC)
    assert got.author == "Ann Lee"
    assert got.image == "https://example.org/ld.jpg"


def test_naive_date_read_in_tz_hint():
    head = '<meta name="publishdate" content="2024-03-05 08:00:00">'
    doc = page(f"<article>{PARAS}</article>", head)
    got = extract(doc, "https://example.org/a", tz_hint="+08:00")
    assert got.published == datetime(2024, 3, 5, 0, 0, tzinfo=UTC)
    assert extract(doc, "https://example.org/a").published == datetime(2024, 3, 5, 8, tzinfo=UTC)
    named = extract(doc, "https://example.org/a", tz_hint="Asia/Shanghai")
    assert named.published == datetime(2024, 3, 5, 0, 0, tzinfo=UTC)


def test_visible_chinese_date_defaults_to_utc8():
    body = (f'<div class="date-source"><span class="date">2024年03月05日 09:15</span></div>'
            f'<div id="artibody">{ZH_BODY}</div>')
    got = extract(page(body, title="央行降准"), "https://finance.sina.com.cn/a")
    assert got.published == datetime(2024, 3, 5, 1, 15, tzinfo=UTC)


# -- auto full text ------------------------------------------------------------

@pytest.mark.parametrize(
    ("content", "summary", "fetch", "why"),
    [
        ("", "", True, "no content"),
        ("", "Stocks rose on Tuesday.", True, "short"),
        ("", "<p>" + "Stocks rose on Tuesday as investors cheered. " * 20 + "</p>", False, "full"),
        ("", "<p>" + "Stocks rose on Tuesday as investors cheered. " * 20 + "…</p>", True,
         "truncated"),
        ("", "<p>" + "Stocks rose. " * 60 + '</p><a href="/a">Read more</a>', True, "truncated"),
        ("", "<p>" + "央行今日开展逆回购操作，市场流动性保持合理充裕。" * 10 + "</p>", False, "full"),
        ("", "<p>央行今日开展逆回购操作，市场流动性保持合理充裕。阅读全文</p>", True,
         "truncated"),
        ("<p>" + "Full body text of the article. " * 30 + "</p>", "Short teaser.", False, "full"),
        ("<p>Tiny.</p>", "<p>" + "Long summary text. " * 40 + "</p>", True, "short"),
    ],
)
def test_needs_full_text(content, summary, fetch, why):
    decision, reason = needs_full_text(content, summary)
    assert decision is fetch
    assert why in reason


# -- robustness ----------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"", b"   ", "plain text, no markup", b"<html></html>",
                                 "<?xml version='1.0' encoding='utf-8'?><html><body><p>x</p>"
                                 "</body></html>", b"\x00\x01\x02"])
def test_degenerate_pages_do_not_crash(raw):
    got = extract(raw, "https://example.org/a")
    assert isinstance(got.html, str) and isinstance(got.text, str)


# -- the extractor's output is already clean ------------------------------------
# `Record.with_full_text(clean=True)` skips the sanitizer for extractor output:
# these tests hold the extractor to writing nothing the sanitizer would change.

def _assert_clean(page: bytes, url: str) -> None:
    from scraper.sanitize import first_image

    out = extract(page, url)
    again = clean_html(out.html, url)
    assert again.html == out.html
    assert again.first_image == first_image(out.html, url)


def test_extractor_output_is_what_the_sanitizer_would_write_on_corpus_pages() -> None:
    from conftest import CORPUS, need

    folder = need(CORPUS / "article-extraction" / "html")
    pages = sorted(folder.iterdir())[:120]
    pages += sorted((CORPUS / "finance-en" / "articles").rglob("*.htm*"))
    assert len(pages) > 100
    for path in pages:
        _assert_clean(path.read_bytes(), "https://news.example.com/a/b.html")


_HOSTILE = [
    '<script>alert(1)</script>', '<img src="x.png" onerror="alert(1)" width="300">',
    '<a href="javascript:alert(1)">link text here</a>', '<a href=" JaVaScRiPt:x">t</a>',
    '<iframe src="https://evil.example/"></iframe>', '<svg onload="alert(1)"><circle/></svg>',
    '<object data="x.swf"></object>', '<style>p{color:red}</style>', '<!-- a comment -->',
    '<form action="/x"><input name="q"></form>', '<p style="x" onclick="y">styled words</p>',
    '<img data-src="/lazy.jpg" src="data:image/gif;base64,R0lGOD">', '<math><mi>x</mi></math>',
    '<a href="data:text/html,<script>x</script>">d</a>', '<img src="/pixel.gif" width="1" height="1">',
    '<noscript><img src="/real.jpg"></noscript>', '<embed src="x">', '&lt;script&gt; &amp; "q"',
    '<img src="/a b.png?x=1&amp;y=2" alt="a &quot;chart&quot;">', '<base href="https://evil/">',
    '<meta http-equiv="refresh" content="0;url=https://evil/">', '<table><tr><td>cell</td></tr></table>',
]


@settings(max_examples=120, deadline=None)
@given(st.lists(st.sampled_from(_HOSTILE), min_size=1, max_size=8), st.integers(2, 6))
def test_extractor_output_is_what_the_sanitizer_would_write_on_hostile_pages(
    bits: list[str], paragraphs: int
) -> None:
    prose = "The central bank held rates steady, citing sticky inflation and a tight labour market. "
    body = "".join(f"<p>{prose * 3}{bits[i % len(bits)]}</p>" for i in range(paragraphs))
    page = (f"<html><head><title>t</title></head><body><nav><a href='/'>Home</a></nav>"
            f"<article>{''.join(bits)}{body}</article><footer>(c)</footer></body></html>")
    _assert_clean(page.encode(), "https://news.example.com/2024/a.html")
