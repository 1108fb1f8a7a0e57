"""The parse worker processes: a pass survives losing one, and killing
scraper leaves none behind. Real processes, a real server, real signals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from scraper.workers import WorkerDied, WorkerPool, run_cpu

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from workload import Workload, serve

FEEDS, ITEMS = 40, 10
T = TypeVar("T")


def _children(pid: int) -> list[int]:
    """The worker processes of `pid`, not the store's schema helper (a fresh
    interpreter running `scraper.schema`, which looks like a worker for the
    moment between its fork and its exec: a child must be seen twice)."""
    first = _child_pids(pid)
    time.sleep(0.01)
    return [k for k in _child_pids(pid) if k in first and not _is_schema_helper(k)]


def _child_pids(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except FileNotFoundError:  # it exited meanwhile
        pass
    return kids


def _is_schema_helper(pid: int) -> bool:
    cmdline = _cmdline(pid)
    return not cmdline or b"scraper.schema" in cmdline  # gone: a worker would still be there


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _start(tmp_path: Path, base: str, w: Workload, extra: str = "") -> subprocess.Popen[bytes]:
    full_text = "never" if w.mode == "content" else "auto"
    feeds = "".join(
        f'[[feeds]]\nurl = "{w.feed_url(base, i)}"\ncategory = "c"\nsource = "s"\n'
        f'channel = "ch{i}"\nfull_text = "{full_text}"\n\n' for i in range(w.feeds))
    config = tmp_path / "c.toml"
    config.write_text(f'[archive]\ndatabase = "{tmp_path / "a.db"}"\n[http]\nper_host = 1\n'
                      f"retries = 0\nallow_private = true\n{extra}\n" + feeds)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPER_")}
    return subprocess.Popen([sys.executable, "-m", "scraper", "fetch", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _workers_of(proc: subprocess.Popen[bytes], want: int) -> list[int]:
    for _ in range(200):  # the pool forks before the first request; a hang guard only
        kids = _children(proc.pid)
        if len(kids) >= want or proc.poll() is not None:
            return kids
        time.sleep(0.05)
    return _children(proc.pid)


@contextlib.contextmanager
def _slow(w: Workload):  # one request at a time, each a little late: the pass takes a while
    server = serve(w)
    server.delay = 0.05
    try:
        yield server, w
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def slow_server():
    with _slow(Workload(feeds=FEEDS, items=ITEMS)) as served:
        yield served


def _workers_during(proc: subprocess.Popen[bytes]) -> set[int]:
    """Every worker `proc` had while it ran: children seen running, never
    seen running `scraper.schema` (the store's helper, which may also be
    seen between its fork and its exec, and as a zombie, cmdline empty)."""
    seen: set[int] = set()
    helpers: set[int] = set()
    while proc.poll() is None:
        for kid in _children(proc.pid):
            cmdline = _cmdline(kid)
            if b"scraper.schema" in cmdline:
                helpers.add(kid)
            elif cmdline:
                seen.add(kid)
    return seen - helpers


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: no worker processes")
def test_only_a_pass_with_pages_to_extract_starts_the_last_worker(tmp_path: Path) -> None:
    """With two processes, feeds are parsed by the forked one; the second,
    a fresh interpreter, starts with the first article page to extract."""
    for mode, want in (("content", 1), ("summary", 2)):
        with _slow(Workload(feeds=6, items=5, mode=mode)) as (server, w):
            run = tmp_path / mode
            run.mkdir()
            proc = _start(run, server.base, w, extra="[workers]\nprocesses = 2\n")
            workers = _workers_during(proc)
            _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert len(workers) == want, (mode, workers)
        with sqlite3.connect(run / "a.db") as db:
            assert db.execute("SELECT count(*) FROM articles").fetchone()[0] == 30
            extracted = db.execute("SELECT count(*) FROM articles WHERE summary_only = 0 "
                                   "AND fulltext_error = ''").fetchone()[0]
        assert extracted == 30, mode  # content in the feed, or from the page


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: parsing stays in threads")
def test_a_pass_survives_a_killed_worker(tmp_path: Path, slow_server) -> None:
    server, w = slow_server
    # three processes: two forked parse feeds, the third would extract pages
    proc = _start(tmp_path, server.base, w, extra="[workers]\nprocesses = 3\n")
    workers = _workers_of(proc, 2)
    assert len(workers) == 2, "processes = 3 forks two workers to parse feeds"
    while server.requests < FEEDS // 4 and proc.poll() is None:
        time.sleep(0.02)
    os.kill(workers[0], signal.SIGKILL)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert b"a worker process died (exit code -9); 1 left" in err
    with sqlite3.connect(tmp_path / "a.db") as db:
        assert db.execute("SELECT count(*) FROM articles").fetchone()[0] == FEEDS * ITEMS
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: no worker processes")
@pytest.mark.parametrize("mode", ["content", "summary"])
def test_kill_9_leaves_no_orphan_workers(tmp_path: Path, mode: str) -> None:
    # content: two forked workers (of three); summary: one forked, one spawned
    with _slow(Workload(feeds=FEEDS, items=ITEMS, mode=mode)) as (server, w):
        processes = 3 if mode == "content" else 2
        proc = _start(tmp_path, server.base, w, extra=f"[workers]\nprocesses = {processes}\n")
        try:
            workers = _workers_of(proc, 2)
        finally:
            proc.kill()
            proc.wait()
    assert len(workers) == 2
    for _ in range(100):  # the kernel delivers PDEATHSIG at once; a hang guard only
        if not any(_alive(p) for p in workers):
            break
        time.sleep(0.05)
    orphans = [p for p in workers if _alive(p)]
    for pid in orphans:  # never leave them running, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not orphans, f"worker processes outlived a killed scraper: {orphans}"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: no worker processes")
def test_ctrl_c_stops_the_service_and_its_workers_in_order(tmp_path: Path,
                                                           slow_server) -> None:
    # Ctrl-C reaches every process of the group: the workers leave it to the
    # main process, which finishes its polls and then shuts them down
    server, w = slow_server
    feeds = "".join(
        f'[[feeds]]\nurl = "{w.feed_url(server.base, i)}"\ncategory = "c"\nsource = "s"\n'
        f'channel = "ch{i}"\nfull_text = "never"\n\n' for i in range(w.feeds))
    config = tmp_path / "c.toml"
    config.write_text(f'[archive]\ndatabase = "{tmp_path / "a.db"}"\n[http]\nper_host = 1\n'
                      "[schedule]\ninterval = \"2s\"\njitter = \"0s\"\n\n" + feeds)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPER_")}
    proc = subprocess.Popen([sys.executable, "-m", "scraper", "run", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    try:
        workers = _workers_of(proc, 1)
        while server.requests < FEEDS // 4 and proc.poll() is None:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"worker process died" not in err  # no worker took the Ctrl-C
    assert not [p for p in workers if _alive(p)]
    with sqlite3.connect(tmp_path / "a.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_processes_0_parses_in_the_main_process(tmp_path: Path, slow_server) -> None:
    server, w = slow_server
    proc = _start(tmp_path, server.base, w, extra="[workers]\nprocesses = 0\n")
    children: set[int] = set()
    while proc.poll() is None:
        children.update(_children(proc.pid))
        time.sleep(0.02)
    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert not children  # no worker was forked
    with sqlite3.connect(tmp_path / "a.db") as db:
        assert db.execute("SELECT count(*) FROM articles").fetchone()[0] == FEEDS * ITEMS


def _die_halfway() -> None:
    """In a worker: write the first KB of a result announced as 1 MB on the
    worker's socket (its only one), then die as the OOM killer kills."""
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                os.write(int(fd), struct.pack("!i", 1 << 20) + b"x" * 1024)
    os.kill(os.getpid(), signal.SIGKILL)


