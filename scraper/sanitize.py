"""Remove active content from article HTML while keeping everything else verbatim.

The reference record keeps the feed's HTML byte for byte (comments, `<style>`,
unknown attributes), so this is a streaming rewriter, not a tree serializer:
every token that needs no change is echoed as it was written. It removes
`<script>` and other active elements, event-handler attributes and
`javascript:` URLs, keeps `<iframe>` only for an allow-list of video players,
makes relative URLs absolute and gives lazy-loaded images a real `src`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from scraper.urls import absolute, host_of

__all__ = ["CleanHtml", "clean_html", "first_image", "html_to_text"]

# Elements removed together with their content.
_DROP = {"script", "object", "applet", "frame", "frameset", "noembed", "template"}
# Void elements removed (no content to skip).
_DROP_VOID = {"embed", "base", "link", "meta", "param"}
_VIDEO_HOSTS = (
    "youtube.com", "youtube-nocookie.com", "youtu.be", "vimeo.com",
    "bilibili.com", "youku.com",
)
_URL_ATTRS = {
    "href", "src", "action", "formaction", "poster", "background", "cite",
    "longdesc", "data", "xlink:href", "usemap", "manifest", "icon",
}
_LAZY_ATTRS = (
    "data-src", "data-original", "data-lazy-src", "data-actualsrc",
    "data-lazyload", "data-url", "data-echo", "data-original-src",
)
_LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")
_VOID = {
    "area", "br", "col", "embed", "hr", "img", "input", "link", "meta",
    "param", "source", "track", "wbr", "base",
}
_BAD_SCHEME = re.compile(r"^(javascript|vbscript|livescript|data:text/html)", re.I)
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")
_PLACEHOLDER = re.compile(r"^data:|blank|placeholder|loading|spacer|grey\.gif|lazy", re.I)


@dataclass(frozen=True)
class CleanHtml:
    """Sanitized HTML and the first image found outside comments ('' if none)."""

    html: str
    first_image: str


def clean_html(source: str, base_url: str = "") -> CleanHtml:
    """Sanitize `source`, resolving relative URLs against `base_url`."""
    cleaner = _Cleaner(base_url)
    try:
        cleaner.feed(source)
        cleaner.close()
    except (AssertionError, ValueError):  # html.parser gives up on some garbage
        return CleanHtml(html.escape(source), "")
    return CleanHtml("".join(cleaner.out), cleaner.first_image)


_IMG_TAG = re.compile(r"<img\b([^>]*)>", re.I)
_DQ_ATTR = re.compile(r'([\w:-]+)="([^"]*)"')


def first_image(clean: str, base_url: str = "") -> str:
    """The first image `clean_html` would report for HTML that is already
    clean and was written by this project (double-quoted attributes, no
    comments), found without parsing it again."""
    for match in _IMG_TAG.finditer(clean):
        values = {k.lower(): html.unescape(v) for k, v in _DQ_ATTR.findall(match.group(1))}
        if image := _image_src(values, base_url):
            return image
    return ""


def html_to_text(source: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed (for search and titles)."""
    parser = _TextParser()
    try:
        parser.feed(source)
        parser.close()
    except (AssertionError, ValueError):
        return " ".join(source.split())
    return " ".join("".join(parser.parts).split())


def _unsafe_url(value: str) -> bool:
    return bool(_BAD_SCHEME.match(_CONTROL.sub("", value)))


def _allowed_iframe(src: str) -> bool:
    host = host_of(src)
    return any(host == h or host.endswith("." + h) for h in _VIDEO_HOSTS)


def _attr_text(name: str, value: str | None) -> str:
    if value is None:
        return f" {name}"
    return f' {name}="{html.escape(value, quote=True)}"'


class _Parser(HTMLParser):
    def updatepos(self, i: int, j: int) -> int:
        """Skip the line and column count (for `getpos`, never asked for
        here): a tenth of the time html.parser spends on a feed's HTML."""
        return j


