"""A fast path for well-formed, plain RSS 2.0 / RSS 1.0 / Atom 1.0 feeds.

feedparser costs about 1 ms per entry, almost all of it in Python callbacks
per element and per text piece. Most real feeds are well-formed XML with a
handful of common elements; for those, one lxml parse (about 20x faster)
gives exactly what feedparser would, provided every rule feedparser applies
to those elements is applied here too. This module does that for a
deliberately small subset and returns None for anything outside it (a
DOCTYPE, xml:base, an element it does not know in an entry, markup inside a
text element, a charset it would have to guess, ...): the caller then uses
feedparser, which stays the reference. `tests/test_fastfeed.py` checks that
both paths give identical entries on every corpus feed the fast path accepts.

The result is shaped like feedparser's entry dictionaries (`id`, `link`,
`links`, `title`, `summary`, `summary_detail`, `content`, `published_parsed`,
...), restricted to the keys `scraper.parser` reads, so one function turns
either into `Entry` objects.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from typing import Any

from lxml import etree

from scraper.charsets import header_charset, xml_encoding
from scraper.urls import join

__all__ = ["fast_parse"]

_ATOM = "http://www.w3.org/2005/Atom"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RSS1 = "http://purl.org/rss/1.0/"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
_DC = "http://purl.org/dc/elements/1.1/"
_MEDIA = "http://search.yahoo.com/mrss/"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

# Children an entry may have on the fast path, by format; anything else
# (and any of these twice, but categories) sends the document to feedparser.
_RSS_ITEM = {"title", "link", "guid", "description", "pubDate", "author", "category",
             "comments", "enclosure", _CONTENT, f"{{{_DC}}}creator", f"{{{_DC}}}date",
             f"{{{_DC}}}subject", f"{{{_MEDIA}}}thumbnail", f"{{{_MEDIA}}}content"}
_RDF_ITEM = {f"{{{_RSS1}}}{n}" for n in ("title", "link", "description")} | {
    _CONTENT, f"{{{_DC}}}creator", f"{{{_DC}}}date", f"{{{_DC}}}subject"}
_ATOM_ENTRY = {f"{{{_ATOM}}}{n}" for n in (
    "title", "link", "id", "published", "updated", "author", "summary", "content", "category")}
_REPEATABLE = {"category", f"{{{_DC}}}subject", f"{{{_ATOM}}}category", "enclosure",
               f"{{{_MEDIA}}}thumbnail", f"{{{_MEDIA}}}content", f"{{{_ATOM}}}link"}
_TEXT_TYPES = {"text": "text/plain", "html": "text/html", "text/plain": "text/plain",
               "text/html": "text/html"}
_C1 = re.compile("[\x80-\x9f]")
# feedparser's own tables and patterns, copied so that the fast path never
# imports feedparser (13 MB per process); feedparser.html._cp1252 and
# feedparser.urls._urifixer in 6.0
_cp1252 = {
    128: "\u20ac", 130: "\u201a", 131: "\u0192", 132: "\u201e", 133: "\u2026", 134: "\u2020",
    135: "\u2021", 136: "\u02c6", 137: "\u2030", 138: "\u0160", 139: "\u2039", 140: "\u0152",
    142: "\u017d", 145: "\u2018", 146: "\u2019", 147: "\u201c", 148: "\u201d", 149: "\u2022",
    150: "\u2013", 151: "\u2014", 152: "\u02dc", 153: "\u2122", 154: "\u0161", 155: "\u203a",
    156: "\u0153", 158: "\u017e", 159: "\u0178",
}
_URIFIXER = re.compile("^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_RFC822 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d\d?) (" + "|".join(_MONTHS) + r") (\d{4}) "
    r"(\d\d):(\d\d):(\d\d) (?:GMT|UT|UTC|Z|([+-])(\d\d)(\d\d))")
_W3CDTF = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:Z|([+-])(\d\d):(\d\d)))?")
_XML_DECL = re.compile(r"^<\?xml[^>]*?>")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          huge_tree=False, remove_blank_text=False)


class _Unsupported(Exception):
    """Outside the fast path's subset: use feedparser."""


def fast_parse(content: bytes, headers: dict[str, str], base: str) -> dict[str, Any] | None:
    """The feed as {'title', 'ttl', 'entries'} in feedparser's shapes,
    or None when feedparser must read it. `headers` are lower-cased response
    headers; `base` is the document's URL (feedparser's base URI)."""
    try:
        root = _root(content, headers)
        if root.tag == "rss":
            return _rss(root, base)
        if root.tag == f"{{{_ATOM}}}feed":
            return _atom(root, base)
        if root.tag == f"{{{_RDF}}}RDF":
            return _rdf(root, base)
    except (_Unsupported, etree.XMLSyntaxError, UnicodeDecodeError, LookupError, ValueError):
        pass
    return None


