"""A synthetic feed workload and the local HTTP server that serves it.

The workload is deterministic (same parameters, same bytes) so every tool in
one benchmark run reads exactly the same documents:

- `feeds` feeds of `items` entries each, RSS 2.0, Atom 1.0 and RSS 1.0 (RDF)
  in turn;
- a share of GBK feeds (`gbk`); half of them declare the charset only in the
  HTTP header (the XML declaration names none), half in both places;
- `mode="content"`: every entry carries its full article (content:encoded /
  Atom content); `mode="summary"`: a two-sentence summary and a link to an
  article page of 30-80 KB served under /a/;
- conditional GET: ETag and Last-Modified on every response, 304 on a match
  (switch off with `conditional=False`).

Run it alone as a server (prints its base URL, then serves until killed):

    python bench/workload.py --feeds 500 --items 20 --mode content
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import html
import random
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Workload", "serve"]

_WORDS_EN = [
    "market", "yields", "bond", "equity", "rally", "central", "bank", "inflation", "rate",
    "cut", "guidance", "earnings", "revenue", "margin", "outlook", "dollar", "euro", "yen",
    "treasury", "curve", "spread", "credit", "liquidity", "investors", "traders", "futures",
    "oil", "gold", "copper", "volatility", "index", "shares", "quarter", "growth",
]
_WORDS_ZH = list("央行降准利率债券股票市场指数上涨下跌投资者经济增长通胀人民币汇率银行基金证券"
                 "期货黄金原油季度营收利润监管政策流动性")
_TITLE_BITS_EN = ("Fed", "ECB", "S&P 500", "Treasury \"yields\"", "O'Neil's", "Nikkei 225",
                  "Q3 earnings", "Oil & gas", "BoJ", "Gold")
_TITLE_BITS_ZH = ("央行", "降准", "A股", "人民币汇率", "沪深300", "债市", "「新华」", "券商")
_EPOCH = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Workload:
    """The parameters; every document is a pure function of them."""

    feeds: int = 500
    items: int = 20
    mode: str = "content"  # "content" or "summary"
    gbk: float = 0.10
    conditional: bool = True
    seed: int = 1

    def kind(self, feed: int) -> str:
        return ("rss", "atom", "rdf")[feed % 3]

    def charset(self, feed: int) -> tuple[str, bool]:
        """(charset, declared in the XML too); 'utf-8' for most feeds."""
        every = round(1 / self.gbk) if self.gbk else 0
        if every and feed % every == every - 1:
            return "gbk", (feed // every) % 2 == 1
        return "utf-8", True

    def title(self, feed: int, item: int) -> str:
        rnd = random.Random(f"{self.seed}-t-{feed}-{item}")
        if self.charset(feed)[0] == "gbk" or rnd.random() < 0.3:
            bits = rnd.sample(_TITLE_BITS_ZH, 2)
            return f"{bits[0]}{''.join(rnd.choices(_WORDS_ZH, k=8))}{bits[1]} 第{feed}-{item}号"
        bits = rnd.sample(_TITLE_BITS_EN, 2)
        words = " ".join(rnd.choices(_WORDS_EN, k=6))
        return f"{bits[0]}: {words} — {bits[1]} #{feed}-{item}"

    def feed_url(self, base: str, feed: int) -> str:
        return f"{base}/f/{feed}.xml"

    def feed_doc(self, base: str, feed: int) -> tuple[bytes, str]:
        """The feed's bytes and its Content-Type header."""
        charset, in_xml = self.charset(feed)
        text = {"rss": _rss, "atom": _atom, "rdf": _rdf}[self.kind(feed)](self, base, feed)
        decl = f'<?xml version="1.0" encoding="{charset}"?>' if in_xml else '<?xml version="1.0"?>'
        ctype = {"rss": "application/rss+xml", "atom": "application/atom+xml",
                 "rdf": "application/rdf+xml"}[self.kind(feed)]
        return (decl + "\n" + text).encode(charset), f"{ctype}; charset={charset}"

    def entry_html(self, feed: int, item: int, size: int) -> str:
        """Article HTML of about `size` characters (paragraphs drawn from a
        pool, so that serving 10,000 pages does not make the server the
        bottleneck)."""
        rnd = random.Random(f"{self.seed}-b-{feed}-{item}")
        pool = _paragraphs(self.seed, self.charset(feed)[0] == "gbk")
        parts: list[str] = []
        total = 0
        while total < size:
            piece = pool[rnd.randrange(len(pool))]
            if rnd.random() < 0.15:
                piece += f'<p><img src="/img/{feed}-{item}-{total}.jpg" alt="chart"></p>'
            parts.append(piece)
            total += len(piece)
        return "".join(parts)

    def summary(self, feed: int, item: int) -> str:
        return self.entry_html(feed, item, 200)[:200].rsplit(" ", 1)[0] + "…</p>"

    def article_page(self, feed: int, item: int) -> bytes:
        """A 30-80 KB news page: navigation, the article, related links, footer."""
        rnd = random.Random(f"{self.seed}-p-{feed}-{item}")
        size = rnd.randint(30_000, 80_000)
        nav = "".join(f'<li><a href="/section/{n}">Section {n}</a></li>' for n in range(40))
        related = "".join(f'<li><a href="/a/{feed}/{n}.html">Related story {n}</a></li>'
                          for n in range(25))
        title = html.escape(self.title(feed, item))
        body = self.entry_html(feed, item, int(size * 0.6))
        filler = "<!-- " + "x" * max(0, size - len(body) - len(nav) - len(related) - 800) + " -->"
        page = (
            f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f'<meta property="og:image" content="/img/og-{feed}-{item}.jpg">'
            f"<script>var tracking = {{}};</script>{filler}</head><body>"
            f"<header><ul class=\"nav\">{nav}</ul></header>"
            f"<main><article><h1>{title}</h1><div class=\"byline\">By A. Writer</div>"
            f"<div class=\"article-body\">{body}</div></article>"
            f"<aside><ul class=\"related\">{related}</ul></aside></main>"
            "<footer><p>© Example Media. All rights reserved.</p></footer></body></html>"
        )
        return page.encode("utf-8")

    def published(self, feed: int, item: int) -> datetime:
        return _EPOCH + timedelta(minutes=feed * 7 + item * 61)


