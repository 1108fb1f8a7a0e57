"""The fetcher against real local servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
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


class HostileDNS(asyncio.SelectorEventLoop):
    """An event loop whose resolver plays a rebinding DNS server for
    `rebind.test`: each lookup gets the next of `answers` (the last repeats).
    Other names resolve as usual. httpx, anyio and the fetcher all resolve
    through the running loop, so this is every lookup they make."""

    def __init__(self, answers: list[str]) -> None:
        super().__init__()
        self.answers, self.lookups = answers, 0

    async def getaddrinfo(  # type: ignore[override]
        self, host: bytes | str | None, port: bytes | str | int | None, *,
        family: int = 0, type: int = 0, proto: int = 0, flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else host
        if name != "rebind.test":
            return await super().getaddrinfo(
                host, port, family=family, type=type, proto=proto, flags=flags)
        answer = self.answers[min(self.lookups, len(self.answers) - 1)]
        self.lookups += 1
        port = int(port or 0)
        if ":" in answer:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (answer, port, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]


def fetch_on(loop: asyncio.AbstractEventLoop, url: str, settings: HttpSettings,
             untrusted: bool = True) -> FetchResult:
    async def go() -> FetchResult:
        async with Fetcher(settings) as fetcher:
            return await fetcher.fetch(url, untrusted=untrusted)

    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        return runner.run(go())


@pytest.mark.parametrize("private", ["127.0.0.1", "::ffff:127.0.0.1", "0.0.0.0"])
def test_dns_rebinding_cannot_reach_a_private_address(private: str) -> None:
    # the connection's own lookup is the one checked, and the only one made:
    # no earlier lookup could pass a check that the connection then skips
    server = HTTPServer(host="127.0.0.1")
    server.expect_request("/admin").respond_with_data("secret")
    server.start()
    loop = HostileDNS([private])
    try:
        result = fetch_on(loop, f"http://rebind.test:{server.port}/admin", FAST)
    finally:
        server.stop()
    assert result.error_kind == "blocked", result
    assert result.error == (f"rebind.test resolves to {private}, a non-public address "
                            "(set http.allow_private = true to allow)")
    assert not server.log  # nothing reached the private address
    assert result.attempts == 1 and loop.lookups == 1  # a refusal is final


def test_a_callers_transport_gets_the_private_address_check_before_each_request(
    httpserver: HTTPServer,
) -> None:
    # httpx's own network layer resolves names itself: the fetcher checks first
    httpserver.expect_request("/admin").respond_with_data("secret")

    async def go() -> FetchResult:
        async with Fetcher(FAST, transport=httpx.AsyncHTTPTransport()) as fetcher:
            return await fetcher.fetch(httpserver.url_for("/admin"), untrusted=True)

    result = asyncio.run(go())
    assert result.error_kind == "blocked" and "127.0.0.1" in result.error, result
    assert not httpserver.log


def _certificates(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for `name`, made by openssl."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make a test certificate")
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, csr = folder / "cert.pem", folder / "cert.key", folder / "cert.csr"
    extensions = folder / "ext.cnf"
    extensions.write_text(f"subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for command in (
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=scraper test CA"],
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={name}"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", extensions],
    ):
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
    return ca, cert, key


def test_pinned_connection_keeps_the_name_for_tls_and_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # connected to the address resolved once, but TLS (SNI, certificate check)
    # and the Host header use the name, as for any other connection
    ca, cert, key = _certificates(tmp_path, "rebind.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment]
    server = HTTPServer(host="127.0.0.1", ssl_context=context)
    server.expect_request("/page").respond_with_data("<html>ok</html>")
    server.start()
    loop = HostileDNS(["127.0.0.1", "10.255.255.1"])  # a second lookup would hang
    try:
        result = fetch_on(loop, f"https://rebind.test:{server.port}/page",
                          HttpSettings(timeout=5, retries=0, allow_private=True))
    finally:
        server.stop()
    assert result.ok and result.content == b"<html>ok</html>", result
    assert names == ["rebind.test"] and loop.lookups == 1
    assert [r.host for r, _ in server.log] == [f"rebind.test:{server.port}"]


class FailingDNS(asyncio.SelectorEventLoop):
    """An event loop whose resolver fails every lookup of `gone.test` with
    `errno` and counts the lookups."""

    def __init__(self, errno: int) -> None:
        super().__init__()
        self.errno, self.lookups = errno, 0

    async def getaddrinfo(  # type: ignore[override]
        self, host: bytes | str | None, port: bytes | str | int | None, **kw: Any,
    ) -> list[tuple[Any, ...]]:
        self.lookups += 1
        raise socket.gaierror(self.errno, "resolver says no")


@pytest.mark.parametrize("untrusted", [True, False], ids=["article link", "feed"])
@pytest.mark.parametrize(("errno", "attempts", "why"), [
    (socket.EAI_NONAME, 1, "no such host"),  # the name does not exist: asking again won't help
    (socket.EAI_AGAIN, 3, "DNS unreachable"),  # the resolver is unreachable for now: retried
])
def test_a_name_that_does_not_exist_is_not_retried(errno: int, attempts: int, why: str,
                                                   untrusted: bool) -> None:
    loop = FailingDNS(errno)
    result = fetch_on(loop, "http://gone.test/a.html", FAST, untrusted)  # retries=2
    assert (result.error_kind, result.attempts, loop.lookups) == ("connection", attempts, attempts)
    assert result.error == f"cannot resolve gone.test ({why}): [Errno {errno}] resolver says no"


def test_a_kept_alive_connection_the_server_closed_is_not_reused() -> None:
    """The server answers as HTTP/1.1 (keep-alive) and then closes the socket:
    the next fetch must open a new connection, not fail on the dead one
    (retries = 0, so a failed first try would show)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    accepted: list[int] = []

    def serve() -> None:
        for n in range(2):
            conn, _ = listener.accept()
            accepted.append(n)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            time.sleep(0.2)
            conn.close()  # no Connection: close header, just gone

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    async def go() -> list[FetchResult]:
        async with Fetcher(HttpSettings(timeout=2, retries=0)) as fetcher:
            first = await fetcher.fetch(f"http://127.0.0.1:{port}/a")
            await asyncio.sleep(0.5)  # the server has hung up by now
            return [first, await fetcher.fetch(f"http://127.0.0.1:{port}/b")]

    try:
        results = asyncio.run(go())
    finally:
        listener.close()
    assert [(r.status, r.content, r.error) for r in results] == [(200, b"ok", ""), (200, b"ok", "")]
    assert accepted == [0, 1]