def _root(content: bytes, headers: dict[str, str]) -> etree._Element:
    """Decode as feedparser would (RFC 3023 for XML media types) and parse."""
    ctype = headers.get("content-type", "").lower()
    mime = ctype.split(";")[0].strip()
    charset = header_charset(ctype)
    if content.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00", b"\x4c\x6f")):
        raise _Unsupported("byte order mark or EBCDIC")
    if mime.startswith("application/") and mime.endswith("xml"):
        encoding = charset or xml_encoding(content) or "utf-8"
    elif mime.startswith("text/") and mime.endswith("xml") and charset:
        encoding = charset
    else:
        raise _Unsupported("not an XML media type with a known charset")
    text = _XML_DECL.sub("", content.decode(encoding), count=1)
    if "<!DOCTYPE" in text[:2048] or "<!ENTITY" in text:
        raise _Unsupported("DOCTYPE")
    root = etree.fromstring(text, _PARSER)
    if any(isinstance(el.tag, str) and el.tag.rsplit("}", 1)[-1].lower() in ("item", "entry")
           and el.getparent() is not None and not _entry_home(el) for el in root.iter()):
        raise _Unsupported("an entry where feedparser would also see one")
    if root.find(".//*[@{http://www.w3.org/XML/1998/namespace}base]") is not None \
            or root.get(_XML_BASE) is not None:
        raise _Unsupported("xml:base")
    return root


def _urljoin(base: str, uri: str) -> str:
    """feedparser.urls._urljoin."""
    uri = _URIFIXER.sub(r"\1\3", uri)
    try:
        return join(base, uri)
    except ValueError:
        return ""


def _parse_date(text: str) -> time.struct_time | None:
    """feedparser's date as a UTC 9-tuple. The two shapes nearly every feed
    uses, strictly written, are read here exactly as feedparser reads them;
    anything else is handed to feedparser's own many handlers."""
    rfc = _RFC822.fullmatch(text)
    w3c = None if rfc else _W3CDTF.fullmatch(text)
    if rfc:
        day, month, year, hh, mm, ss, sign, oh, om = rfc.groups()
        parts = (int(year), _MONTHS[month], int(day), int(hh), int(mm), int(ss))
    elif w3c:
        year, month, day, hh, mm, ss, sign, oh, om = w3c.groups()
        parts = (int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0))
    else:
        return _feedparser_date(text)
    offset = dt.timedelta(hours=int(oh or 0), minutes=int(om or 0))
    try:
        stamp = dt.datetime(*parts)
        return (stamp - offset if sign != "-" else stamp + offset).utctimetuple()
    except (ValueError, OverflowError):  # 31 Feb, year 0: feedparser has its ways
        return _feedparser_date(text)


def _feedparser_date(text: str) -> time.struct_time | None:
    from feedparser.datetimes import _parse_date

    return _parse_date(text)


def _entry_home(el: etree._Element) -> bool:
    """True for an <item>/<entry> where the fast path reads entries."""
    parent = el.getparent()
    return (el.tag == "item" and parent.tag == "channel" and parent.getparent().tag == "rss") \
        or (el.tag == f"{{{_RSS1}}}item" and parent.tag == f"{{{_RDF}}}RDF") \
        or (el.tag == f"{{{_ATOM}}}entry" and parent.tag == f"{{{_ATOM}}}feed")


def _fix(text: str | None) -> str:
    """What feedparser does to every text value of an element it expects
    text in: strip, undo UTF-8 read as Latin-1, map C1 controls as cp1252."""
    output = (text or "").strip()
    if output.isascii():  # nothing to undo, no C1 control: most values
        return output
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        output = output.encode("iso-8859-1").decode("utf-8")
    return output.translate(_cp1252) if _C1.search(output) else output


def _text(el: etree._Element, allowed: set[str] = frozenset()) -> str:
    if len(el) or set(el.attrib) - allowed - {_XML_LANG}:
        raise _Unsupported(f"markup or attributes in <{el.tag}>")
    return _fix(el.text)


def _children(el: etree._Element, allowed: set[str]) -> list[etree._Element]:
    kids = [k for k in el if isinstance(k.tag, str)]
    if len(kids) != len(el):
        raise _Unsupported("comment or processing instruction in an entry")
    seen: set[str] = set()
    for kid in kids:
        if kid.tag not in allowed or (kid.tag in seen and kid.tag not in _REPEATABLE):
            raise _Unsupported(f"<{kid.tag}> in an entry")
        seen.add(kid.tag)
    return kids


