"""A local HTTP server that misbehaves on purpose, one fault per path.

Runs in a thread on 127.0.0.1; every fault is bounded in time (a hanging or
trickling response gives up after `HANG_SECONDS`) so the server always stops.
The slow faults (`/hang`, `/trickle`) record how each request ended: see
`FaultServer.endings`.
"""

from __future__ import annotations

import gzip
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_SECONDS = 10

CHINESE_FEED = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>财经</title>'
    "<item><title>央行宣布降准0.5个百分点</title><link>http://news.local/gbk/1</link>"
    "<description>中国人民银行决定下调金融机构存款准备金率。</description></item>"
    "</channel></rss>"
)


def good_feed(name: str, items: int = 3) -> bytes:
    body = "".join(
        f"<item><title>{name} story {i}</title><link>http://news.local/{name}/{i}</link>"
        f"<pubDate>Mon, 0{i + 1} Jan 2024 10:00:00 GMT</pubDate>"
        f"<description>&lt;p&gt;Story {i} of {name}&lt;/p&gt;</description></item>"
        for i in range(items)
    )
    return f"<rss version='2.0'><channel><title>{name}</title>{body}</channel></rss>".encode()


class FaultServer:
    """`url(path)` for each fault; `hits[path]` counts requests."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self._hung_up: dict[str, list[int]] = {}
        self._outlasted: Counter[str] = Counter()
        self._ended = threading.Condition()
        self.stopping = threading.Event()
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = _routes(self)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.hits[path] += 1
                route = server.routes.get(path)
                if route is None and path.startswith("/good/"):
                    route = _send(good_feed(path.rsplit("/", 1)[1]))
                (route or _status(404))(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def endings(self, path: str, count: int) -> tuple[list[int], int]:
        """How `count` requests to a slow fault ended, once they all have (the
        server lets go of each within HANG_SECONDS): the body bytes sent when the
        client hung up, one per abandoned request, and how many requests the
        client was still waiting on when the server gave up."""
        with self._ended:
            self._ended.wait_for(
                lambda: len(self._hung_up.get(path, [])) + self._outlasted[path] >= count,
                timeout=count * HANG_SECONDS + 5)
            return list(self._hung_up.get(path, [])), self._outlasted[path]

    def _end(self, path: str, sent: int | None) -> None:
        """Record a slow request's end: the client hung up after `sent` bytes, or
        (None) it was still waiting when the server gave up."""
        with self._ended:
            if sent is None:
                self._outlasted[path] += 1
            else:
                self._hung_up.setdefault(path, []).append(sent)
            self._ended.notify_all()


def _send(body: bytes, status: int = 200, ctype: str = "application/rss+xml",
          headers: dict[str, str] | None = None) -> Callable[[BaseHTTPRequestHandler], None]:
    def respond(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        try:
            h.wfile.write(body)
        except OSError:  # the client stopped reading (as it should, past max_bytes)
            h.close_connection = True
    return respond


def _client_left(h: BaseHTTPRequestHandler, seconds: float) -> bool:
    """Wait up to `seconds` for the client to close the connection; True if it did."""
    readable, _, _ = select.select([h.connection], [], [], seconds)
    if not readable:
        return False
    try:
        return h.connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:  # reset by the client: gone too
        return True


def _status(code: int, headers: dict[str, str] | None = None) -> Callable:
    return _send(f"status {code}".encode(), code, "text/plain", headers)


def _routes(server: FaultServer) -> dict[str, Callable[[BaseHTTPRequestHandler], None]]:
    def wait_out(h: BaseHTTPRequestHandler, sent: int) -> bool:
        """One second of a slow fault; False once the client has hung up (recorded)."""
        if _client_left(h, 1.0):
            server._end(h.path, sent)
            return False
        return not server.stopping.is_set()

    def hang(h: BaseHTTPRequestHandler) -> None:
        for _ in range(HANG_SECONDS):
            if not wait_out(h, 0):
                return
        server._end(h.path, None)

    def trickle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        for sent in range(HANG_SECONDS):
            if not wait_out(h, sent):
                return
            try:
                h.wfile.write(b" ")
                h.wfile.flush()
            except OSError:
                server._end(h.path, sent)
                return
        server._end(h.path, None)

    def reset(h: BaseHTTPRequestHandler) -> None:
        # linger 0: closing sends RST; shutdown reaches the socket past makefile() copies
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        h.connection.shutdown(socket.SHUT_RDWR)
        h.close_connection = True

    def retry_once(h: BaseHTTPRequestHandler) -> None:
        if server.hits["/429-seconds"] == 1:
            _status(429, {"Retry-After": "1"})(h)
        else:
            _send(good_feed("after-429"))(h)

    later = formatdate(time.time() + 3600, usegmt=True)
    return {
        "/500": _status(500),
        "/404": _status(404),
        "/429-seconds": retry_once,
        "/429-date": _status(429, {"Retry-After": later}),
        "/hang": hang,
        "/trickle": trickle,
        "/reset": reset,
        "/oversized": _send(good_feed("big", 1) + b"<!--" + b"x" * 3_000_000 + b"-->"),
        "/gzip-bomb": _send(gzip.compress(b" " * 50_000_000), headers={"Content-Encoding": "gzip"}),
        "/loop-a": _status(302, {"Location": "/loop-b"}),
        "/loop-b": _status(302, {"Location": "/loop-a"}),
        "/moved": _status(301, {"Location": "/good/moved-here"}),
        "/wrong-charset": _send(CHINESE_FEED.encode("gbk"), ctype="text/xml; charset=utf-8"),
        "/html": _send(b"<!doctype html><html><head><title>Home</title></head><body>hi</body></html>",
                       ctype="text/html"),
    }
