"""A real threaded HTTP server on 127.0.0.1 that serves fixed documents.

Used by the corpus tests: each route is a path with a body, a status and
response headers. Routes with an `ETag` or `Last-Modified` header answer
`304 Not Modified` to a request whose `If-None-Match` / `If-Modified-Since`
matches, the way a well-behaved feed host does. Every request's headers are
recorded so tests can check what the client sent.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

__all__ = ["CorpusServer", "Request", "Route", "header_lines"]

_COMMENT = re.compile(rb"<!--(.*?)-->", re.S)
_HEADER_LINE = re.compile(r"^\s*Header:\s*([^:\s][^:]*):[ \t]*(.*?)\s*$", re.M)


def header_lines(data: bytes) -> list[tuple[str, str]]:
    """The `Header: Name: value` lines of a feedparser test file's leading comment."""
    match = _COMMENT.search(data)
    if not match:
        return []
    text = match.group(1).decode("latin-1")
    return [(name.strip(), value) for name, value in _HEADER_LINE.findall(text)]


@dataclass
class Route:
    body: bytes
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # names lower-cased


class CorpusServer:
    """`with CorpusServer() as srv: url = srv.add("/a.xml", body)`."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- routes ---------------------------------------------------------------
    def add(
        self, path: str, body: bytes, status: int = 200,
        headers: list[tuple[str, str]] | None = None, content_type: str = "text/xml",
    ) -> str:
        """Serve `body` at `path` (Content-type defaults to `content_type`); return its URL."""
        path = "/" + quote(path.lstrip("/"), safe="/-_.~!$&'()*+,;=:@")
        hdrs = list(headers or [])
        if not any(k.lower() == "content-type" for k, _ in hdrs):
            hdrs.insert(0, ("Content-Type", content_type))
        self.routes[path] = Route(body=body, status=status, headers=hdrs)
        return self.url(path)

    def url(self, path: str) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def requests_for(self, path_or_url: str) -> list[Request]:
        path = "/" + path_or_url.split("://", 1)[-1].split("/", 1)[-1]
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> CorpusServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on keep-alive

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.requests.append(
                        Request(self.path, {k.lower(): v for k, v in self.headers.items()})
                    )
                route = server.routes.get(path)
                if route is None:
                    self._send(404, [("Content-Type", "text/plain")], b"no such file\n")
                    return
                if route.status == 200 and _not_modified(route, self.headers):
                    keep = [(k, v) for k, v in route.headers
                            if k.lower() in ("etag", "last-modified")]
                    self._send(304, keep, None)
                    return
                self._send(route.status, route.headers, route.body)

            def _send(self, status: int, headers: list[tuple[str, str]],
                      body: bytes | None) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                if body is not None:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> CorpusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _not_modified(route: Route, request_headers: object) -> bool:
    get = request_headers.get  # type: ignore[attr-defined]
    etag, last_modified = route.header("ETag"), route.header("Last-Modified")
    if_none_match, if_modified_since = get("If-None-Match"), get("If-Modified-Since")
    if if_none_match is not None:
        if not etag:
            return False
        tags = [t.strip() for t in if_none_match.split(",")]
        return "*" in tags or etag.strip() in tags
    if if_modified_since is not None and last_modified:
        return if_modified_since.strip() == last_modified.strip()
    return False
