"""Worker processes for the CPU work: parsing feeds and extracting pages.

The event loop downloads; the workers parse; one writer stores. Workers are
forked from the main process before its event loop starts any thread, so
they cannot inherit a lock some other thread held at the fork, and before
the network and database layers are imported: the workers share the parsing
modules with the main process (copy-on-write) and never hold a copy of
httpx, asyncio or sqlite-utils, whose pages the main process would otherwise
dirty and duplicate as it runs.

The last worker (with two or more) is not forked: it is started as a fresh
interpreter at the first heavy call (an article page to extract), since by
then the main process has threads. A pass that only parses feeds never
starts it; see `WorkerPool`.

Each worker has a socket pair of its own to the main process, which no
other process holds. A worker that dies (a crash in a C library, the OOM
killer), even halfway through writing a result, closes its end, and the main
process reads an end of file at once: the task goes to another worker
once, and a new worker is started in its place (see `WorkerPool`).
(concurrent.futures' process pool shares one result pipe among the workers,
with the main process holding its write end too: a worker killed in the
middle of a result left the pool waiting for the rest of it forever.)
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
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from scraper import child_env

__all__ = ["WorkerDied", "WorkerPool", "run_cpu", "worker_processes"]

T = TypeVar("T")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_M_ARENA_MAX = -8  # glibc malloc.h
log = logging.getLogger("scraper")


@contextlib.contextmanager
def worker_processes(
    count: int | None = None, preload: str = "scraper.processor"
) -> Iterator[WorkerPool | None]:
    """`count` processes for the CPU work, None for one per core (none on a
    single core), 0 for none; yields the pool to give `run_cpu`, or None
    (work stays in threads) when there are no workers or no fork.

    Call it before the event loop starts: the workers (all but the last,
    see `WorkerPool`) are forked at once, while this process has a single
    thread (forking later, beside the resolver's threads, could deadlock a
    child). `preload` names the module of the work they run, imported first
    so that they share it."""
    importlib.import_module(preload)
    _one_malloc_arena()
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


def _one_malloc_arena() -> None:
    """Have every thread of this process allocate from glibc's main arena.
    Python's threads allocate while holding the GIL, so one arena costs no
    contention, while each thread that moves a worker's tasks and results
    (buffers of up to a few MB, short-lived) otherwise kept an arena of its
    own: 8 MB more at the peak of a full-text pass. Call it before any
    thread starts."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1)


class WorkerDied(RuntimeError):
    """The worker process running a call died under it, and the call is not
    tried again: it has already cost two workers (a document that crashes
    the parser must not take every worker, then the main process, with it),
    or no other worker is left to try it."""


