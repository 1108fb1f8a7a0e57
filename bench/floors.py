"""The floors of bench/speed.py: what the network and the parser alone cost.

    python floors.py httpx URLS_FILE [IN_FLIGHT]    # two passes, the second conditional
    python floors.py feedparser URLS_FILE           # parse every feed from memory
    python floors.py extract URLS_FILE              # our extractor over article pages

Each prints one JSON line of timings (seconds) measured inside the process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


async def _get_all(urls: list[str], in_flight: int, etags: dict[str, str] | None = None
                   ) -> dict[str, httpx.Response]:
    limit = asyncio.Semaphore(in_flight)
    out: dict[str, httpx.Response] = {}
    async with httpx.AsyncClient(timeout=60) as client:
        async def one(url: str) -> None:
            headers = {"If-None-Match": etags[url]} if etags and url in etags else {}
            async with limit:
                out[url] = await client.get(url, headers=headers)
        await asyncio.gather(*(one(u) for u in urls))
    return out


def _httpx(urls: list[str], in_flight: int) -> dict[str, float]:
    started = time.perf_counter()
    first = asyncio.run(_get_all(urls, in_flight))
    first_s = time.perf_counter() - started
    etags = {u: r.headers["etag"] for u, r in first.items() if "etag" in r.headers}
    started = time.perf_counter()
    second = asyncio.run(_get_all(urls, in_flight, etags))
    return {"first": first_s, "second": time.perf_counter() - started,
            "not_modified": sum(r.status_code == 304 for r in second.values())}


def _feedparser(urls: list[str]) -> dict[str, float]:
    import feedparser

    docs = asyncio.run(_get_all(urls, 4))
    started = time.perf_counter()
    entries = 0
    for response in docs.values():
        parsed = feedparser.parse(
            response.content, response_headers={"content-type": response.headers["content-type"]})
        entries += len(parsed.entries)
    return {"first": time.perf_counter() - started, "entries": entries}


def _extract(urls: list[str]) -> dict[str, float]:
    from scraper.extractor import extract

    pages = asyncio.run(_get_all(urls, 4))
    started = time.perf_counter()
    for url, response in pages.items():
        extract(response.content, url, content_type=response.headers["content-type"])
    return {"first": time.perf_counter() - started, "pages": len(pages)}


def main() -> None:
    tool, urls_file = sys.argv[1], sys.argv[2]
    with open(urls_file, encoding="utf-8") as f:
        urls = f.read().split()
    if tool == "httpx":
        result = _httpx(urls, int(sys.argv[3]) if len(sys.argv) > 3 else 4)
    elif tool == "feedparser":
        result = _feedparser(urls)
    else:
        result = _extract(urls)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