class _Cleaner(_Parser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=False)
        self.base = base_url
        self.out: list[str] = []
        self.first_image = ""
        self._skip: str | None = None  # element being dropped with its content
        self._depth = 0

    # -- tags ---------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self.get_starttag_text() or "", void=True)

    def _start(self, tag: str, attrs: list, raw: str, void: bool = False) -> None:
        if self._skip:
            if tag == self._skip and not void:
                self._depth += 1
            return
        if tag in _DROP_VOID:
            return
        src = dict(attrs).get("src") or ""
        if tag in _DROP or (tag == "iframe" and not _allowed_iframe(absolute(src, self.base))):
            if not void and tag not in _VOID:
                self._skip, self._depth = tag, 1
            return
        new_attrs, changed = self._fix_attrs(tag, attrs)
        if tag == "img":
            self._note_image(new_attrs)
        if not changed:
            self.out.append(raw)
            return
        end = "/>" if raw.rstrip().endswith("/>") else ">"
        self.out.append(f"<{tag}{''.join(_attr_text(n, v) for n, v in new_attrs)}{end}")

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip:
                self._depth -= 1
                if self._depth == 0:
                    self._skip = None
            return
        if tag in _DROP or tag in _DROP_VOID:  # stray end tag of a dropped element
            return
        self.out.append(f"</{tag}>")

    # -- attributes ---------------------------------------------------------
    def _fix_attrs(self, tag: str, attrs: list) -> tuple[list[tuple[str, str | None]], bool]:
        kept: list[tuple[str, str | None]] = []
        changed = False
        for name, value in attrs:
            if name.startswith("on") or (name == "style" and value and _bad_style(value)):
                changed = True
                continue
            if value is not None and name in _URL_ATTRS:
                if _unsafe_url(value):
                    changed = True
                    continue
                fixed = absolute(value, self.base) if value.strip() else value
                changed |= fixed != value
                value = fixed
            elif value and name == "srcset":
                fixed = _fix_srcset(value, self.base)
                changed |= fixed != value
                value = fixed
            kept.append((name, value))
        if tag == "img":
            lazy = _lazy_fix(kept, self.base)
            if lazy is not None:
                return lazy, True
        return kept, changed

    def _note_image(self, attrs: list[tuple[str, str | None]]) -> None:
        if not self.first_image:
            self.first_image = _image_src(dict(attrs), self.base)

    # -- everything else is echoed verbatim (unless inside a dropped element) --
    def _emit(self, text: str) -> None:
        if not self._skip:
            self.out.append(text)

    def handle_data(self, data: str) -> None:
        self._emit(data)

    def handle_entityref(self, name: str) -> None:
        self._emit(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self._emit(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        self._emit(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self._emit(f"<!{decl}>")

    def unknown_decl(self, data: str) -> None:
        self._emit(f"<![{data}]>")

    def handle_pi(self, data: str) -> None:
        self._emit(f"<?{data}>")


def _bad_style(value: str) -> bool:
    lowered = _CONTROL.sub("", value).lower()
    return "expression(" in lowered or "javascript:" in lowered or "behavior:" in lowered


def _fix_srcset(value: str, base: str) -> str:
    out = []
    for candidate in value.split(","):
        bits = candidate.strip().split(None, 1)
        if not bits:
            continue
        if _unsafe_url(bits[0]):
            continue
        bits[0] = absolute(bits[0], base)
        out.append(" ".join(bits))
    return ", ".join(out)


def _lazy_fix(attrs: list[tuple[str, str | None]], base: str) -> list | None:
    """Give a lazy-loaded image its real `src`; None when nothing to do."""
    values = dict(attrs)
    real = next((values[a] for a in _LAZY_ATTRS if (values.get(a) or "").strip()), None)
    real_set = next((values[a] for a in _LAZY_SRCSET if (values.get(a) or "").strip()), None)
    src = (values.get("src") or "").strip()
    if real and _unsafe_url(real):
        real = None
    if not real and real_set and not src:
        real = real_set.split(",")[0].strip().split(" ")[0]
    if not real or (src and not _PLACEHOLDER.search(src)):
        return None
    real = absolute(real, base)
    fixed = [(n, v) for n, v in attrs if n != "src"]
    fixed.insert(0, ("src", real))
    if real_set and "srcset" not in values:
        fixed.append(("srcset", _fix_srcset(real_set, base)))
    return fixed


def _image_src(values: dict[str, str | None], base: str) -> str:
    """An `<img>`'s absolute source if it can be a record's headimg: not
    inline data, not a tracking pixel ('' otherwise)."""
    src = (values.get("src") or "").strip()
    if not src or src.startswith("data:") or _is_pixel(values):
        return ""
    return absolute(src, base)


def _is_pixel(values: dict[str, str | None]) -> bool:
    def small(v: str | None) -> bool:
        return bool(v) and v.strip().rstrip("px").strip() in ("0", "1")

    return small(values.get("width")) and small(values.get("height"))


class _TextParser(_Parser):
    _SKIP = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in ("br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "td"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in ("p", "div", "li", "td"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)
