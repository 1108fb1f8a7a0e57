"""Article extraction: an article page in, its main content out (pure, no I/O).

`extract` decodes the page (HTTP charset, BOM, `<meta charset>`, with detection
when the claimed charset is a lie), parses it once with lxml, reads the
metadata (title, image, date, author) and finds the body: a per-feed CSS
selector first, then the site rules of `scraper.rules` (matched on the final
URL's host), then a generic readability-style scorer of our own. The body
comes back as clean HTML (paragraphs, headings, lists, tables, figures with
images, links; no class/style/script) with lazy images resolved and URLs made
absolute, ready for `scraper.sanitize.clean_html`.

`needs_full_text` decides, for `full_text = "auto"`, whether an entry's own
content is only a summary.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from html import escape, unescape

import lxml.html
from lxml import etree

from scraper import charsets
from scraper.rules import Rule, rule_for
from scraper.urls import absolute, host_of

__all__ = ["Extracted", "decode_page", "extract", "needs_full_text"]


@dataclass(frozen=True)
class Extracted:
    """What `extract` found on an article page."""

    html: str
    text: str
    title: str
    image: str
    published: datetime | None
    author: str
    method: str  # "selector", "rule:<host>", "generic" ("" if nothing found)


# ---------------------------------------------------------------------------
# decoding

# GB2312/GBK labels are read as GB18030 by `scraper.charsets`
_ALIASES = {
    "big5": "big5hkscs", "iso-8859-1": "cp1252",
    "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252",
    "x-sjis": "shift_jis", "utf8": "utf-8", "unicode": "utf-8",
}
_CT_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_META_CHARSET = re.compile(
    rb"<meta[^>]+?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.I
)
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]+encoding\s*=\s*[\"']([\w.:-]+)", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    name = charsets.relabel(name.strip().lower())
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_page(page: bytes | str, content_type: str = "") -> tuple[str, str]:
    """(text, encoding used). Order: BOM, HTTP charset, `<meta>`/XML declaration,
    then UTF-8; a claimed charset that does not decode cleanly is checked against
    UTF-8 and charset detection (charset-normalizer) before replacement characters
    are accepted. gb2312/gbk are read as gb18030."""
    if isinstance(page, str):
        return page, "unicode"
    for bom, name in _BOMS:
        if page.startswith(bom):
            return page[len(bom):].decode(name, "replace"), name
    head = page[:8192]
    claimed = []
    match = _CT_CHARSET.search(content_type or "")
    if match:
        claimed.append(_codec(match.group(1)))
    for pattern in (_META_CHARSET, _XML_DECL):
        found = pattern.search(head)
        if found:
            claimed.append(_codec(found.group(1).decode("ascii", "replace")))
    claimed = [c for c in claimed if c and not c.startswith("utf-16")]
    ascii_only = page.isascii()
    # Valid UTF-8 with non-ASCII bytes is UTF-8 whatever the label says
    # (legacy CJK or Latin text almost never validates as UTF-8).
    if not ascii_only:
        try:
            return page.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    for name in claimed:
        try:
            return page.decode(name), name
        except UnicodeDecodeError:
            continue
    detected = _detect(page)
    if detected:
        return page.decode(detected, "replace"), detected
    name = claimed[0] if claimed else "utf-8"
    return page.decode(name, "replace"), name


def _detect(page: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # optional: fall back to the claimed charset
        return None
    best = from_bytes(page[:200_000]).best()
    return _codec(best.encoding) if best is not None else None


# ---------------------------------------------------------------------------
# parsing and metadata

_PARSER = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def _parse(text: str) -> lxml.html.HtmlElement | None:
    data = text.encode("utf-8", "replace").replace(b"\x00", b"")
    if not data.strip():
        return None
    try:
        return lxml.html.document_fromstring(data, parser=_PARSER)
    except (etree.ParserError, ValueError):
        return None


Metas = dict[tuple[str, str], str]
_META_ATTRS = ("property", "name", "itemprop")


def _meta_index(doc) -> Metas:
    """(attribute, value) -> first non-empty content of the page's `<meta>`s, in one
    pass (an XPath per looked-up name cost a few ms per page)."""
    index: Metas = {}
    for el in doc.iter("meta"):
        content = (el.get("content") or "").strip()
        if not content:
            continue
        for attr in _META_ATTRS:
            value = el.get(attr)
            if value is not None:
                index.setdefault((attr, value), content)
    return index


def _meta(metas: Metas, *names: str) -> str:
    for name in names:
        for attr in _META_ATTRS:
            value = metas.get((attr, name))
            if value:
                return value
    return ""


def _json_ld(doc) -> list[dict]:
    found: list[dict] = []
    for script in doc.xpath('//script[@type="application/ld+json"]'):
        try:
            data = json.loads(script.text or "")
        except ValueError:
            continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                found.append(item)
                if "@graph" in item:
                    stack.append(item["@graph"])
    return found


_ARTICLE_TYPES = re.compile(r"Article|Posting|Report|WebPage", re.I)


def _ld_value(items: list[dict], key: str) -> object:
    ordered = sorted(items, key=lambda d: not _ARTICLE_TYPES.search(str(d.get("@type", ""))))
    for item in ordered:
        if item.get(key):
            return item[key]
    return None


def _person(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return str(value.get("name") or "").strip()
    if isinstance(value, list):
        names = [_person(v) for v in value]
        return ", ".join(n for n in names if n)
    return ""


# -- dates -------------------------------------------------------------------

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2}):?(\d{2})?$", re.I)
_NUMERIC_DATE = re.compile(
    r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[T\s]*(\d{1,2})\s*[:时]\s*(\d{2})(?:\s*[:分]\s*(\d{2}))?)?"
    r"(?:\s*(Z|[+-]\d{2}:?\d{2}))?"
)


def _tzinfo(hint: str) -> timezone | None:
    hint = (hint or "").strip()
    if not hint:
        return None
    match = _OFFSET.match(hint)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))
        return timezone(sign * delta)
    if hint.upper() in ("UTC", "GMT", "Z"):
        return UTC
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(hint)  # type: ignore[return-value]
    except Exception:  # unknown zone name: treat as no hint
        return None


def parse_date(value: str, tz: timezone | None = None) -> datetime | None:
    """A date from ISO 8601, RFC 822 or a numeric (also Chinese) form; naive ones
    are read in `tz` (UTC when None). Always returned aware."""
    value = (value or "").strip()
    if not value:
        return None
    parsed: datetime | None = None
    iso = value.replace("Z", "+00:00") if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            parsed = None
    if parsed is None:
        match = _NUMERIC_DATE.search(value)
        if not match:
            return None
        y, mo, d, h, mi, s, off = match.groups()
        try:
            parsed = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
        except ValueError:
            return None
        if off:
            parsed = parsed.replace(tzinfo=UTC if off == "Z" else _tzinfo(off))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz or UTC)
    return parsed


_DATE_METAS = (
    "article:published_time", "og:article:published_time", "og:published_time",
    "datePublished", "publishdate", "pubdate", "publish-date", "publish_date",
    "article.published", "dc.date.issued", "DC.date.issued", "dc.date", "DC.date",
    "sailthru.date", "parsely-pub-date", "date", "weibo:article:create_at",
)
_VISIBLE_DATE = re.compile(
    r"(?:date|time|pub|publish|info|source|meta)", re.I
)


def _published(doc, metas: Metas, ld: list[dict], tz: timezone | None) -> datetime | None:
    value = _meta(metas, *_DATE_METAS)
    if value:
        parsed = parse_date(value, tz)
        if parsed:
            return parsed
    ld_date = _ld_value(ld, "datePublished") or _ld_value(ld, "dateCreated")
    if isinstance(ld_date, str):
        parsed = parse_date(ld_date, tz)
        if parsed:
            return parsed
    for el in doc.xpath("//time[@datetime]")[:3]:
        parsed = parse_date(el.get("datetime") or "", tz)
        if parsed:
            return parsed
    # visible dates: elements whose class/id speak of dates, then the whole body
    for el in doc.xpath("//body//*[@class or @id]"):
        marker = f"{el.get('class', '')} {el.get('id', '')}"
        if not _VISIBLE_DATE.search(marker):
            continue
        text = el.text_content()
        if len(text) > 300:
            continue
        parsed = _visible_date(text, tz)
        if parsed:
            return parsed
    return None


def _visible_date(text: str, tz: timezone | None) -> datetime | None:
    match = _NUMERIC_DATE.search(text)
    if not match or not (1990 <= int(match.group(1)) <= 2100):
        return None
    return parse_date(match.group(0), tz)


# ---------------------------------------------------------------------------
# images

_LAZY = ("data-src", "data-original", "data-lazy-src", "data-actualsrc", "data-lazyload",
         "data-original-src", "data-url", "data-echo", "data-hi-res-src", "data-full-src")
_LAZY_SETS = ("data-srcset", "data-lazy-srcset", "srcset")
_PLACEHOLDER = re.compile(r"^data:|blank\.|placeholder|loading|spacer|grey\.gif|lazy|1x1|"
                          r"pixel\.gif|transparent", re.I)
_TRACKER = re.compile(r"(?:^|[/._-])(pixel|beacon|tracking|tracker|1x1|spacer|blank)"
                      r"(?:[/._-]|$)|doubleclick\.net|/b/ss/|scorecardresearch|"
                      r"facebook\.com/tr|google-analytics", re.I)


def _best_from_srcset(value: str) -> str:
    best, best_w = "", -1.0
    for candidate in value.split(","):
        bits = candidate.strip().split()
        if not bits:
            continue
        weight = 1.0
        if len(bits) > 1:
            with contextlib.suppress(ValueError):
                weight = float(bits[1].rstrip("wxWX"))
        if weight > best_w:
            best, best_w = bits[0], weight
    return best


def _image_src(img) -> str:
    src = (img.get("src") or "").strip()
    if src and not _PLACEHOLDER.search(src):
        return src
    for attr in _LAZY:
        value = (img.get(attr) or "").strip()
        if value and not value.startswith("data:"):
            return value
    for attr in _LAZY_SETS:
        value = (img.get(attr) or "").strip()
        if value:
            best = _best_from_srcset(value)
            if best and not best.startswith("data:"):
                return best
    return "" if src.startswith("data:") else src


def _is_pixel(img, src: str) -> bool:
    def tiny(v: str | None) -> bool:
        v = (v or "").strip().lower().removesuffix("px").strip()
        return v in ("0", "1")

    if tiny(img.get("width")) or tiny(img.get("height")):
        return True
    style = (img.get("style") or "").replace(" ", "").lower()
    if "width:1px" in style or "height:1px" in style or "display:none" in style:
        return True
    return bool(_TRACKER.search(src))


def _fix_noscript(root) -> None:
    """`<noscript><img></noscript>` fallbacks: replace a lazy sibling image that
    has no usable source, or stand in for it; then drop every noscript."""
    for ns in list(root.iter("noscript")):
        imgs = list(ns.iter("img"))
        if not imgs and ns.text and "<img" in ns.text:
            with contextlib.suppress(etree.ParserError, ValueError):
                frag = lxml.html.fragment_fromstring(ns.text, create_parent="div")
                imgs = list(frag.iter("img"))
        parent = ns.getparent()
        if parent is None:
            continue
        if imgs:
            fallback = imgs[0]
            prev = ns.getprevious()
            lazy_prev = prev if prev is not None and prev.tag == "img" else None
            if lazy_prev is None and prev is not None:
                found = list(prev.iter("img"))
                lazy_prev = found[0] if found else None
            if lazy_prev is not None and _image_src(lazy_prev):
                pass  # the visible image already has a source
            else:
                if lazy_prev is not None:
                    lazy_prev.drop_tree()
                new = etree.Element("img")
                for key in ("src", "alt", "srcset", "width", "height", *_LAZY):
                    if fallback.get(key):
                        new.set(key, fallback.get(key))
                new.tail = ns.tail
                parent.replace(ns, new)
                continue
        if ns.getparent() is not None:
            ns.drop_tree()


# ---------------------------------------------------------------------------
# body: cleaning and serialising

_DROP_TAGS = {
    "script", "style", "noscript", "template", "form", "button", "input", "select",
    "textarea", "iframe", "object", "embed", "svg", "canvas", "nav", "aside", "footer",
    "link", "meta", "label", "dialog", "menu", "audio", "video", "map", "area", "head",
    "title", "base", "applet", "frame", "frameset", "param", "source", "track",
}
_KEEP_TAGS = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd",
    "table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "figure",
    "figcaption", "img", "a", "strong", "em", "b", "i", "u", "s", "blockquote", "pre",
    "code", "br", "hr", "sup", "sub", "q", "cite", "abbr", "mark", "small", "del", "ins",
    "div", "section", "article",
}
_BLOCK = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "table",
    "tr", "figure", "figcaption", "blockquote", "pre", "div", "section", "article", "hr",
    "br", "header", "main", "caption", "td", "th", "thead", "tbody", "tfoot", "address",
}
_ATTRS = {
    "a": ("href", "title"), "img": ("src", "alt", "title", "width", "height"),
    "td": ("colspan", "rowspan"), "th": ("colspan", "rowspan", "scope"),
    "ol": ("start",), "blockquote": ("cite",), "abbr": ("title",),
}
_BOILER = re.compile(
    r"(?:^|[\s_-])(share|sharing|social|related|recommend|comment|comments|newsletter|"
    r"subscribe|subscription|promo|promotion|sponsor|sponsored|advert|advertisement|ads?|"
    r"adslot|ad-slot|banner|popup|modal|breadcrumbs?|tags?|tagline|sidebar|widget|"
    r"outbrain|taboola|toolbar|print|byline|author|authors|dateline|timestamp|"
    r"signup|sign-up|paywall|more-stories|read-more|readmore|trending|most-popular|"
    r"follow|disclaimer|copyright|caption|credit|credits|inline-video|video-player|"
    r"skip|hidden|visually-hidden|sr-only|screen-reader|meta|footer|header|masthead|"
    r"nav|navigation|menu|pagination|pager|rating|login|cookie|gdpr|consent|"
    r"bio|contributor|feedback|survey|callout|pullquote|pull-quote|toc|"
    r"editor|qr|qrcode|ewm|fenxiang|tuijian|xgyd|statement)(?:$|[\s_-])",
    re.I,
)
# Content containers whose names hold a boilerplate word: TRS WCM, the CMS of
# most Chinese regulators and many portals, wraps the article in "TRS_Editor".
_CONTENT_NAMES = re.compile(r"(?:^|\s)TRS_Editor(?:$|\s)", re.I)
_POPUP = re.compile(r"rollover-people-block|tooltip|popover|hovercard|hover-card", re.I)
_POSITIVE = re.compile(
    r"article|body|content|entry|main|page|post|text|blog|story|artibody|"
    r"detail|news|zw|正文|txt|con\b", re.I
)
_NEGATIVE = re.compile(
    r"hidden|banner|combx|comment|com-|contact|foot|footer|footnote|masthead|media|meta|"
    r"outbrain|promo|related|scroll|share|shoutbox|sidebar|skyscraper|sponsor|shopping|"
    r"tags|tool|widget|nav|menu|recommend|popular|trending|subscribe|newsletter|"
    r"advert|author|byline|caption", re.I
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_NEWLINE_WS = re.compile(r"[ \t\r\f\v]*\n\s*")
_WS = re.compile(r"[ \t\r\n\f\v\u00a0\u3000\u200b]+")


def _marker(el) -> str:
    return f"{el.get('class') or ''} {el.get('id') or ''}"


def _boilerplate_name(marker: str) -> bool:
    """Do the class/id names say boilerplate (share bar, ads, editor line, ...)?"""
    return bool(_BOILER.search(marker)) and not _CONTENT_NAMES.search(marker)


def _text_len(text: str) -> int:
    """Characters of visible text, CJK weighted x3 (a Chinese character carries
    about as much as an English word's worth of letters)."""
    if text.isascii():  # most pieces of an English page: the _WS set, bytewise, no CJK
        return len(text.encode("ascii").translate(None, b" \t\r\n\f\v"))
    stripped = _WS.sub("", text)
    return len(stripped) + 2 * len(_CJK.findall(stripped))


def _link_density(el) -> float:
    total = _text_len(el.text_content())
    if not total:
        return 0.0
    links = sum(_text_len(a.text_content()) for a in el.iter("a"))
    return links / total


def _remove(el) -> None:
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    if tail and tail.strip():
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


def _holds_prose(el) -> bool:
    """Does `el` hold article paragraphs (ASP.NET pages wrap everything in a form)?"""
    return sum(1 for p in el.iter("p") if _text_len(p.text_content()) > 80) >= 2


def _prune(root, rule: Rule | None = None) -> None:
    """Drop boilerplate inside a chosen body (in place)."""
    if rule is not None:
        for sel in rule.remove:
            with contextlib.suppress(Exception):
                for el in root.cssselect(sel):
                    if el is not root:
                        _remove(el)
        if rule.remove_text:
            for el in list(root.iter("p", "div", "span", "section", "font", "strong")):
                if el is root or el.getparent() is None:
                    continue
                text = el.text_content()
                if len(text) < 200 and any(p.search(text) for p in rule.remove_text):
                    _remove(el)
    for el in list(root.iter()):
        if el is root or el.getparent() is None or not isinstance(el.tag, str):
            continue
        tag = el.tag
        if tag == "figcaption" and DROP_CAPTIONS:
            _remove(el)
            continue
        if tag in _DROP_TAGS or tag == "header":
            if tag not in ("form", "header") or not _holds_prose(el):
                _remove(el)
            continue
        style = el.get("style") or ""
        if (_HIDDEN_STYLE.search(style) or el.get("hidden") is not None
                or el.get("aria-hidden") == "true") and tag != "img":
            _remove(el)
            continue
        if tag in ("div", "section", "span", "p", "ul", "ol", "figure", "table", "aside",
                   "dl", "a", "strong", "em") or tag.startswith("h"):
            marker = _marker(el)
            if marker.strip() and _POPUP.search(marker):
                _remove(el)
                continue
            if marker.strip() and _boilerplate_name(marker):
                text_len = _text_len(el.text_content())
                if tag in ("p", "span", "a", "strong", "em") and text_len > 200:
                    continue
                if text_len < 1500 or _link_density(el) > 0.3:
                    _remove(el)
                    continue
    # conditional cleaning: link lists and short, link-heavy blocks
    for el in reversed(list(root.iter("ul", "ol", "div", "section", "table", "dl", "p"))):
        if el is root or el.getparent() is None:
            continue
        text = el.text_content()
        length = _text_len(text)
        density = _link_density(el)
        if el.tag == "p":
            if density > 0.8 and length < 300:
                _remove(el)
            continue
        has_img = el.find(".//img") is not None
        paragraphs = len(el.findall(".//p"))
        if density > 0.5 and (length < 600 or el.tag in ("ul", "ol")):
            _remove(el)
        elif length < 30 and not has_img and el.tag not in ("table",) and paragraphs == 0:
            if not text.strip():
                _remove(el)
        elif density > 0.33 and paragraphs < 2 and length < 400 and not has_img:
            _remove(el)


def _serialize(root, base: str) -> tuple[str, str]:
    """(clean HTML, visible text) of `root`'s content, kept tags only."""
    out: list[str] = []
    text: list[str] = []

    in_pre = [0]

    def emit_text(value: str | None) -> None:
        if value:
            text.append(value)
            if not in_pre[0] and "\n" in value:  # source indentation is not content
                value = _NEWLINE_WS.sub("\n", value)  # (and Hexo minds it)
            out.append(escape(value, quote=False))

    def walk(el) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        keep = tag in _KEEP_TAGS
        if tag == "img":
            src = _image_src(el)
            if src and not _is_pixel(el, src):
                src = absolute(src, base)
                attrs = [f' src="{escape(src)}"']
                for name in ("alt", "title", "width", "height"):
                    value = el.get(name)
                    if value:
                        attrs.append(f' {name}="{escape(value)}"')
                out.append(f"<img{''.join(attrs)}>")
            emit_text(el.tail)
            return
        if tag in ("br", "hr"):
            out.append(f"<{tag}>")
            text.append("\n")
            emit_text(el.tail)
            return
        if keep:
            attrs = []
            for name in _ATTRS.get(tag, ()):
                value = el.get(name)
                if value is None:
                    continue
                if name == "href":
                    value = value.strip()
                    if value.lower().startswith(("javascript:", "vbscript:", "data:")):
                        continue
                    value = absolute(value, base)
                attrs.append(f' {name}="{escape(value)}"')
            out.append(f"<{tag}{''.join(attrs)}>")
        if tag in _BLOCK:
            text.append("\n")
        in_pre[0] += tag == "pre"
        emit_text(el.text)
        for child in el:
            walk(child)
        in_pre[0] -= tag == "pre"
        if tag in _BLOCK:
            text.append("\n")
        if keep:
            out.append(f"</{tag}>")
        emit_text(el.tail)

    emit_text(root.text)
    for child in root:
        walk(child)
    html_out = "".join(out)
    html_out = re.sub(r"<(p|div|section|span|li|strong|em|b|i|a)>(\s|&nbsp;)*</\1>", "", html_out)
    html_out = re.sub(r"<(div|section|article)>(\s*)</\1>", "", html_out)
    lines = [_squeeze(line) for line in "".join(text).split("\n")]
    return html_out.strip(), "\n".join(line for line in lines if line)


def _squeeze(line: str) -> str:
    """`_WS` runs as one space, stripped; ASCII lines bytewise (bytes.split()
    splits on exactly the ASCII members of `_WS`), several times faster."""
    if line.isascii():
        return b" ".join(line.encode("ascii").split()).decode("ascii")
    return _WS.sub(" ", line).strip()


# ---------------------------------------------------------------------------
# generic extractor (readability-style scoring)

_CANDIDATE_TAGS = ("p", "pre", "td", "blockquote", "li", "h2", "h3", "div", "section",
                   "article", "font", "span")
_COMMAS = re.compile(r"[,，、；;。]")


def _class_weight(el) -> float:
    marker = _marker(el)
    if not marker.strip():
        return 0.0
    weight = 0.0
    if _NEGATIVE.search(marker):
        weight -= 25
    if _POSITIVE.search(marker):
        weight += 25
    return weight


def _has_block_child(el) -> bool:
    return any(isinstance(c.tag, str) and c.tag in _BLOCK and c.tag != "br" for c in el)


Sizes = dict[object, tuple[int, int]]


def _measure(root) -> Sizes:
    """`_text_len` of every element's text_content and of its links' text, in one
    bottom-up pass: scoring asks this of every ancestor, and recomputing it per
    ask made extraction quadratic in the page's size. (Both are sums over text
    pieces, so children's figures add up.)"""
    sizes: Sizes = {}
    for el in reversed(list(root.iter())):  # children before their parent
        if not isinstance(el.tag, str):  # comments: their text is not content
            sizes[el] = (0, 0)
            continue
        total = _text_len(el.text) if el.text else 0
        links = 0
        for child in el:
            child_total, child_links = sizes[child]
            total += child_total + (_text_len(child.tail) if child.tail else 0)
            links += child_links
        sizes[el] = (total, links + total if el.tag == "a" else links)
    return sizes


def _density(sizes: Sizes, el) -> float:
    total, links = sizes[el]
    return links / total if total else 0.0


def _base_score(el) -> float:
    base = {"div": 5.0, "article": 8.0, "section": 3.0, "main": 5.0,
            "pre": 3.0, "td": 3.0, "blockquote": 3.0}.get(el.tag, 0.0)
    if el.tag in ("ol", "ul", "dl", "dd", "dt", "li", "form", "address"):
        base = -3.0
    elif el.tag in ("th", "h1", "h2", "h3", "h4", "h5", "h6"):
        base = -5.0
    return base + _class_weight(el)


_CONTAINERS = ("div", "section", "article", "font", "span", "li", "td")


def _paragraph_score(el, sizes: Sizes) -> float:
    """How much `el` reads like one paragraph of prose (0: not a paragraph)."""
    if el.tag in _CONTAINERS and _has_block_child(el):
        # only leaf-ish containers act as paragraphs, on their own text
        text = (el.text or "") + "".join((c.tail or "") for c in el)
        length = _text_len(text)
        if length < 80:
            return 0.0
    else:
        length = sizes[el][0]
        if length < 25:
            return 0.0
        text = el.text_content()
    score = 1.0 + len(_COMMAS.findall(text)) + min(length / 100.0, 3.0)
    return score * 0.5 if el.tag in ("li", "td", "span", "font") else score


def _score_ancestors(body, sizes: Sizes) -> dict[object, float]:
    """Readability's scores: each paragraph credits its parent, grandparent and
    great-grandparent (1, 1/2, 1/6 of its score)."""
    scores: dict[object, float] = {}
    for el in body.iter(*_CANDIDATE_TAGS):
        parent = el.getparent()
        if parent is None:
            continue
        score = _paragraph_score(el, sizes)
        if not score:
            continue
        anc, level = parent, 0
        while anc is not None and level < 3:
            if anc not in scores:
                scores[anc] = _base_score(anc)
            scores[anc] += score / (1, 2, 6)[level]
            anc, level = anc.getparent(), level + 1
    return scores


def _generic(body) -> object | None:
    """The element most likely to hold the article (a node of `body`'s tree)."""
    sizes = _measure(body.getroottree().getroot())
    scores = _score_ancestors(body, sizes)
    best, best_score = None, 0.0
    for el, score in scores.items():
        final = score * (1.0 - _density(sizes, el))
        if final > best_score:
            best, best_score = el, final
    if best is None:
        return None
    best, best_score = _climb(body, best, best_score, scores, sizes)
    return _with_siblings(best, best_score, scores, sizes)


def _climb(body, best, best_score: float, scores: dict[object, float],
           sizes: Sizes) -> tuple[object, float]:
    """Climb while an ancestor holds clearly more article paragraphs (split bodies)."""
    good = _good_paragraphs(body, sizes)
    own = _good_in(best, good)
    own_total = sizes[best][0]
    parent, level = best.getparent(), 0
    while parent is not None and parent.tag not in ("body", "html") and level < CLIMB_LEVELS:
        level += 1
        more = _good_in(parent, good)
        total = sizes[parent][0]
        purity = (more - own) / max(total - own_total, 1)
        density = _density(sizes, parent)
        if more > own * CLIMB_RATIO + CLIMB_MIN and density < CLIMB_DENSITY \
                and purity >= CLIMB_PURITY:
            best, own, own_total = parent, more, total
            best_score = max(best_score, scores.get(parent, 0.0) * (1 - density))
        parent = parent.getparent()
    return best, best_score


def _with_siblings(best, best_score: float, scores: dict[object, float], sizes: Sizes):
    """`best`, or a wrapper holding it and the siblings that look like more of
    the article."""
    parent = best.getparent()
    if parent is None:
        return best
    threshold = max(10.0, best_score * 0.2)
    best_marker = _marker(best)
    keep = []
    for sib in parent:
        if not isinstance(sib.tag, str):
            continue
        sib_score = scores.get(sib, 0.0) * (1.0 - _density(sizes, sib))
        if best_marker.strip() and _marker(sib) == best_marker:
            sib_score += best_score * 0.2
        if sib is best or sib_score >= threshold or (sib.tag == "p" and _prose(sib, sizes)):
            keep.append(sib)
    if len(keep) == 1:
        return best
    wrapper = lxml.html.Element("div")
    for el in keep:
        wrapper.append(_copy(el))
    return wrapper


def _prose(p, sizes: Sizes) -> bool:
    """A sibling paragraph worth keeping: long with few links, or a short
    link-free sentence."""
    length, density = sizes[p][0], _density(sizes, p)
    if length > 80:
        return density < 0.25
    return length > 0 and density == 0 and bool(re.search(r"[.。!?！？]\s*$", p.text_content()))


CLIMB_LEVELS = 4
DROP_CAPTIONS = True
CLIMB_RATIO = 1.2
CLIMB_MIN = 150
CLIMB_DENSITY = 0.4
CLIMB_PURITY = 0.3


def _good_paragraphs(body, sizes: Sizes) -> dict[object, int]:
    """Text weight of every paragraph that reads like article prose (not inside
    a boilerplate block)."""
    good: dict[object, int] = {}
    boiler: dict[object, bool] = {}
    for p in body.iter("p"):
        length = sizes[p][0]
        if length >= 60 and _density(sizes, p) <= 0.3 and not _in_boiler(p, boiler):
            good[p] = length
    return good


def _in_boiler(el, memo: dict[object, bool]) -> bool:
    """Is an ancestor of `el` (below body) marked as boilerplate? Memoised per ancestor."""
    anc = el.getparent()
    if anc is None or anc.tag == "body":
        return False
    if anc not in memo:
        marker = _marker(anc)
        bad = bool(marker.strip() and _boilerplate_name(marker)
                   and not _POSITIVE.search(marker))
        memo[anc] = bad or _in_boiler(anc, memo)
    return memo[anc]


def _good_in(el, good: dict[object, int]) -> int:
    return sum(good.get(p, 0) for p in el.iter("p"))


def _copy(el):
    from copy import deepcopy

    clone = deepcopy(el)
    clone.tail = None
    return clone


# ---------------------------------------------------------------------------
# extract


def _strip_title(root, title: str) -> None:
    """Drop a leading heading that repeats the title."""
    if not title:
        return
    key = _WS.sub("", title)[:40]
    for h in list(root.iter("h1", "h2"))[:2]:
        text = _WS.sub("", h.text_content())
        if text and (text in _WS.sub("", title) or key in text):
            _remove(h)


def _select(doc, selectors: tuple[str, ...], min_text: int):
    for sel in selectors:
        try:
            found = doc.cssselect(sel)
        except Exception:  # bad selector in a config: ignore it
            continue
        found = [el for el in found if _text_len(el.text_content()) >= min_text
                 or el.find(".//img") is not None]
        if not found:
            continue
        if len(found) == 1:
            return found[0]
        wrapper = lxml.html.Element("div")
        outer = [el for el in found if not any(o is not el and el in o.iterdescendants()
                                                for o in found)]
        for el in outer:
            wrapper.append(_copy(el))
        return wrapper
    return None


def _looks_chinese(host: str, doc, title: str) -> bool:
    lang = (doc.get("lang") or doc.get("xml:lang") or "").lower()
    return (host.endswith((".cn", ".com.cn", ".hk", ".tw")) or lang.startswith("zh")
            or len(_CJK.findall(title)) >= 4)


def extract(page: bytes | str, url: str, selector: str = "", content_type: str = "",
            tz_hint: str = "") -> Extracted:
    """The main content and metadata of an article page. `url` is the page's final
    URL (after redirects); `selector` a per-feed CSS selector for the body;
    `content_type` the HTTP header (for its charset); `tz_hint` the zone for
    naive dates ("+08:00", "Asia/Shanghai"); without it, pages that look
    Chinese are read as UTC+8 and others as UTC."""
    text, _encoding = decode_page(page, content_type)
    doc = _parse(text)
    if doc is None:
        return Extracted("", "", "", "", None, "", "")
    base = url
    base_el = doc.find(".//base[@href]")
    if base_el is not None:
        base = absolute(base_el.get("href") or "", url) or url
    host = host_of(url)
    ld = _json_ld(doc)
    metas = _meta_index(doc)

    title = _meta(metas, "og:title", "twitter:title")
    if not title:
        headline = _ld_value(ld, "headline")
        title = headline if isinstance(headline, str) else ""
    if not title:
        h1 = doc.find(".//h1")
        title = h1.text_content() if h1 is not None else ""
    if not title:
        t = doc.find(".//title")
        title = t.text_content() if t is not None else ""
    title = _WS.sub(" ", unescape(title)).strip()

    tz = _tzinfo(tz_hint)
    if tz is None and _looks_chinese(host, doc, title):
        tz = timezone(timedelta(hours=8))
    published = _published(doc, metas, ld, tz)

    author = _meta(metas, "author", "article:author", "dc.creator", "DC.creator", "byl",
                   "parsely-author", "sailthru.author")
    if not author or author.startswith("http"):
        author = _person(_ld_value(ld, "author")) or ("" if author.startswith("http") else author)
    author = _WS.sub(" ", re.sub(r"^\s*by\s+", "", author, flags=re.I)).strip()

    image = _meta(metas, "og:image", "og:image:url", "og:image:secure_url", "twitter:image",
                  "twitter:image:src")
    if not image:
        ld_image = _ld_value(ld, "image")
        if isinstance(ld_image, list) and ld_image:
            ld_image = ld_image[0]
        if isinstance(ld_image, dict):
            ld_image = ld_image.get("url")
        image = ld_image if isinstance(ld_image, str) else ""

    body = doc.find("body")
    if body is None:
        body = doc
    _fix_noscript(body)
    node, method, rule = None, "", None
    if selector:
        node = _select(doc, tuple(s.strip() for s in selector.split("||") if s.strip()), 1)
        method = "selector" if node is not None else ""
    if node is None:
        matched = rule_for(host)
        if matched:
            key, rule = matched
            node = _select(doc, rule.body, rule.min_text)
            method = f"rule:{key}" if node is not None else ""
            if node is None:
                rule = None
    if node is None:
        for el in list(body.iter(*_DROP_TAGS)):
            if el.getparent() is not None and not (el.tag == "form" and _holds_prose(el)):
                _remove(el)
        node = _generic(body)
        method = "generic" if node is not None else ""
    if node is None:
        return Extracted("", "", title, absolute(image, base) if image else "", published,
                         author, "")
    node = _copy(node) if node.getparent() is not None else node
    _prune(node, rule)
    _strip_title(node, title)
    html_out, text_out = _serialize(node, base)
    if not image:
        match = re.search(r'<img src="([^"]+)"', html_out)
        image = unescape(match.group(1)) if match else ""
    image = absolute(image, base) if image else ""
    return Extracted(html_out, text_out, title, image, published, author, method)


# ---------------------------------------------------------------------------
# auto full text

_TRUNCATED = re.compile(
    r"(\.{3}|…|……|\[\.\.\.\]|\[…\])\s*(\]|\))?\s*$|"
    r"(read|continue|view|see)\s+(more|full|the full|reading|article|story)[^.]{0,30}$|"
    r"(阅读全文|查看全文|阅读原文|点击查看|全文链接|更多内容|详情请|显示全文|展开全文)",
    re.I,
)
_TAGS = re.compile(r"<!--.*?-->|<(script|style)\b.*?</\1\s*>|<[^>]+>", re.S | re.I)


def _plain(source: str) -> str:
    return _WS.sub(" ", unescape(_TAGS.sub(" ", source or ""))).strip()


def needs_full_text(entry_content: str, entry_summary: str,
                    min_chars: int = 500) -> tuple[bool, str]:
    """Should the article page be fetched (full_text = "auto")? Returns the
    decision and a reason for the log. The entry is full when its content (or,
    lacking that, its summary) is at least `min_chars` characters of text (a
    CJK character counts as three) and does not end in an ellipsis or a "read
    more"/"阅读全文" link."""
    source = entry_content if _plain(entry_content) else entry_summary
    which = "content" if source is entry_content and entry_content else "summary"
    text = _plain(source)
    if not text:
        return True, "entry has no content or summary"
    if _TRUNCATED.search(text[-80:]) or re.search(
        r"<a\b[^>]*>\s*(read more|continue reading|more|阅读全文|查看全文|全文|more\s*»)\s*</a>\s*"
        r"(</\w+>\s*)*$", source.strip(), re.I,
    ):
        return True, f"entry {which} is truncated (ellipsis or 'read more')"
    length = _text_len(text)
    if length < min_chars:
        return True, f"entry {which} is short ({len(text)} chars of text)"
    return False, f"entry {which} carries the full text ({len(text)} chars)"