def _rss(root: etree._Element, base: str) -> dict[str, Any]:
    channels = root.findall("channel")
    if len(channels) != 1 or set(root.attrib) - {"version"}:
        raise _Unsupported("not one <channel>")
    channel = channels[0]
    items = channel.findall("item")
    return {
        "title": _feed_text(channel, "title"), "ttl": _feed_text(channel, "ttl"),
        "entries": [_rss_item(i, base) for i in items],
    }


def _rdf(root: etree._Element, base: str) -> dict[str, Any]:
    channel = root.find(f"{{{_RSS1}}}channel")
    items = root.findall(f"{{{_RSS1}}}item")
    if channel is None:
        raise _Unsupported("RSS 1.0 without a channel")
    return {
        "title": _feed_text(channel, f"{{{_RSS1}}}title"), "ttl": None,
        "entries": [_rss_item(i, base, rdf=True) for i in items],
    }


def _feed_text(parent: etree._Element, tag: str) -> str | None:
    found = parent.findall(tag)
    if len(found) > 1:
        raise _Unsupported(f"several <{tag}>")
    if not found:
        return None
    return _text(found[0], {"type"} if tag.startswith(f"{{{_ATOM}}}") else set())


def _resolved(el: etree._Element, base: str) -> str:
    """A URL element's text as feedparser gives it: resolved, then fixed."""
    if len(el):
        raise _Unsupported(f"markup in <{el.tag}>")
    raw = (el.text or "").strip()
    return _fix(_urljoin(base, raw)) if raw else ""


def _link_text(el: etree._Element, base: str) -> str:
    """feedparser's treatment of an RSS <link>: resolved, then '&amp;' undone."""
    if el.attrib:
        raise _Unsupported("attributes on <link>")
    output = _resolved(el, base).replace("&amp;", "&")
    return re.sub("&([A-Za-z0-9_]+);", r"&\g<1>", output)


def _rss_item(item: etree._Element, base: str, rdf: bool = False) -> dict[str, Any]:
    allowed = _RDF_ITEM if rdf else _RSS_ITEM
    if set(item.attrib) - ({f"{{{_RDF}}}about"} if rdf else set()):
        raise _Unsupported("attributes on <item>")
    e: dict[str, Any] = {"links": [], "enclosures": []}
    if rdf and item.get(f"{{{_RDF}}}about"):
        e["id"] = item.get(f"{{{_RDF}}}about")
    guid_link = None
    for kid in _children(item, allowed):
        tag = etree.QName(kid).localname if rdf or kid.tag.startswith("{") else kid.tag
        ns = etree.QName(kid).namespace
        if tag == "title":
            e["title"] = _text(kid)
        elif tag == "link":
            href = _link_text(kid, base)
            e["link"] = href
            e["links"].append({"rel": "alternate", "type": "text/html", "href": href})
        elif tag == "guid":
            permalink = kid.get("isPermaLink", "true") == "true"
            if set(kid.attrib) - {"isPermaLink"}:
                raise _Unsupported("attributes on <guid>")
            e["id"] = _resolved(kid, base) if permalink else _text(kid, {"isPermaLink"})
            if permalink:
                guid_link = e["id"]
        elif tag == "description":
            e["summary"] = _text(kid)
            e["summary_detail"] = {"type": "text/html", "base": base}
        elif kid.tag == _CONTENT:
            e["content"] = [{"type": "text/html", "base": base, "value": _text(kid)}]
        elif tag == "pubDate":
            e["published_parsed"] = _parse_date(_text(kid))
        elif ns == _DC and tag == "date":
            e["updated_parsed"] = _parse_date(_text(kid))
        elif tag == "author" or (ns == _DC and tag == "creator"):
            if "author" in e:
                raise _Unsupported("two authors")
            e["author"] = _text(kid)
        elif tag == "enclosure":
            _enclosure(kid, e)
        elif ns == _MEDIA:
            _media(kid, e)
        else:  # category, comments, dc:subject: nothing a record uses
            _text(kid, {"domain"})
    if "link" not in e and guid_link is not None:
        e["link"] = guid_link
    return _finish(e)


def _finish(e: dict[str, Any]) -> dict[str, Any]:
    """The fallbacks feedparser applies when an entry lacks a value."""
    if "summary" not in e and e.get("content"):
        e["summary"] = e["content"][0]["value"]  # content is copied to summary
    if "updated_parsed" not in e and "published_parsed" in e:
        e["updated_parsed"] = e["published_parsed"]  # FeedParserDict's mapping
    return e