class WorkerPool(Executor):
    """Worker processes, each on a socket pair of its own: all but the last
    forked at once, the last started as a fresh interpreter at the first
    heavy call. A call runs in an idle worker, sent from a thread of the
    pool's (those threads only wait on the sockets, without the GIL).

    A worker that dies is replaced, as a fresh interpreter, at the next
    call, unless more workers than the pool holds died in the last minute;
    the call it was running goes to another worker once (see `WorkerDied`).

    Light calls (`run(..., light=True)`: parsing a feed) go to every worker
    but the last (the forked ones, and what replaces them); heavy calls
    (extracting article pages) to any worker, and the first one starts the
    last worker. Per feed, the main process's own work (the download, the
    write) costs about what its parsing costs, so on two cores one worker
    keeps up with it; extraction is heavier and needs every core. A pass
    with no page to extract never starts the last worker: 5 MB less than a
    worker forked and left idle, which keeps the original of every page the
    others copy."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("fork")
        self._alive: list[_Worker] = []  # in the order they were started
        self._idle: list[_Worker] = []
        self._changed = threading.Condition()  # a worker became idle, or died
        self._count = count
        self._spare = count > 1  # the last worker, started at the first heavy call
        self._lost: list[bool] = []  # workers to replace at the next call: takes light calls?
        self._deaths: list[float] = []  # when workers died, for the last minute
        for _ in range(max(1, count - 1)):
            ours, theirs = context.Pipe(duplex=True)
            # the child closes every end it inherits but its own: then only
            # this worker holds its socket's far end, and its death is an EOF
            inherited = [w.conn for w in self._alive] + [ours]
            process = context.Process(target=_serve, args=(theirs, inherited, os.getpid()),
                                      daemon=True)
            process.start()
            theirs.close()
            self._alive.append(_Worker(process, ours, light=True))
        self._idle = list(self._alive)
        # as many threads as workers may take each kind of call: a light call
        # waiting for its workers never holds a thread a heavy one could use
        self._threads = ThreadPoolExecutor(count, thread_name_prefix="scraper-workers")
        self._light_threads = ThreadPoolExecutor(
            max(1, count - 1), thread_name_prefix="scraper-workers-light")

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """The Executor API: `fn(*args, **kwargs)` in a worker, a heavy call
        (in the calling pool thread when no worker is left)."""
        self._start_workers(heavy=True)
        return self._threads.submit(self._call, fn, args, kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, light: bool = False) -> T:
        """`fn(*args)` in a worker (one of all but the last when `light`),
        awaited; in a thread when no worker is left. The pool's threads move
        bytes; the result is unpickled here, in the event loop's thread,
        where it is used."""
        import asyncio  # here, not at the top: the workers are forked before asyncio loads

        loop = asyncio.get_running_loop()
        self._start_workers(heavy=not light)
        threads = self._light_threads if light else self._threads
        reply = await loop.run_in_executor(threads, self._exchange, fn, args, {}, light)
        if reply is None:  # no worker left
            return await loop.run_in_executor(None, fn, *args)
        return _unpacked(reply)  # type: ignore[no-any-return]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Let the calls under way finish (whatever `wait` says: a worker's
        socket cannot be closed under a call), then close every worker's
        socket: the workers exit on the end of file (a worker still there
        after 5 s is terminated)."""
        self._light_threads.shutdown(wait=True, cancel_futures=cancel_futures)
        self._threads.shutdown(wait=True, cancel_futures=cancel_futures)
        for worker in self._alive:
            worker.conn.close()
        for worker in self._alive:
            worker.process.join(5)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join()
        self._alive.clear()

    def _start_workers(self, heavy: bool) -> None:
        """Start the workers owed: those that died, and the last one at the
        first heavy call. Each is a fresh interpreter, never a fork of this
        process, which has threads by now (a child forked beside them could
        inherit a lock one of them held, and hang). Started in the caller's
        thread, the event loop's in a pass: a worker's parent-death signal is
        tied to the thread that starts it."""
        with self._changed:
            owed, self._lost = self._lost, []
            if heavy and self._spare:
                self._spare = False
                owed.append(False)
        for light in owed:
            try:
                worker = _spawn(light)
            except OSError as exc:
                log.warning("could not start a worker process: %s", exc)
                continue
            with self._changed:
                self._alive.append(worker)
                self._idle.append(worker)
                self._changed.notify_all()

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        reply = self._exchange(fn, args, kwargs)
        return fn(*args, **kwargs) if reply is None else _unpacked(reply)  # type: ignore[no-any-return]

    def _exchange(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                  light: bool = False) -> bytes | None:
        """The call sent to an idle worker, and its pickled reply; None when
        no worker is left. A worker that dies under the call is buried and the
        call goes to the next; a second death, or none left, is `WorkerDied`."""
        died, code = 0, None
        while (worker := self._take(light)) is not None:
            try:
                # pickled once a worker is free: a call waiting for one holds
                # no second copy of its pages
                task = pickle.dumps((fn, args, kwargs), pickle.HIGHEST_PROTOCOL)
            except BaseException:  # it cannot be sent: the worker is still free
                self._release(worker)
                raise
            try:
                reply = worker.exchange(task)
            except (EOFError, OSError):
                code = self._bury(worker)
                died += 1
                if died == 2:
                    raise WorkerDied(f"two worker processes died on this call "
                                     f"(the second: exit code {code})") from None
                continue
            self._release(worker)
            return reply
        if died:
            raise WorkerDied(f"the worker process died on this call (exit code {code}), "
                             "and no other was left to try it")
        return None

    def _release(self, worker: _Worker) -> None:
        with self._changed:
            self._idle.append(worker)
            self._changed.notify_all()

    def _take(self, light: bool) -> _Worker | None:
        """An idle worker among those the call may use, once there is one;
        None when every worker is dead."""
        with self._changed:
            while self._alive:
                takers = [w for w in self._alive if w.light]
                allowed = takers or self._alive if light else self._alive
                for worker in allowed:
                    if worker in self._idle:
                        self._idle.remove(worker)
                        return worker
                self._changed.wait()
            return None

    def _bury(self, worker: _Worker) -> int | None:
        """Forget a dead worker, owe a new one unless workers die too often,
        and say so; its exit code."""
        worker.conn.close()
        worker.process.join(5)
        now = time.monotonic()
        with self._changed:  # two workers may die at once, each seen by its own thread
            self._alive.remove(worker)
            self._deaths = [t for t in self._deaths if now - t < 60] + [now]
            replaced = len(self._deaths) <= self._count
            if replaced:
                self._lost.append(worker.light)
            left = len(self._alive)
            self._changed.notify_all()
        then = ("another starts with the next call" if replaced else
                "too many died within a minute: not replaced" +
                ("" if left else ", parsing in threads"))
        log.warning("a worker process died (exit code %s); %d left; %s",
                    worker.process.exitcode, left, then)
        return worker.process.exitcode


