"""The fetcher against real local servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time

from fault_server import HANG_SECONDS, FaultServer
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from scraper.config import HttpSettings
from scraper.fetcher import Fetcher, FetchResult

FAST = HttpSettings(timeout=2, retries=2, max_bytes=50_000)


def fetch(url: str, settings: HttpSettings = FAST, **kw: object) -> FetchResult:
    async def go() -> FetchResult:
        async with Fetcher(settings) as fetcher:
            return await fetcher.fetch(url, **kw)  # type: ignore[arg-type]

    return asyncio.run(go())


def test_conditional_get_sends_validators(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/f", headers={"If-None-Match": '"abc"', "If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}
    ).respond_with_data("", status=304)
    result = fetch(httpserver.url_for("/f"), etag='"abc"',
                   last_modified="Mon, 01 Jan 2024 00:00:00 GMT")
    assert result.ok and result.not_modified and result.content == b""


def test_404_is_not_retried_500_is(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/404").respond_with_data("no", status=404)
    httpserver.expect_request("/500").respond_with_data("err", status=500)
    gone = fetch(httpserver.url_for("/404"))
    assert (gone.error_kind, gone.attempts) == ("404", 1)
    broken = fetch(httpserver.url_for("/500"))
    assert (broken.error_kind, broken.attempts) == ("500", 3)  # retries = 2 extra
    paths = [r.path for r, _ in httpserver.log]
    assert paths.count("/404") == 1 and paths.count("/500") == 3


def test_retry_after_seconds_is_honoured(httpserver: HTTPServer) -> None:
    calls: list[float] = []

    def handler(request: Request) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "1"})
        return Response("<rss version='2.0'><channel><title>t</title></channel></rss>")

    httpserver.expect_request("/429").respond_with_handler(handler)
    result = fetch(httpserver.url_for("/429"))
    assert result.ok and result.attempts == 2
    assert calls[1] - calls[0] >= 0.95


def test_long_retry_after_is_not_waited_for_but_recorded(httpserver: HTTPServer) -> None:
    # a pass waits out Retry-After up to 30 s; 31 s is left to the scheduler (were it
    # waited for, the retry would reach the server)
    httpserver.expect_request("/429").respond_with_data(
        "later", status=429, headers={"Retry-After": "31"})
    result = fetch(httpserver.url_for("/429"))  # retries = 2
    assert (result.error_kind, result.attempts, result.retry_after) == ("429", 1, 31)
    assert len(httpserver.log) == 1
    # an HTTP date is recorded as seconds from now
    httpserver.expect_request("/date").respond_with_data(
        "later", status=429, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    dated = fetch(httpserver.url_for("/date"), HttpSettings(retries=0))
    assert dated.error_kind == "429" and dated.retry_after and dated.retry_after > 86400


def test_max_bytes_stops_reading(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * 200_000)
    result = fetch(httpserver.url_for("/big"))
    assert result.error_kind == "too-large" and result.content == b""


def test_gzip_bomb_is_bounded_after_decompression(httpserver: HTTPServer) -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)
    assert len(bomb) < 50_000
    httpserver.expect_request("/bomb").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"}, content_type="text/xml")
    result = fetch(httpserver.url_for("/bomb"))
    assert result.error_kind == "too-large"


def test_permanent_redirect_is_reported_temporary_is_not(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": "/new"})
    httpserver.expect_request("/tmp").respond_with_data(
        "", status=302, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data("<rss/>")
    moved = fetch(httpserver.url_for("/old"))
    assert moved.ok and moved.permanent_redirect == httpserver.url_for("/new")
    assert moved.url == httpserver.url_for("/old")
    temporary = fetch(httpserver.url_for("/tmp"))
    assert temporary.ok and temporary.permanent_redirect is None


def test_redirect_loop_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/a"})
    result = fetch(httpserver.url_for("/a"))
    assert result.error_kind == "redirect" and "loop" in result.error


def test_trickling_server_cannot_hold_a_fetch_past_its_deadline() -> None:
    # a byte a second: the read timeout alone would never fire, only the 1.5 s deadline
    with FaultServer() as server:
        result = fetch(server.url("/trickle"), HttpSettings(timeout=1.5, retries=0))
        trickled, outlasted = server.endings("/trickle", 1)
    assert result.error_kind == "timeout"
    # the client hung up after a byte or two of the HANG_SECONDS the server would send
    assert outlasted == 0 and len(trickled) == 1 and trickled[0] < HANG_SECONDS // 2, trickled


def test_connection_refused_is_a_connection_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    result = fetch(f"http://127.0.0.1:{port}/", HttpSettings(timeout=2, retries=1))
    assert result.error_kind == "connection" and result.attempts == 2


def test_untrusted_links_to_private_addresses_are_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/page").respond_with_data("<html></html>")
    refused = fetch(httpserver.url_for("/page"), untrusted=True)
    assert refused.error_kind == "blocked" and "127.0.0.1" in refused.error
    assert not httpserver.log  # refused before any request was sent
    allowed = fetch(httpserver.url_for("/page"), HttpSettings(allow_private=True), untrusted=True)
    assert allowed.ok


def test_per_host_limit_is_respected() -> None:
    server = HTTPServer(threaded=True)  # serves requests in parallel: the limit is ours
    server.start()
    active, peak = 0, 0
    lock = threading.Lock()

    def slow(request: Request) -> Response:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.2)
        with lock:
            active -= 1
        return Response("ok")

    server.expect_request("/slow").respond_with_handler(slow)
    settings = HttpSettings(per_host=2, concurrency=8, retries=0)

    async def go() -> list[FetchResult]:
        async with Fetcher(settings) as fetcher:
            return await asyncio.gather(
                *[fetcher.fetch(server.url_for("/slow")) for _ in range(6)])

    try:
        results = asyncio.run(go())
    finally:
        server.stop()
    assert all(r.ok for r in results)
    assert peak == 2  # in parallel, but never more than per_host