def _enclosure(kid: etree._Element, e: dict[str, Any]) -> None:
    if len(kid) or (kid.text or "").strip():
        raise _Unsupported("content in <enclosure>")
    attrs = _attributes(kid)
    href = attrs.get("url", attrs.get("uri", attrs.get("href")))
    if href:  # feedparser's _enforce_href
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = href
    attrs["rel"] = "enclosure"
    e["links"].append(attrs)
    e["enclosures"].append(attrs)


def _attributes(el: etree._Element) -> dict[str, str]:
    """Attributes as feedparser keeps them: names lower-cased, and the values
    of `rel` and `type` too."""
    attrs = {k.lower(): v for k, v in el.attrib.items()}
    for key in ("rel", "type"):
        if key in attrs:
            attrs[key] = attrs[key].lower()
    return attrs


def _media(kid: etree._Element, e: dict[str, Any]) -> None:
    if len(kid) or (kid.text or "").strip() or any(k.startswith("{") for k in kid.attrib):
        raise _Unsupported("content in a media element")
    attrs = _attributes(kid)
    key = "media_thumbnail" if etree.QName(kid).localname == "thumbnail" else "media_content"
    e.setdefault(key, []).append(attrs)


def _atom(root: etree._Element, base: str) -> dict[str, Any]:
    entries = root.findall(f"{{{_ATOM}}}entry")
    return {"title": _feed_text(root, f"{{{_ATOM}}}title"), "ttl": None,
            "entries": [_atom_entry(e, base) for e in entries]}


def _atom_entry(entry: etree._Element, base: str) -> dict[str, Any]:
    if set(entry.attrib) - {_XML_LANG}:
        raise _Unsupported("attributes on <entry>")
    e: dict[str, Any] = {"links": [], "enclosures": []}
    id_link = None
    for kid in _children(entry, _ATOM_ENTRY):
        tag = etree.QName(kid).localname
        if tag == "title":
            e["title"] = _text(kid, {"type"})
            _content_type(kid)
        elif tag == "link":
            _atom_link(kid, e, base)
        elif tag == "id":
            if set(kid.attrib) - {_XML_LANG}:
                raise _Unsupported("attributes on <id>")
            e["id"] = _resolved(kid, base)
            id_link = e["id"]
        elif tag in ("published", "updated"):
            e[f"{tag}_parsed"] = _parse_date(_text(kid))
        elif tag == "author":
            e["author"] = _atom_author(kid)
        elif tag == "summary":
            e["summary"] = _text(kid, {"type"})
            e["summary_detail"] = {"type": _content_type(kid), "base": base}
        elif tag == "content":
            kind = _content_type(kid)
            e["content"] = [{"type": kind, "base": base, "value": _text(kid, {"type"})}]
        else:
            _text(kid, {"term", "scheme", "label"})
    if "link" not in e and id_link is not None:
        e["link"] = id_link
    return _finish(e)


def _content_type(el: etree._Element) -> str:
    kind = _TEXT_TYPES.get(el.get("type", "text").lower())
    if kind is None:
        raise _Unsupported(f"type {el.get('type')!r}")
    return kind


def _atom_link(kid: etree._Element, e: dict[str, Any], base: str) -> None:
    if len(kid) or (kid.text or "").strip() or not kid.get("href") \
            or any(k.startswith("{") or k in ("url", "uri") for k in kid.attrib):
        raise _Unsupported("unusual <link>")
    attrs = _attributes(kid)
    attrs.setdefault("rel", "alternate")
    attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
    attrs["href"] = _urljoin(base, attrs["href"])
    e["links"].append(attrs)
    if attrs["rel"] == "enclosure":
        e["enclosures"].append(attrs)
    elif attrs["rel"] == "alternate" and attrs["type"] in ("text/html", "application/xhtml+xml"):
        e["link"] = attrs["href"]


def _atom_author(el: etree._Element) -> str:
    if el.attrib or (el.text or "").strip():
        raise _Unsupported("unusual <author>")
    parts: dict[str, str] = {}
    for kid in _children(el, {f"{{{_ATOM}}}{n}" for n in ("name", "email", "uri")}):
        if len(kid) or kid.attrib:
            raise _Unsupported("markup in <author>")
        parts[etree.QName(kid).localname] = (kid.text or "").strip()
    name, email = parts.get("name"), parts.get("email")
    if name and email:
        return f"{name} ({email})"
    return name or email or ""
