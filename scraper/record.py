"""The reference record format: the one module that knows it.

A record is one article rendered as a Hexo post (`shared/seed/record.md`):
YAML front matter (title, categories, headimg, author, comments, date,
thumbnail) and an HTML body in a `<div>`. `build_record` turns a parsed feed
entry into a `Record`; `render_post` writes a `Record` in the reference format.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from scraper.config import FeedConfig
from scraper.parser import Entry
from scraper.sanitize import CleanHtml, clean_html, first_image, html_to_text
from scraper.urls import absolute

__all__ = [
    "Record",
    "build_record",
    "clean_title",
    "format_date",
    "render_post",
    "yaml_scalar",
]

_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]*>", re.S)
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]"
)
_PLAIN_YAML = re.compile(r"^[^\W\d_][\w .&()（）·－—\-]*(?<![ .])$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FENCE = re.compile(r"`{3,}|^(\s*)~{3,}", re.M)
_PRE_OPEN = re.compile(r"<(pre|textarea|xmp|listing)\b", re.I)
_PRE_CLOSE = re.compile(r"</(pre|textarea|xmp|listing)\s*>", re.I)


@dataclass(frozen=True)
class Record:
    """One article as the archive keeps it. `body` is sanitized HTML with
    braces not escaped; `published` is the feed's date (None: use first seen)."""

    url: str
    guid: str
    feed_url: str
    title: str
    author: str
    categories: tuple[str, ...]
    headimg: str
    body: str
    published: datetime | None
    summary_only: bool = False  # the feed carried only a summary
    fulltext_error: str = ""  # why the article page was not used
    entry_hash: str = ""  # hash of the feed's version, kept when full text replaces it

    @property
    def thumbnail(self) -> str:
        return self.headimg

    @property
    def content_hash(self) -> str:
        """What makes a new version: the feed entry's title, body, date and image
        (so an unchanged entry is unchanged even after its page was fetched)."""
        return self.entry_hash or _hash(self.title, self.body, self.published, self.headimg)

    def without_full_text(self, reason: str) -> Record:
        """The feed's summary stays; `reason` says why the page was not used."""
        return replace(self, fulltext_error=reason)

    def with_full_text(
        self, page_html: str, page_url: str, image: str = "", published: datetime | None = None,
        clean: bool = False,
    ) -> Record:
        """The body replaced by an article page's main content, sanitized here
        unless `clean`: HTML that `scraper.extractor` wrote from its whitelist
        of tags and attributes, which the sanitizer would leave byte for byte
        as it is (tests/test_extractor.py holds it to that)."""
        if clean:
            cleaned = CleanHtml(page_html, first_image(page_html, page_url))
        else:
            cleaned = clean_html(page_html, page_url)
        return replace(
            self, body=cleaned.html, summary_only=False, fulltext_error="",
            headimg=cleaned.first_image or self.headimg or absolute(image, page_url),
            published=self.published or published,
        )


def _hash(title: str, body: str, published: datetime | None, headimg: str) -> str:
    stamp = published.isoformat() if published else ""
    data = "\x1f".join((title, body, stamp, headimg))
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def build_record(entry: Entry, feed: FeedConfig, feed_url: str | None = None) -> Record:
    """The record for one feed entry: full content before summary, sanitized."""
    raw_body = entry.content or entry.summary
    cleaned = clean_html(raw_body, entry.base)
    headimg = cleaned.first_image or entry.image
    record = Record(
        url=entry.link,
        guid=entry.guid,
        feed_url=feed_url or feed.url,
        title=clean_title(entry.title, cleaned.html, entry.link or entry.guid or "(untitled)"),
        author=feed.source,
        categories=tuple(feed.categories),
        headimg=absolute(headimg, entry.base) if headimg else "",
        body=cleaned.html,
        published=entry.published or entry.updated,
        summary_only=not entry.content,
    )
    return replace(record, entry_hash=record.content_hash)


def clean_title(raw: str, body_html: str = "", fallback: str = "") -> str:
    """Entities decoded, then markup removed, whitespace (ideographic space
    included) collapsed; unprintable characters dropped. With no title, the
    first 60 characters of the body's text; with no text either, `fallback`."""
    text = _TAG.sub("", html.unescape(raw))
    text = " ".join(_UNPRINTABLE.sub("", text).split())
    if not text and body_html:
        text = " ".join(_UNPRINTABLE.sub("", html_to_text(body_html)).split())[:60].strip()
    return text or fallback


def format_date(when: datetime) -> str:
    """RFC 822 in GMT with English names, whatever the locale."""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return (
        f"{_WEEKDAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} "
        f"{when.year:04d} {when.hour:02d}:{when.minute:02d}:{when.second:02d} GMT"
    )


def yaml_scalar(value: str, quote: bool = False) -> str:
    """A YAML scalar that loads back to exactly `value` (single-quoted unless
    it is plainly safe as it stands, like the seed's `新浪财经`)."""
    plain = (
        not quote
        and _PLAIN_YAML.match(value) is not None
        and value.lower() not in _YAML_WORDS
    )
    return value if plain else "'" + value.replace("'", "''") + "'"


def render_post(record: Record, first_seen: datetime) -> str:
    """The record as a Hexo post, in the reference format."""
    date = format_date(record.published or first_seen)
    lines = ["---", f"title: {yaml_scalar(_printable(record.title), quote=True)}"]
    if record.categories:
        lines.append("categories: ")
        lines.extend(f" - {yaml_scalar(_printable(c))}" for c in record.categories)
    else:
        lines.append("categories: []")
    lines += [
        f"headimg: {yaml_scalar(record.headimg, quote=True)}",
        f"author: {yaml_scalar(_printable(record.author))}",
        "comments: false",
        f"date: {date}",
        f"thumbnail: {yaml_scalar(record.thumbnail, quote=True)}",
        "---",
        "<div>",
        body_for_hexo(record.body),
        "</div>",
        "",
    ]
    return "\n".join(lines)


def _printable(text: str) -> str:
    return " ".join(_UNPRINTABLE.sub("", text).split())


def body_for_hexo(body: str) -> str:
    """The body as Hexo must receive it: braces as `&#123;`/`&#125;` (its
    template engine leaves them alone), no code fences, and no blank lines
    (Markdown would end the HTML block and show the rest as code). Blank
    lines inside `<pre>` become `&#10;` so preformatted text keeps them."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("{", "&#123;").replace("}", "&#125;")
    text = _FENCE.sub(lambda m: m.group(0).replace("`", "&#96;").replace("~", "&#126;"), text)
    out: list[str] = []
    in_pre = 0
    for line in text.split("\n"):
        if not line.strip():
            if in_pre and out:
                out[-1] += "&#10;"
            continue
        out.append(line)
        in_pre = max(0, in_pre + len(_PRE_OPEN.findall(line)) - len(_PRE_CLOSE.findall(line)))
    return "\n".join(out)
