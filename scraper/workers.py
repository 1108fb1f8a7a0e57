"""Worker processes for the CPU work: parsing feeds and extracting pages.

The event loop downloads; the workers parse; one writer stores. Workers are
forked from the main process before its event loop starts any thread, so
they cannot inherit a lock some other thread held at the fork, and before
the network and database layers are imported: the workers share the parsing
modules with the main process (copy-on-write) and never hold a copy of
httpx, asyncio or sqlite-utils, whose pages the main process would otherwise
dirty and duplicate as it runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import importlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

__all__ = ["run_cpu", "worker_processes"]

T = TypeVar("T")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@contextlib.contextmanager
def worker_processes(
    count: int | None = None, preload: str = "scraper.processor"
) -> Iterator[Executor | None]:
    """`count` processes for the CPU work, None for one per core (none on a
    single core), 0 for none; yields the executor to give `run_cpu`, or None
    (work stays in threads) when there are no workers or no fork.

    Call it before the event loop starts: the workers are forked at once,
    while this process has a single thread (forking later, beside the
    resolver's threads, could deadlock a child). `preload` names the module
    of the work they run, imported first so that they share it."""
    importlib.import_module(preload)
    if count is None:
        count = os.cpu_count() or 1
        count = count if count > 1 else 0
    if count < 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield None
        return
    gc.freeze()  # the workers' copies of the parent's objects stay shared pages
    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork"),
                               initializer=_worker_init)
    pool.submit(int).result()  # a fork pool starts every worker on its first task
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_init() -> None:
    """In each worker: die with the parent (a `kill -9` of scraper must not
    leave orphans holding the pool's pipes open), and leave Ctrl-C and a
    terminal's SIGHUP, sent to the whole process group, to the parent, which
    finishes its polls and then shuts the workers down. SIGTERM keeps its
    default: the pool itself terminates workers with it (the systemd unit
    sends it to the main process only, KillMode=mixed)."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


async def run_cpu(executor: Executor | None, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in the worker processes; if they died (a crash in a C
    library, the OOM killer), in a thread instead, so the pass goes on."""
    import asyncio  # here, not at the top: the workers are forked before asyncio loads

    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(executor, fn, *args)
    except BrokenProcessPool:
        logging.getLogger("scraper").warning("worker processes died; parsing in threads")
        return await loop.run_in_executor(None, fn, *args)