def test_the_fetcher_does_not_load_httpx_command_line_client() -> None:
    """httpx imports its CLI (click, pygments) whenever click is installed, as
    it is beside sqlite-utils; the fetcher's process does without it."""
    code = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('click'), 'click is not installed: nothing to test'\n"
        "import scraper.fetcher, httpx\n"
        "print('click' in sys.modules, 'httpx._main' in sys.modules and sys.modules['httpx._main'],"
        " callable(httpx.main))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "None", "True"]


@pytest.fixture
def tls_server(tmp_path: Path) -> Any:
    """An HTTPS server on 127.0.0.1 for `localhost`, with a certificate of a
    CA of our own (yielded with the server)."""
    ca, cert, key = _certificates(tmp_path, "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", ssl_context=context)
    server.expect_request("/feed").respond_with_data("<rss/>")
    server.start()
    yield server, ca
    server.stop()


def test_https_is_verified_against_the_trusted_ca_bundle(
    tls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca = tls_server
    url = f"https://localhost:{server.port}/feed"
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # certifi's bundle: not our CA
    refused = fetch(url)
    assert refused.error_kind == "tls" and "CERTIFICATE_VERIFY_FAILED" in refused.error
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    assert fetch(url).content == b"<rss/>"


def test_a_missing_ca_bundle_fails_https_by_name_and_leaves_http_alone(
    tls_server: Any, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the bundle is read at the first TLS connection, not at start: plain
    # http never needs it, and https says which file it could not read
    server, ca = tls_server
    httpserver.expect_request("/plain").respond_with_data("<rss/>")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.parent / "missing.pem"))
    assert fetch(httpserver.url_for("/plain")).content == b"<rss/>"
    failed = fetch(f"https://localhost:{server.port}/feed")
    assert failed.error_kind == "tls" and failed.attempts == 1
    assert "missing.pem (SSL_CERT_FILE)" in failed.error and "No such file" in failed.error
    # the refused connection was closed, not left open on the server
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    assert fetch(f"https://localhost:{server.port}/feed").content == b"<rss/>"
