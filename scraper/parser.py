"""Feed bytes to plain entries, with feedparser doing the format work.

feedparser's own sanitizer is off (it strips comments, `<style>` and unknown
attributes that records keep; `scraper.sanitize` removes active content
instead) and so is its relative-URI resolution (the record resolves against
`xml:base`, else the entry's link, else the feed's URL).
"""

from __future__ import annotations

import calendar
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scraper import charsets
from scraper.fastfeed import fast_parse
from scraper.urls import absolute

__all__ = ["Entry", "FeedParseError", "ParsedFeed", "parse_feed"]

_ENCODING_DECL = re.compile(r"^(\ufeff?\s*<\?xml[^>]*encoding\s*=\s*[\"'])[^\"']*([\"'])")


class FeedParseError(Exception):
    """The document is not a feed we can read; the message says why."""


@dataclass(frozen=True)
class Entry:
    """One feed entry, as plain data (picklable)."""

    guid: str
    link: str
    title: str  # as the feed gave it (may hold markup or entities)
    content: str  # full content HTML, '' if the feed has none
    summary: str  # description/summary HTML
    base: str  # base URL for the entry's relative links
    published: datetime | None
    updated: datetime | None
    author: str = ""
    image: str = ""  # media thumbnail or image enclosure


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    ttl: int | None  # RSS <ttl>, minutes
    entries: list[Entry] = field(default_factory=list)
    charset_note: str = ""  # set when the declared charset was wrong and detection used


def parse_feed(
    content: bytes, url: str, headers: dict[str, str] | None = None, fast: bool = True
) -> ParsedFeed:
    """Parse feed bytes fetched from `url`; raise `FeedParseError` if not a feed.

    Well-formed plain feeds take `scraper.fastfeed` (same entries, about 20x
    faster); everything else, or `fast=False`, goes through feedparser."""
    if not content.strip():
        raise FeedParseError("empty document")
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    ctype = lowered.get("content-type", "")
    if ctype.lower().startswith("text/") and "charset" not in ctype.lower():
        # RFC 3023 read such bodies as us-ascii whatever their BOM or XML
        # declaration said; RFC 7303 (and every browser) let those decide.
        lowered["content-type"] = "application/xml"
    content, lowered = _gb_as_gb18030(content, lowered)
    # feedparser restores an outer xml:base only when the document has a base,
    # so always give it one; a content base equal to it means "no xml:base".
    doc_base = absolute(lowered.get("content-location", ""), url) or url
    lowered["content-location"] = doc_base
    quick = fast_parse(content, lowered, doc_base) if fast else None
    if quick is not None:
        return ParsedFeed(
            title=_plain(quick["title"] or ""), ttl=_int_or_none(quick["ttl"]),
            entries=[_entry(e, doc_base) for e in quick["entries"]],
        )
    parsed = _parse(content, lowered)
    charset_note = ""
    if type(parsed.get("bozo_exception")).__name__ == "CharacterEncodingOverride":
        # The declared charset does not decode these bytes; feedparser would
        # fall back to windows-1252 and produce mojibake. Detect instead.
        redone = _redetect(content, lowered)
        if redone is not None:
            parsed, charset_note = redone
    version = parsed.get("version") or ""
    entries = parsed.get("entries") or []
    if not version and not entries:
        raise FeedParseError(_not_a_feed_reason(parsed, content))
    feed = parsed.get("feed", {})
    return ParsedFeed(
        title=_plain(feed.get("title", "")),
        ttl=_int_or_none(feed.get("ttl")),
        entries=[_entry(e, doc_base) for e in entries],
        charset_note=charset_note,
    )