@functools.cache
def _paragraphs(seed: int, zh: bool) -> tuple[str, ...]:
    rnd = random.Random(f"{seed}-pool-{zh}")
    if zh:
        texts = ("".join(rnd.choices(_WORDS_ZH, k=rnd.randint(60, 160))) + "。"
                 for _ in range(256))
    else:
        texts = (" ".join(rnd.choices(_WORDS_EN, k=rnd.randint(40, 90))).capitalize() + "."
                 for _ in range(256))
    return tuple(f"<p>{html.escape(t)}</p>" for t in texts)


def _item_parts(w: Workload, base: str, feed: int, item: int) -> tuple[str, str, str]:
    link = f"{base}/a/{feed}/{item}.html"
    if w.mode == "content":
        return link, w.summary(feed, item), w.entry_html(feed, item, 2500)
    return link, w.summary(feed, item), ""


def _rss(w: Workload, base: str, feed: int) -> str:
    items = []
    for i in range(w.items):
        link, summary, content = _item_parts(w, base, feed, i)
        full = f"<content:encoded><![CDATA[{content}]]></content:encoded>" if content else ""
        items.append(
            f"<item><title>{html.escape(w.title(feed, i), quote=False)}</title><link>{link}</link>"
            f'<guid isPermaLink="true">{link}</guid>'
            f"<pubDate>{format_datetime(w.published(feed, i))}</pubDate>"
            f"<author>desk{feed}@example.com (Desk {feed})</author>"
            f"<description>{html.escape(summary)}</description>{full}</item>"
        )
    return (
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>Feed {feed}</title><link>{base}/</link>"
        f"<description>Bench feed {feed}</description><ttl>30</ttl>{''.join(items)}"
        "</channel></rss>"
    )


