"""Worker processes for the CPU work: parsing feeds and extracting pages.

The event loop downloads; the workers parse; one writer stores. Workers are
forked from the main process before its event loop starts any thread, so
they cannot inherit a lock some other thread held at the fork, and before
the network and database layers are imported: the workers share the parsing
modules with the main process (copy-on-write) and never hold a copy of
httpx, asyncio or sqlite-utils, whose pages the main process would otherwise
dirty and duplicate as it runs.

Each worker has a socket pair of its own to the main process, which no
other process holds. A worker that dies (a crash in a C library, the OOM
killer), even halfway through writing a result, closes its end, and the main
process reads an end of file at once: the task goes to another worker, or
to a thread when none is left. (concurrent.futures' process pool shares one
result pipe among the workers, with the main process holding its write end
too: a worker killed in the middle of a result left the pool waiting for the
rest of it forever.)
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import logging
import multiprocessing
import os
import pickle
import queue
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

__all__ = ["WorkerPool", "run_cpu", "worker_processes"]

T = TypeVar("T")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
log = logging.getLogger("scraper")


@contextlib.contextmanager
def worker_processes(
    count: int | None = None, preload: str = "scraper.processor"
) -> Iterator[WorkerPool | None]:
    """`count` processes for the CPU work, None for one per core (none on a
    single core), 0 for none; yields the pool to give `run_cpu`, or None
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
    pool = WorkerPool(count)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True)


class WorkerPool(Executor):
    """Forked worker processes, each on a socket pair of its own. `submit`
    runs a call in an idle worker, from one of as many threads as there are
    workers (those threads only wait on the sockets, without the GIL)."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("fork")
        self._idle: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()
        self._alive: list[_Worker] = []
        for _ in range(count):
            ours, theirs = context.Pipe(duplex=True)
            # the child closes every end it inherits but its own: then only
            # this worker holds its socket's far end, and its death is an EOF
            inherited = [w.conn for w in self._alive] + [ours]
            process = context.Process(target=_serve, args=(theirs, inherited), daemon=True)
            process.start()
            theirs.close()
            self._alive.append(_Worker(process, ours))
            self._idle.put(self._alive[-1])
        self._threads = ThreadPoolExecutor(count, thread_name_prefix="scraper-workers")

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self._threads.submit(self._call, fn, args)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Let the calls under way finish, then close every worker's socket:
        the workers exit on the end of file (a worker still there after 5 s
        is terminated)."""
        self._threads.shutdown(wait=True, cancel_futures=cancel_futures)
        for worker in self._alive:
            worker.conn.close()
        for worker in self._alive:
            worker.process.join(5)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join()
        self._alive.clear()

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        task = pickle.dumps((fn, args), pickle.HIGHEST_PROTOCOL)
        while True:
            worker = self._idle.get()  # one is free: there are as many threads as workers
            if worker is None:  # none left: parse here, in this thread
                self._idle.put(None)
                return fn(*args)
            try:
                ok, value = worker.call(task)
            except (EOFError, OSError):
                self._bury(worker)
                continue  # the task goes to another worker
            self._idle.put(worker)
            if ok:
                return value  # type: ignore[no-any-return]
            raise value

    def _bury(self, worker: _Worker) -> None:
        worker.conn.close()
        worker.process.join(5)
        self._alive.remove(worker)
        left = len(self._alive)
        log.warning("a worker process died (exit code %s); %d left%s",
                    worker.process.exitcode, left, "" if left else ", parsing in threads")
        if not left:
            self._idle.put(None)


class _Worker:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process, self.conn = process, conn

    def call(self, task: bytes) -> tuple[bool, Any]:
        """Send a pickled call, wait for its (ok, result or exception); raises
        EOFError or OSError when the worker is gone."""
        self.conn.send_bytes(task)
        reply: tuple[bool, Any] = pickle.loads(self.conn.recv_bytes())
        return reply


def _serve(conn: Connection, inherited: list[Connection]) -> None:
    """A worker's life: calls in, results out, until the main process closes
    its end of the socket."""
    _worker_init()
    for other in inherited:
        other.close()
    while True:
        try:
            fn, args = pickle.loads(conn.recv_bytes())
        except EOFError:
            return
        try:
            reply = pickle.dumps((True, fn(*args)), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # the caller gets it raised (a poll's own error)
            try:
                reply = pickle.dumps((False, exc), pickle.HIGHEST_PROTOCOL)
            except Exception:  # an exception that does not pickle
                reply = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        conn.send_bytes(reply)


def _worker_init() -> None:
    """In each worker: die with the parent (a `kill -9` of scraper must not
    leave orphans), and leave Ctrl-C and a terminal's SIGHUP, sent to the
    whole process group, to the parent, which finishes its polls and then
    shuts the workers down. SIGTERM keeps its default (the systemd unit sends
    it to the main process only, KillMode=mixed)."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)  # this process's own libc
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


async def run_cpu(executor: Executor | None, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in the worker processes (`WorkerPool`, which moves a task
    to a thread when no worker is left), or in a thread when there are none."""
    import asyncio  # here, not at the top: the workers are forked before asyncio loads

    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