class _Worker:
    def __init__(self, process: BaseProcess | _Spawned, conn: Connection, light: bool) -> None:
        self.process, self.conn = process, conn
        self.light = light  # takes light calls (all but the last worker)

    def exchange(self, task: bytes) -> bytes:
        """Send a pickled call, wait for its pickled reply; raises EOFError or
        OSError when the worker is gone, even halfway through its reply."""
        self.conn.send_bytes(task)
        return self.conn.recv_bytes()


class _Spawned:
    """A spawned worker's process, seen as `_Worker` sees a forked one."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    def terminate(self) -> None:
        self._popen.terminate()


def _spawn(light: bool) -> _Worker:
    """A worker in a fresh interpreter, on a socket pair whose far end is the
    only descriptor it inherits; it imports what its calls need as it
    unpickles them, from this process's import path."""
    if not sys.executable:  # embedded: no interpreter to start
        raise OSError("no Python executable (sys.executable is empty)")
    ours, theirs = socket.socketpair()
    code = "import sys; from scraper.workers import _serve_fd; _serve_fd(*map(int, sys.argv[1:]))"
    try:
        popen = subprocess.Popen(
            [sys.executable, "-c", code, str(theirs.fileno()), str(os.getpid())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL, env=child_env())
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
    return _Worker(_Spawned(popen), Connection(ours.detach()), light)


def _serve_fd(fd: int, parent: int) -> None:
    """A spawned worker's life (see `_spawn`)."""
    _serve(Connection(fd), [], parent)


def _unpacked(reply: bytes) -> Any:
    """A worker's reply: its result, or its exception raised."""
    ok, value = pickle.loads(reply)
    if ok:
        return value
    raise value


def _serve(conn: Connection, inherited: list[Connection], parent: int) -> None:
    """A worker's life: calls in, results out, until the main process closes
    its end of the socket."""
    _worker_init(parent)
    for other in inherited:
        other.close()
    while True:
        try:
            fn, args, kwargs = conn.recv()
        except EOFError:
            return
        try:
            reply = pickle.dumps((True, fn(*args, **kwargs)), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # the caller gets it raised (a poll's own error)
            try:
                reply = pickle.dumps((False, exc), pickle.HIGHEST_PROTOCOL)
            except Exception:  # an exception that does not pickle
                reply = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        conn.send_bytes(reply)


def _worker_init(parent: int) -> None:
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
        if os.getppid() != parent:  # it died before prctl took effect: orphaned
            os._exit(1)


async def run_cpu(executor: Executor | None, fn: Callable[..., T], *args: Any,
                  light: bool = False) -> T:
    """`fn(*args)` in the worker processes (`WorkerPool`, which moves a task
    to a thread when no worker is left), or in a thread when there are none.
    `light`: see `WorkerPool`."""
    import asyncio  # here, not at the top: the workers are forked before asyncio loads

    if isinstance(executor, WorkerPool):
        return await executor.run(fn, *args, light=light)
    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