def _atom(w: Workload, base: str, feed: int) -> str:
    entries = []
    for i in range(w.items):
        link, summary, content = _item_parts(w, base, feed, i)
        when = w.published(feed, i).isoformat()
        full = f'<content type="html">{html.escape(content)}</content>' if content else ""
        entries.append(
            f"<entry><title>{html.escape(w.title(feed, i), quote=False)}</title>"
            f'<link rel="alternate" href="{link}"/><id>urn:bench:{feed}:{i}</id>'
            f"<published>{when}</published><updated>{when}</updated>"
            f"<author><name>Desk {feed}</name></author>"
            f'<summary type="html">{html.escape(summary)}</summary>{full}</entry>'
        )
    return (
        '<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Feed {feed}</title><id>urn:bench:{feed}</id>"
        f'<link rel="alternate" href="{base}/"/><updated>{_EPOCH.isoformat()}</updated>'
        f"{''.join(entries)}</feed>"
    )


def _rdf(w: Workload, base: str, feed: int) -> str:
    items, seq = [], []
    for i in range(w.items):
        link, summary, content = _item_parts(w, base, feed, i)
        full = f"<content:encoded><![CDATA[{content}]]></content:encoded>" if content else ""
        seq.append(f'<rdf:li rdf:resource="{link}"/>')
        items.append(
            f'<item rdf:about="{link}"><title>{html.escape(w.title(feed, i), quote=False)}</title>'
            f"<link>{link}</link><dc:date>{w.published(feed, i).isoformat()}</dc:date>"
            f"<dc:creator>Desk {feed}</dc:creator>"
            f"<description>{html.escape(summary)}</description>{full}</item>"
        )
    return (
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f'<channel rdf:about="{base}/"><title>Feed {feed}</title><link>{base}/</link>'
        f"<description>Bench feed {feed}</description>"
        f"<items><rdf:Seq>{''.join(seq)}</rdf:Seq></items></channel>{''.join(items)}</rdf:RDF>"
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: with Nagle's algorithm the body
    # waits for the client's delayed ACK, 40 ms a response
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        found = self.server.document(self.path)
        if found is None:
            self._send(404, b"not found", "text/plain")
            return
        body, ctype = found
        if self.server.delay:
            time.sleep(self.server.delay)
        etag = '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"'
        self.server.count(self.path)
        if self.server.workload.conditional and self.headers.get("If-None-Match") == etag:
            self._send(304, b"", ctype, etag)
            return
        self._send(200, body, ctype, etag)

    def _send(self, status: int, body: bytes, ctype: str, etag: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if etag and self.server.workload.conditional:
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", "Sun, 01 Nov 2026 00:00:00 GMT")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, workload: Workload) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.workload = workload
        self.base = f"http://127.0.0.1:{self.server_address[1]}"
        self._cache: dict[int, tuple[bytes, str]] = {}
        self._lock = threading.Lock()
        self.requests = 0
        self.delay = 0.0  # seconds before each answer (tests slow the pass down)

    def count(self, path: str) -> None:
        with self._lock:
            self.requests += 1

    def document(self, path: str) -> tuple[bytes, str] | None:
        parts = path.split("?")[0].strip("/").split("/")
        try:
            if parts[0] == "f" and len(parts) == 2:
                feed = int(parts[1].removesuffix(".xml"))
                if 0 <= feed < self.workload.feeds:
                    return self._feed(feed)
            if parts[0] == "a" and len(parts) == 3:
                feed, item = int(parts[1]), int(parts[2].removesuffix(".html"))
                if 0 <= feed < self.workload.feeds and 0 <= item < self.workload.items:
                    return self.workload.article_page(feed, item), "text/html; charset=utf-8"
        except ValueError:
            pass
        return None

    def _feed(self, feed: int) -> tuple[bytes, str]:
        doc = self._cache.get(feed)
        if doc is None:
            doc = self.workload.feed_doc(self.base, feed)
            self._cache[feed] = doc
        return doc


def serve(workload: Workload) -> _Server:
    """Start the server on a free port of 127.0.0.1 in a background thread."""
    server = _Server(workload)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--mode", choices=("content", "summary"), default="content")
    ap.add_argument("--gbk", type=float, default=0.10)
    ap.add_argument("--no-conditional", action="store_true")
    args = ap.parse_args()
    w = Workload(args.feeds, args.items, args.mode, args.gbk, not args.no_conditional)
    server = _Server(w)
    for feed in range(w.feeds):  # build every feed up front: serving stays cheap
        server._feed(feed)
    print(server.base, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    _main()
