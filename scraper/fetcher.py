"""HTTP downloads with httpx: conditional GET, limits, retries, redirects, SSRF guard.

`Fetcher.fetch` never raises for a network or HTTP problem: it returns a
`FetchResult` whose `error_kind` is a short word (`timeout`, `connection`,
`tls`, `too-large`, `blocked`, `redirect`, or the HTTP status) and whose
`error` explains it. Bodies are streamed and cut at `max_bytes` after
decompression; every attempt has a total deadline, so a server trickling a
byte a second cannot hold a fetch past `timeout`.

Untrusted URLs (article links from feeds) pass the SSRF guard: a host that
resolves to a loopback, private, link-local or otherwise non-public address is
refused. The check runs where the connection is made (`_PublicOnlyBackend`):
each connection resolves its host once, checks every address and connects to
the checked address, so a DNS server that answers a public address to one
lookup and 127.0.0.1 to the next (DNS rebinding) gains nothing, on any
redirect hop or retry. TLS and the Host header still use the name. Through
a proxy from the environment or a caller's transport, whose network layer
resolves names on its own, the host is checked before each request instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import certifi
import httpcore
import httpx

from scraper.config import HttpSettings
from scraper.models import FetchResult, http_date
from scraper.netio import NO_SUCH_HOST, AsyncioBackend, dns_failure
from scraper.urls import host_of

__all__ = ["NO_SUCH_HOST", "FetchResult", "Fetcher"]

_RETRY_STATUSES = {408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT = {301, 308}
_MAX_REDIRECTS = 10
_MAX_RETRY_WAIT = 30.0  # longer Retry-After values are left to the scheduler
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.7, */*;q=0.5"
)


class _Failure(Exception):
    """A failed attempt: `kind` is the failure word, `retry` whether to try again."""

    def __init__(
        self, kind: str, message: str, url: str, retry: bool = False,
        status: int | None = None, retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind, self.message, self.final_url, self.retry = kind, message, url, retry
        self.status, self.retry_after = status, retry_after


class Fetcher:
    """One shared HTTP client with global and per-host concurrency limits."""

    def __init__(self, http: HttpSettings, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = http
        limits = httpx.Limits(max_connections=http.concurrency, max_keepalive_connections=32)
        # one TLS context (the CA bundle loaded once, when first needed) for both pools
        self._tls = _TrustOnFirstUse(ssl.PROTOCOL_TLS_CLIENT)
        # Untrusted URLs get their own pool, whose connections go only to
        # addresses checked at connect time. A caller's transport or a proxy
        # from the environment resolves names itself: those keep the check
        # before each request only (and httpx's own network layer).
        direct = transport is None and not _environment_proxies()
        self._checked_at_connect = direct
        if direct:
            transport = _Transport(limits, self._tls, AsyncioBackend())
        self._client = self._new_client(transport, limits)
        self._untrusted = self._client
        if direct:
            pinned = _Transport(limits, self._tls, _PublicOnlyBackend(http.allow_private))
            self._untrusted = self._new_client(pinned, limits)
        self._all = asyncio.Semaphore(http.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    def _new_client(
        self, transport: httpx.AsyncBaseTransport | None, limits: httpx.Limits
    ) -> httpx.AsyncClient:
        http = self.settings
        return httpx.AsyncClient(
            headers={"User-Agent": http.user_agent, "Accept": _ACCEPT},
            timeout=httpx.Timeout(http.timeout, connect=min(http.timeout, 10.0)),
            follow_redirects=False,
            transport=transport,
            limits=limits,
            verify=self._tls,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._untrusted is not self._client:
            await self._untrusted.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def fetch(
        self, url: str, etag: str = "", last_modified: str = "", untrusted: bool = False
    ) -> FetchResult:
        """GET `url` with conditional headers; `untrusted` URLs (article links
        from feeds) are refused when they resolve to a private address."""
        started = time.monotonic()
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        attempts = 0
        while True:
            attempts += 1
            try:
                result = await self._follow(url, headers, untrusted)
                return replace(result, attempts=attempts, elapsed=time.monotonic() - started)
            except _Failure as failure:
                wait = self._backoff(attempts, failure)
                if not failure.retry or attempts > self.settings.retries or wait is None:
                    return FetchResult(
                        url=url, final_url=failure.final_url, status=failure.status,
                        error_kind=failure.kind, error=failure.message,
                        retry_after=failure.retry_after, attempts=attempts,
                        elapsed=time.monotonic() - started,
                    )
                await asyncio.sleep(wait)

    def _backoff(self, attempts: int, failure: _Failure) -> float | None:
        """Seconds to wait before the next attempt; None: do not wait that long."""
        if failure.retry_after is not None:
            ra = failure.retry_after
            return float(ra) if ra <= _MAX_RETRY_WAIT else None
        return min(_MAX_RETRY_WAIT, 0.5 * 2 ** (attempts - 1)) * (0.5 + random.random())

    async def _follow(self, url: str, headers: dict[str, str], untrusted: bool) -> FetchResult:
        seen = [url]
        current, permanent = url, True
        for _ in range(_MAX_REDIRECTS + 1):
            if untrusted and not self.settings.allow_private and not self._checked_at_connect:
                await _refuse_private(current)  # httpx's network layer resolves on its own
            response = await self._attempt(current, headers, untrusted)
            if response.status not in _REDIRECTS:
                new_home = current if permanent and current != url else None
                return replace(response, url=url, permanent_redirect=new_home)
            target = response.headers.get("location", "").strip()
            if not target:
                raise _Failure("redirect", f"HTTP {response.status} without a Location", current)
            current = urljoin(current, target)
            permanent = permanent and response.status in _PERMANENT
            if current in seen:
                raise _Failure("redirect", f"redirect loop: {' -> '.join([*seen, current])}",
                               current)
            seen.append(current)
        raise _Failure("redirect", f"more than {_MAX_REDIRECTS} redirects from {url}", current)

    async def _attempt(self, url: str, headers: dict[str, str], untrusted: bool) -> FetchResult:
        host = host_of(url)
        per_host = self._hosts.setdefault(host, asyncio.Semaphore(self.settings.per_host))
        client = self._untrusted if untrusted else self._client
        async with self._all, per_host:
            try:
                return await asyncio.wait_for(
                    self._download(client, url, headers), timeout=self.settings.timeout
                )
            except (TimeoutError, httpx.TimeoutException):
                raise _Failure("timeout", f"no complete answer within "
                               f"{self.settings.timeout:g}s", url, retry=True) from None
            except httpx.HTTPError as exc:
                raise _network_failure(exc, url) from None
            except _Blocked as exc:
                raise _Failure("blocked", str(exc), url) from None

    async def _download(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str]
    ) -> FetchResult:
        limit = self.settings.max_bytes
        async with client.stream("GET", url, headers=headers) as response:
            got = {k.lower(): v for k, v in response.headers.items()}
            status = response.status_code
            if status in _REDIRECTS or status == 304:
                return FetchResult(url=url, final_url=url, status=status, headers=got)
            if status >= 400:
                raise _http_failure(status, response.reason_phrase, got, url)
            declared = got.get("content-length", "")
            if declared.isdigit() and int(declared) > limit and "content-encoding" not in got:
                raise _Failure("too-large", f"body of {int(declared):,} bytes is over the "
                               f"{limit:,}-byte limit", url)
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise _Failure("too-large", f"body over the {limit:,}-byte limit "
                                   "(stopped reading)", url)
                chunks.append(chunk)
            return FetchResult(url=url, final_url=url, status=status,
                               content=b"".join(chunks), headers=got)


def _http_failure(status: int, reason: str, headers: dict[str, str], url: str) -> _Failure:
    retry_after = _retry_after(headers.get("retry-after", ""))
    return _Failure(
        str(status), f"HTTP {status} {reason}".strip(), url,
        retry=status in _RETRY_STATUSES, status=status, retry_after=retry_after,
    )


def _network_failure(exc: httpx.HTTPError, url: str) -> _Failure:
    text = str(exc) or exc.__class__.__name__
    if "SSL" in text or "certificate" in text.lower():
        return _Failure("tls", f"TLS error: {text}", url)
    if isinstance(exc, httpx.DecodingError):
        return _Failure("connection", f"bad compressed body: {text}", url)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return _Failure("connection", f"cannot fetch this URL: {text}", url)
    if text.startswith("cannot resolve "):  # worded by our network layer (`dns_failure`)
        return _unresolved(text, url)
    if "Name or service not known" in text or "No address associated" in text:
        # httpx's own network layer (a caller's transport): only its text tells
        return _Failure("connection", f"cannot resolve {host_of(url)} ({NO_SUCH_HOST}): {text}",
                        url)
    if "Temporary failure in name resolution" in text:
        return _Failure("connection", f"cannot resolve {host_of(url)} (DNS unreachable): {text}",
                        url, retry=True)
    return _Failure("connection", f"connection failed: {text}", url, retry=True)


def _unresolved(message: str, url: str) -> _Failure:
    """A failed lookup worded by `dns_failure`: retried unless the name does not exist."""
    return _Failure("connection", message, url, retry=NO_SUCH_HOST not in message)


def _retry_after(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return int(value)
    when = http_date(value)
    if when is None:
        return None
    return max(0, int((when - datetime.now(UTC)).total_seconds()))


async def _refuse_private(url: str) -> None:
    """Raise `blocked` when `url`'s host is or resolves to a non-public address."""
    host = host_of(url)
    if not host:
        raise _Failure("blocked", f"no host in {url!r}", url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise _unresolved(dns_failure(host, exc), url) from None
    try:
        _public_only(host, infos)
    except _Blocked as exc:
        raise _Failure("blocked", str(exc), url) from None


class _Blocked(Exception):
    """A host resolved to a non-public address; the message says which."""


def _public_only(host: str, infos: Iterable[tuple[Any, ...]]) -> list[str]:
    """The distinct addresses of getaddrinfo's answer, in its order; raise
    `_Blocked` when any is not public (one bad answer refuses the host)."""
    addresses: list[str] = []
    for info in infos:
        text = info[4][0].split("%")[0]
        address = ipaddress.ip_address(text)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if not address.is_global or address.is_multicast:
            raise _Blocked(f"{host} resolves to {text}, a non-public address "
                           "(set http.allow_private = true to allow)")
        if text not in addresses:
            addresses.append(text)
    return addresses


class _PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, except that each connection resolves its
    host once, refuses non-public addresses (unless `allow_private`) and
    connects to the very addresses it checked. httpcore then starts TLS with
    the host name (SNI, certificate check), and httpx sends it as Host."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = AsyncioBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None, socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self._resolve(host, port, timeout):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options)
            except httpcore.ConnectError as exc:  # try the next address
                failure = exc
        raise failure or httpcore.ConnectError(f"no address for {host}")

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        lookup = asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        try:
            infos = await asyncio.wait_for(lookup, timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took over {timeout:g}s") from None
        except OSError as exc:
            raise httpcore.ConnectError(dns_failure(host, exc)) from exc
        if self._allow_private:
            return list(dict.fromkeys(info[4][0] for info in infos))
        return _public_only(host, infos)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Transport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request mapping, errors, TLS settings) over a
    connection pool with our network backend: `AsyncioBackend`, or
    `_PublicOnlyBackend` for untrusted links. httpx 0.28 takes no backend
    argument, hence the pool is rebuilt here with the settings httpx would
    have given it."""

    def __init__(
        self, limits: httpx.Limits, tls: ssl.SSLContext, backend: httpcore.AsyncNetworkBackend
    ) -> None:
        super().__init__(limits=limits, verify=tls)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class _TrustOnFirstUse(ssl.SSLContext):
    """httpx's default TLS context (verified, trusting the bundle named by
    SSL_CERT_FILE or SSL_CERT_DIR, else certifi's), whose CA bundle is read
    at the first TLS connection rather than at start: parsed, it takes
    1.7 MB, which a pass over plain-http feeds never needs. Every TLS
    connection, whichever network layer makes it, goes through `wrap_bio`
    or `wrap_socket`."""

    _trusted = False

    def _trust(self) -> None:
        if self._trusted:
            return
        cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
        source = "SSL_CERT_FILE" if cafile else "SSL_CERT_DIR" if capath else "certifi"
        where = cafile or capath or certifi.where()
        try:
            if capath and not cafile:
                self.load_verify_locations(capath=capath)
            else:
                self.load_verify_locations(cafile=where)
        except OSError as exc:  # no such file, or no certificate in it (ssl.SSLError)
            raise OSError(
                f"cannot load the trusted CA certificates from {where} ({source}): {exc}"
            ) from exc
        self._trusted = True

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._trust()
        return super().wrap_bio(*args, **kwargs)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._trust()
        return super().wrap_socket(*args, **kwargs)


def _environment_proxies() -> bool:
    """Whether httpx would send requests through a proxy from the environment."""
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))