def _dies_once(marker: str) -> int:
    if not os.path.exists(marker):
        Path(marker).touch()
        _die_halfway()
    return os.getpid()


def _dies_in_any_worker(main_pid: int) -> int:
    if os.getpid() != main_pid:
        _die_halfway()
    return os.getpid()


def _through(entry: str, pool: WorkerPool, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` through the pool's Executor API, or through `run_cpu` in an
    event loop, the way a pass calls it."""
    if entry == "submit":
        return pool.submit(fn, *args).result(timeout=30)
    return asyncio.run(asyncio.wait_for(run_cpu(pool, fn, *args), 30))


ENTRIES = pytest.mark.parametrize("entry", ["submit", "run_cpu"])


@ENTRIES
def test_a_worker_killed_halfway_through_a_result_costs_only_itself(
    tmp_path: Path, entry: str
) -> None:
    # concurrent.futures' pool waited forever for the rest of such a result
    pool = WorkerPool(2)
    try:
        done_by = _through(entry, pool, _dies_once, str(tmp_path / "died"))
        assert done_by != os.getpid()  # the other worker took the task over
        assert _through(entry, pool, os.getpid) == done_by  # and goes on
    finally:
        pool.shutdown()


@ENTRIES
def test_a_call_that_kills_every_worker_it_meets_fails_alone(
    caplog: pytest.LogCaptureFixture, entry: str
) -> None:
    """A document that crashes the parser costs two workers at most, never
    the main process; the pool starts new workers and goes on."""
    pool = WorkerPool(2)
    try:
        with pytest.raises(WorkerDied, match="two worker processes died on this call"):
            _through(entry, pool, _dies_in_any_worker, os.getpid())
        done_by = _through(entry, pool, os.getpid)
        assert done_by != os.getpid()  # a new worker, not the main process
        assert _through(entry, pool, int, "ff", 16) == 255
    finally:
        pool.shutdown()
    assert caplog.text.count("another starts with the next call") == 2


@ENTRIES
def test_workers_that_keep_dying_are_not_replaced_and_the_work_moves_to_threads(
    caplog: pytest.LogCaptureFixture, entry: str
) -> None:
    pool = WorkerPool(1)  # one replacement a minute
    try:
        with pytest.raises(WorkerDied, match="no other was left to try it"):
            _through(entry, pool, _dies_in_any_worker, os.getpid())
        with pytest.raises(WorkerDied, match="no other was left to try it"):
            _through(entry, pool, _dies_in_any_worker, os.getpid())  # its replacement
        assert _through(entry, pool, os.getpid) == os.getpid()
        with pytest.raises(ValueError, match="invalid literal"):
            _through(entry, pool, int, "x")
    finally:
        pool.shutdown()
    assert "another starts with the next call" in caplog.text
    assert "too many died within a minute: not replaced, parsing in threads" in caplog.text


def test_an_error_in_a_worker_reaches_the_caller_as_itself() -> None:
    pool = WorkerPool(1)
    try:
        with pytest.raises(ValueError, match="invalid literal"):
            pool.submit(int, "x").result(timeout=30)
        assert pool.submit(int, "ff", base=16).result(timeout=30) == 255  # still there
    finally:
        pool.shutdown()


@ENTRIES
def test_a_call_that_cannot_be_sent_fails_alone(entry: str) -> None:
    """An argument that does not pickle is the caller's error; the worker it
    was meant for stays free for the next calls."""
    pool = WorkerPool(1)
    try:
        for _ in range(3):  # a worker lost at each failure would hang the third
            with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
                _through(entry, pool, len, lambda: None)
        assert _through(entry, pool, os.getpid) != os.getpid()
    finally:
        pool.shutdown()


def _pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_light_calls_leave_the_last_worker_asleep_and_heavy_ones_use_it() -> None:
    """Parsing feeds (light) never wakes the last worker, which then never
    copies the main process's pages; extracting pages (heavy) spreads over
    every worker, without waiting behind light calls; when the first worker
    dies, light calls go to the one left."""
    pool = WorkerPool(2)

    async def pids(light: bool) -> set[int]:
        calls = (run_cpu(pool, _pid_after, 0.05, light=light) for _ in range(8))
        return set(await asyncio.gather(*calls))

    async def heavy_behind_light() -> list[str]:
        finished: list[str] = []

        async def call(name: str, seconds: float, light: bool) -> None:
            await run_cpu(pool, _pid_after, seconds, light=light)
            finished.append(name)

        await asyncio.gather(*(call(f"light{i}", 0.3, True) for i in range(4)),
                             call("heavy", 0, False))
        return finished

    async def light_beside_heavy() -> set[int]:
        busy = asyncio.ensure_future(run_cpu(pool, _pid_after, 0.3))  # takes the first worker
        await asyncio.sleep(0.1)
        light = await pids(True)  # waits for it rather than wake the last
        return light | {await busy}

    try:
        light, heavy = asyncio.run(pids(True)), asyncio.run(pids(False))
        assert len(light) == 1 and len(heavy) == 2 and light < heavy
        assert asyncio.run(light_beside_heavy()) == light
        assert asyncio.run(heavy_behind_light())[0] == "heavy"
        first = light.pop()
        os.kill(first, signal.SIGKILL)
        assert asyncio.run(pids(True)) == heavy - {first}
    finally:
        pool.shutdown()