def _parse(content: bytes, headers: dict[str, str]) -> Any:
    # imported here: well-formed feeds take the fast path and never need it,
    # and each process that imports it grows by about 13 MB
    import feedparser

    try:
        return feedparser.parse(
            content, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
    except (ValueError, UnicodeError, LookupError) as exc:
        # feedparser lets some decoding failures escape (a charset label with a
        # NUL in it, a document its fallbacks cannot decode)
        raise FeedParseError(f"not a feed: cannot decode the document: {_short(str(exc))}") \
            from None


def _redetect(content: bytes, headers: dict[str, str]) -> tuple[Any, str] | None:
    """Re-read a document whose declared charset is wrong, by detection."""
    import charset_normalizer  # rarely needed: imported only then

    best = charset_normalizer.from_bytes(content[:200_000]).best()
    if best is None or best.encoding in ("utf_8", "ascii"):
        return None
    encoding = charsets.relabel(best.encoding)
    try:
        text = content.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    text = _ENCODING_DECL.sub(r"\1utf-8\2", text, count=1)
    utf8 = {**headers, "content-type": "application/xml; charset=utf-8"}
    declared = _declared(headers, content)
    note = f"declared charset {declared} does not decode the bytes; read as {encoding} (detected)"
    return _parse(text.encode("utf-8"), utf8), note


def _declared(headers: dict[str, str], content: bytes) -> str:
    return (charsets.header_charset(headers.get("content-type", ""))
            or charsets.xml_encoding(content) or "(none)")


def _gb_as_gb18030(content: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """Read GB2312/GBK labels as GB18030, as browsers do (see `scraper.charsets`)."""
    ctype = headers.get("content-type", "")
    relabelled = charsets.relabel_content_type(ctype)
    if relabelled != ctype:
        headers = {**headers, "content-type": relabelled}
    return charsets.relabel_xml_declaration(content), headers


def _not_a_feed_reason(parsed: Any, content: bytes) -> str:
    head = content[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "not a feed: the server sent an HTML page"
    if head.startswith((b"{", b"[")):
        return "not a feed: a JSON document (JSON Feed is not supported)"
    exc = parsed.get("bozo_exception")
    benign = ("CharacterEncodingOverride", "NonXMLContentType")
    if exc and type(exc).__name__ not in benign:
        return f"not a feed: {_short(str(exc))}"
    root = re.search(rb"<([A-Za-z][\w:.-]*)", re.sub(rb"<[?!][^>]*>", b"", content[:4096]))
    if root:
        return f"not a feed: root element <{root.group(1).decode('ascii', 'replace')}> " \
               "is not RSS, Atom or RDF"
    return "not a feed: no RSS, Atom or RDF root element"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _entry(e: Any, doc_base: str) -> Entry:
    link = _link(e, doc_base)
    content, content_base = _content(e)
    summary = e.get("summary", "") or ""
    summary_base = (e.get("summary_detail") or {}).get("base", "") or ""
    xml_base = content_base if content else summary_base
    if xml_base == doc_base:
        xml_base = ""
    # xml:base, else the entry's link, else the feed's URL
    base = xml_base or link or doc_base
    return Entry(
        guid=(e.get("id") or e.get("guid") or "").strip(),
        link=link,
        title=e.get("title", "") or "",
        content=content,
        summary=summary if _is_html(e.get("summary_detail")) else html.escape(summary),
        base=base,
        published=_when(e.get("published_parsed")),
        updated=_when(e.get("updated_parsed")),
        author=_plain(e.get("author", "") or ""),
        image=_image(e, base),
    )


def _link(e: Any, doc_base: str) -> str:
    """The entry's absolute http(s) link, '' when it has none. feedparser
    copies a permalink guid into `link`; a guid that is no URL is not a link."""
    raw = _first_link(e)
    guid = str(e.get("id") or "").strip()
    if not raw or (raw == guid and not guid.lower().startswith(("http://", "https://"))):
        return ""
    link = absolute(raw, doc_base)
    return link if link.lower().startswith(("http://", "https://")) else ""


def _first_link(e: Any) -> str:
    for link in e.get("links") or []:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return str(link["href"]).strip()
    return str(e.get("link", "") or "").strip()


def _content(e: Any) -> tuple[str, str]:
    """The entry's full content (content:encoded / Atom content) and its base."""
    for item in e.get("content") or []:
        value = item.get("value", "") or ""
        if value.strip():
            text = value if _is_html(item) else html.escape(value)
            return text, item.get("base", "") or ""
    return "", ""


def _is_html(detail: Any) -> bool:
    kind = (detail or {}).get("type", "text/html") or "text/html"
    return "html" in kind or kind.startswith("application/")


def _image(e: Any, base: str) -> str:
    for thumb in e.get("media_thumbnail") or []:
        if thumb.get("url"):
            return absolute(thumb["url"], base)
    for media in e.get("media_content") or []:
        kind = media.get("type", "") or media.get("medium", "")
        if media.get("url") and "image" in kind:
            return absolute(media["url"], base)
    for enc in e.get("enclosures") or []:
        if enc.get("href") and (enc.get("type") or "").startswith("image/"):
            return absolute(enc["href"], base)
    return ""


def _when(parsed: Any) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _plain(text: str) -> str:
    return " ".join(str(text).split())


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
