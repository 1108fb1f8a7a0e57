"""httpcore's network layer on plain asyncio streams.

httpcore's default backend goes through anyio, which on every read and write
enters a cancel scope and looks up the current task, and for each liveness
check of a pooled connection rebuilds a dict of socket attributes (two
system calls). Without it the event loop spent 8% less CPU over a pass of
10,000 article pages (one pair of runs of bench/speed.py's full-text
workload). This backend does the same job with asyncio's own streams and
`asyncio.timeout`, and raises httpcore's exceptions, so httpx sees no
difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpcore

__all__ = ["NO_SUCH_HOST", "AsyncioBackend", "dns_failure"]

# in the error of a fetch whose host name does not exist (NXDOMAIN): it is
# not retried, and an article page that failed so is not asked again
NO_SUCH_HOST = "no such host"
# the resolver's answers for a name that does not exist (NXDOMAIN, or no address)
_NXDOMAIN = frozenset({socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)})


def dns_failure(host: str, exc: OSError) -> str:
    """A failed lookup of `host`, worded for the user: "(no such host)" when
    the name does not exist, which asking again at once won't change; "(DNS
    unreachable)" when the resolver could not answer, worth another try."""
    why = NO_SUCH_HOST if getattr(exc, "errno", None) in _NXDOMAIN else "DNS unreachable"
    return f"cannot resolve {host} ({why}): {exc}"


_READ_LIMIT = 1 << 20  # StreamReader buffer; httpcore reads 64 KB at a time


@contextlib.asynccontextmanager
async def _mapped(
    timeout: float | None, on_timeout: type[Exception], on_error: type[Exception]
) -> AsyncIterator[None]:
    """Raise httpcore's `on_timeout` past `timeout` seconds and `on_error` for
    a socket or TLS error, worded as the error itself (the fetcher reads it)."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        raise on_timeout(f"timed out after {timeout:g}s" if timeout else "timed out") from None
    except (OSError, EOFError) as exc:  # ssl.SSLError is an OSError
        raise on_error(str(exc) or type(exc).__name__) from exc


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        async with _mapped(timeout, httpcore.ReadTimeout, httpcore.ReadError):
            return await self._reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        async with _mapped(timeout, httpcore.WriteTimeout, httpcore.WriteError):
            self._writer.write(buffer)
            await self._writer.drain()

    async def aclose(self) -> None:
        # abort, not close: no goodbye is owed, and waiting for one could hang
        self._writer.transport.abort()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with _mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except BaseException:
            # asyncio leaves the plain connection open when TLS fails before
            # the handshake starts (the context refused): close it here
            self._writer.transport.abort()
            raise
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle pooled connection the server closed or wrote to
            return self._idle_connection_spoke()
        names = {"ssl_object": "ssl_object", "client_addr": "sockname",
                 "server_addr": "peername", "socket": "socket"}
        return self._writer.get_extra_info(names[info]) if info in names else None

    def _idle_connection_spoke(self) -> bool:
        # what asyncio has already read (an EOF) or what waits on the socket
        if self._reader.at_eof() or self._writer.transport.is_closing():
            return True
        sock = self._writer.get_extra_info("socket")
        return sock is None or bool(select.select([sock], [], [], 0)[0])


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend over asyncio streams (TCP, TLS)."""

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None, socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        async with _mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
            try:
                # happy eyeballs as anyio does it: a dead IPv6 route costs 0.25 s
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=local, limit=_READ_LIMIT, happy_eyeballs_delay=0.25)
            except socket.gaierror as exc:
                raise httpcore.ConnectError(dns_failure(host, exc)) from exc
        sock = writer.get_extra_info("socket")  # asyncio already set TCP_NODELAY
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(reader, writer)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        async with _mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
            reader, writer = await asyncio.open_unix_connection(path, limit=_READ_LIMIT)
        return _Stream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
