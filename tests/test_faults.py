"""Faults: hostile and random documents, and a process killed with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CORPUS, SEED, make_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from scraper.config import FeedConfig
from scraper.models import FetchResult
from scraper.processor import outcome_from_fetch
from scraper.store import Store

FEED = FeedConfig(url="http://127.0.0.1/feed", source="S", channel="C", full_text="never")


def _outcome(content: bytes, content_type: str = "application/xml") -> object:
    fetched = FetchResult(url=FEED.url, final_url=FEED.url, status=200, content=content,
                          headers={"content-type": content_type})
    return outcome_from_fetch(FEED, fetched)


def _seeds() -> list[bytes]:
    docs = [b"<rss version='2.0'><channel><title>t</title><item><title>x</title>"
            b"<link>http://a/1</link><description>&lt;p&gt;hi&lt;/p&gt;</description>"
            b"</item></channel></rss>"]
    if (SEED / "feed.xml").exists():
        docs.append((SEED / "feed.xml").read_bytes())
    for sub in ("feedparser/wellformed/atom10", "feedparser/encoding", "feedparser/illformed"):
        folder = CORPUS / sub
        if folder.is_dir():
            docs += [p.read_bytes() for p in sorted(folder.glob("*.xml"))[:15]]
    return docs


SEEDS = _seeds()


@st.composite
def mutated_feeds(draw: st.DrawFn) -> bytes:
    doc = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        if not doc:
            break
        at = draw(st.integers(0, len(doc) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if action == "flip":
            doc[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del doc[at : at + draw(st.integers(1, 64))]
        elif action == "insert":
            doc[at:at] = draw(st.binary(max_size=16))
        else:
            doc[at:at] = doc[at : at + draw(st.integers(1, 200))]
    return bytes(doc)


def _check(outcome: object) -> None:
    assert outcome.status in ("200", "parse")  # type: ignore[attr-defined]
    if outcome.status == "parse":  # type: ignore[attr-defined]
        assert outcome.error  # type: ignore[attr-defined]
    for record in outcome.records:  # type: ignore[attr-defined]
        assert isinstance(record.title, str) and isinstance(record.body, str)
        assert "<script" not in record.body.lower()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_feeds())
def test_mutated_feeds_never_raise_past_the_feed(doc: bytes) -> None:
    _check(_outcome(doc))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["text/xml", "text/html; charset=gbk",
                                                  "application/json", ""]))
def test_random_bytes_never_raise_past_the_feed(doc: bytes, content_type: str) -> None:
    _check(_outcome(doc, content_type))


def test_billion_laughs_does_not_expand() -> None:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10)
    ]
    doc = ("<?xml version='1.0'?><!DOCTYPE rss [" + "".join(entities) + "]>"
           "<rss version='2.0'><channel><title>&lol9;</title><item><title>&lol9;</title>"
           "<link>http://a/1</link><description>&lol9;</description></item></channel></rss>")
    outcome = _outcome(doc.encode())
    # expanded, each &lol9; is 3 GB of "lol": the parsed output must stay this small
    assert len(outcome.title) < 100 and len(outcome.records) == 1  # type: ignore[attr-defined]
    record = outcome.records[0]  # type: ignore[attr-defined]
    assert len(record.title) < 100 and len(record.body) < 100


def test_external_entities_do_not_read_local_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    doc = (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>'
           '<rss version="2.0"><channel><title>t &xxe;</title><item><title>a &xxe;</title>'
           '<link>http://a/1</link><description>&xxe;</description></item></channel></rss>')
    outcome = _outcome(doc.encode())
    text = repr(outcome)
    assert "TOP-SECRET-VALUE" not in text


# --- SIGKILL -----------------------------------------------------------------

FEEDS, ITEMS = 60, 40


def _feed_xml(n: int) -> bytes:
    items = "".join(
        f"<item><title>Feed {n} item {i}</title><link>http://news.local/{n}/{i}</link>"
        f"<guid>f{n}-i{i}</guid><pubDate>Mon, 0{1 + i % 9} Jan 2024 10:00:00 GMT</pubDate>"
        f"<description>&lt;p&gt;{'body text ' * 200} {n} {i}&lt;/p&gt;</description></item>"
        for i in range(ITEMS)
    )
    return f"<rss version='2.0'><channel><title>Feed {n}</title>{items}</channel></rss>".encode()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_at_any_moment_leaves_a_consistent_archive(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    served = [0]

    def feed(request: Request) -> Response:
        served[0] += 1
        time.sleep(0.01)  # a run takes a while, so a kill lands mid-run
        n = int(request.path.removeprefix("/f"))
        return Response(_feed_xml(n), content_type="application/rss+xml")

    for n in range(FEEDS):
        httpserver.expect_request(f"/f{n}").respond_with_handler(feed)
    config = make_config(tmp_path / "c.toml", [
        {"url": httpserver.url_for(f"/f{n}"), "source": f"S{n}", "full_text": "never"}
        for n in range(FEEDS)
    ])
    db = tmp_path / "a.db"
    args = [sys.executable, "-m", "scraper", "fetch", "--config", str(config), "--db", str(db)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPER_")}
    rng = random.Random(7)
    kills = 0
    for _ in range(6):
        # killed after a random number of feeds were served: mid-download,
        # mid-parse or mid-write, whatever the machine's speed
        kill_after, start = rng.randrange(1, FEEDS), served[0]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        while served[0] - start < kill_after and proc.poll() is None:
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert kills >= 5, "the fetch finished before the kill: nothing was tested"
    final = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert final.returncode == 0, final.stdout + final.stderr
    with Store(db) as store:
        assert store.integrity() == "ok"
        assert store.count() == FEEDS * ITEMS  # nothing lost
        distinct = store.db.execute("SELECT count(DISTINCT canonical_url) FROM articles")
        assert distinct.fetchone()[0] == FEEDS * ITEMS  # no duplicate
        assert store.count("revisions") == 0
        fts = store.db.execute("SELECT count(*) FROM articles_fts").fetchone()[0]
        assert fts == FEEDS * ITEMS
