"""Speed and memory of `scraper fetch` against lemon24/reader, in one run.

Serves a synthetic workload (bench/workload.py) on 127.0.0.1 and measures,
each tool in its own process, medians of --repeat runs:

- `scraper fetch` (this checkout, this interpreter), first pass and second
  pass (every feed answers 304);
- lemon24/reader 3.26 `update_feeds()`, installed in the benchmark's own
  venv (bench/.venv-reader, created on first use from PyPI);
- the floors: httpx alone (same requests in flight as scraper's per_host),
  feedparser.parse alone over every document held in memory, and (full-text
  mode) our extractor alone over every article page.

Peak memory is sampled every 20 ms over the whole process tree (scraper's
worker processes and its short-lived schema helper included). "Peak RSS" is the number of distinct
physical pages the tree maps (read from /proc/PID/pagemap, which gives page
frame numbers to root only): a page shared by forked processes counts once,
and for a single process it is exactly its RSS. It is computed whenever the
cheap estimate below reaches a new maximum, and at most once a second while
it stays near it (each count costs the sampler ~6 ms of CPU per process,
taken from the tool it measures on a 2-core machine). Without
root it falls back to that estimate, each process's private pages plus the
largest shared set, which undercounts a tree (pages shared by the workers
alone are left out: 4-5 MB for scraper at 500 x 20). "RSS summed" adds every
process's RSS, counting shared pages in each.

    python bench/speed.py                      # 500 x 20, feed-content mode
    python bench/speed.py --mode summary       # full-text mode: 10,000 article pages
    python bench/speed.py --scaling 100,500,2000,5000 --repeat 1
"""

from __future__ import annotations

import argparse
import array
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
READER_VENV = HERE / ".venv-reader"
READER_VERSION = "3.26"
IN_FLIGHT = 4  # scraper's per_host in the bench config, and the httpx floor's limit

sys.path.insert(0, str(HERE))
from workload import Workload  # noqa: E402


@dataclass
class Run:
    wall: float
    rss_mb: float  # peak, each physical page counted once (see _Sampler)
    summed_mb: float  # peak RSS summed over the processes (shared pages counted in each)
    inner: dict = field(default_factory=dict)  # what the process reported itself


# --- measuring a process tree -------------------------------------------------------

def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return pids


def _memory(pids: list[int]) -> tuple[int, int]:
    """(estimate of the tree's RSS with shared pages counted once, RSS summed), in kB.

    The estimate is each process's private pages plus the largest shared set:
    for one process it is its RSS; for a forked tree it undercounts (pages
    shared by some processes but not the one with the largest shared set)."""
    private = shared = summed = 0
    for p in pids:
        fields: dict[str, int] = {}
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    name, _, rest = line.partition(":")
                    if rest.strip().endswith("kB"):
                        fields[name] = int(rest.split()[0])
        except OSError:
            continue
        private += fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
        shared = max(shared, fields.get("Shared_Clean", 0) + fields.get("Shared_Dirty", 0))
        summed += fields.get("Rss", 0)
    return private + shared, summed


_PFN = (1 << 55) - 1  # bits 0-54 of a pagemap entry; bit 63: the page is present


def _distinct_pages(pids: list[int]) -> int | None:
    """kB of distinct physical pages mapped by the processes `pids`, or None
    when page frame numbers cannot be read (they read as 0 without root)."""
    frames: set[int] = set()
    for p in pids:
        try:
            with open(f"/proc/{p}/maps") as maps, \
                    open(f"/proc/{p}/pagemap", "rb", buffering=0) as pagemap:
                for line in maps:
                    start, end = (int(x, 16) for x in line.split(None, 1)[0].split("-"))
                    if start >= 1 << 47:  # [vsyscall], not in the page table
                        continue
                    pagemap.seek(start >> 12 << 3)
                    entries = array.array("Q", pagemap.read((end - start) >> 12 << 3))
                    frames.update(e & _PFN for e in entries if e >> 63)
        except OSError:  # the process has just ended
            continue
    if frames == {0}:
        return None
    return len(frames) * (os.sysconf("SC_PAGE_SIZE") // 1024)


class _Sampler:
    """The peak memory of a process tree, sampled until the process ends."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.estimate = self.summed = 0  # peaks, kB
        self.exact: int | None = 0
        self._last_exact = 0.0

    def run(self, alive: Callable[[], bool]) -> None:
        while alive():
            self.sample()
            time.sleep(0.02)

    def sample(self) -> None:
        pids = _tree(self.pid)
        estimate, summed = _memory(pids)
        near_peak = estimate >= self.estimate - 1024
        new_peak = estimate > self.estimate + 256
        self.estimate, self.summed = max(self.estimate, estimate), max(self.summed, summed)
        now = time.monotonic()
        # the exact count costs ~6 ms of this process's CPU per process sampled:
        # taken at each new peak of the estimate, else at most once a second
        # near it, so that it does not slow the tool it measures
        if self.exact is not None and (new_peak or (near_peak and now - self._last_exact > 1.0)):
            self._last_exact = now
            exact = _distinct_pages(pids)
            self.exact = None if exact is None else max(self.exact, exact)

    @property
    def peak(self) -> int:
        return self.exact or self.estimate


def measure(cmd: list[str], ok: tuple[int, ...] = (0,)) -> Run:
    """Run `cmd`, sampling its process tree's memory; fail loudly if it fails."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = _Sampler(proc.pid)
    thread = threading.Thread(target=sampler.run, args=(lambda: proc.poll() is None,),
                              daemon=True)
    thread.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    thread.join()
    if proc.returncode not in ok:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    inner = {}
    lines = out.decode().strip().splitlines()
    if lines and lines[-1].startswith("{"):
        inner = json.loads(lines[-1])
    return Run(wall, sampler.peak / 1024, sampler.summed / 1024, inner)


# --- the tools ----------------------------------------------------------------------

def reader_python() -> str:
    python = READER_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing reader {READER_VERSION} into {READER_VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(READER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"reader=={READER_VERSION}",
                        "sgmllib3k"],  # reader's vendored feedparser imports sgmllib
                       check=True)
    return str(python)


def scraper_config(path: Path, urls: list[str], full_text: str) -> None:
    feeds = "".join(
        f'[[feeds]]\nurl = "{u}"\ncategory = "bench"\nsource = "s{i // 50}"\n'
        f'channel = "c{i}"\nfull_text = "{full_text}"\n\n'
        for i, u in enumerate(urls)
    )
    path.write_text(
        f'[archive]\ndatabase = "{path.parent / "archive.db"}"\n\n'
        f"[http]\ntimeout = 60\nretries = 0\nconcurrency = 16\nper_host = {IN_FLIGHT}\n"
        "allow_private = true\n\n" + feeds,
        encoding="utf-8",
    )


def run_scraper(work: Path, urls: list[str], full_text: str) -> tuple[Run, Run, dict[str, str]]:
    config = work / "scraper.toml"
    scraper_config(config, urls, full_text)
    cmd = [sys.executable, "-m", "scraper", "fetch", "--config", str(config), "--json"]
    first, second = measure(cmd), measure(cmd)
    with sqlite3.connect(work / "archive.db") as db:
        titles = dict(db.execute("SELECT url, title FROM articles"))
    return first, second, titles


def run_reader(work: Path, urls_file: Path) -> tuple[Run, Run, dict[str, str]]:
    python, script, db = reader_python(), str(HERE / "reader_run.py"), str(work / "reader.db")
    cmd = [python, script, "update", db, str(urls_file)]
    first, second = measure(cmd), measure(cmd)
    out = subprocess.run([python, script, "titles", db], capture_output=True, check=True)
    return first, second, json.loads(out.stdout)


def run_floor(tool: str, urls_file: Path) -> Run:
    return measure([sys.executable, str(HERE / "floors.py"), tool, str(urls_file), str(IN_FLIGHT)])


# --- the workload server ------------------------------------------------------------

class Server:
    def __init__(self, w: Workload) -> None:
        cmd = [sys.executable, str(HERE / "workload.py"), "--feeds", str(w.feeds),
               "--items", str(w.items), "--mode", w.mode, "--gbk", str(w.gbk)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.base = self.proc.stdout.readline().strip()
        if not self.base.startswith("http://127.0.0.1:"):
            raise SystemExit("the workload server did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def expected_titles(w: Workload, base: str) -> dict[str, str]:
    return {f"{base}/a/{f}/{i}.html": w.title(f, i)
            for f in range(w.feeds) for i in range(w.items)}


def right(titles: dict[str, str], expected: dict[str, str]) -> int:
    return sum(titles.get(url) == title for url, title in expected.items())


# --- the tables ---------------------------------------------------------------------

def _median(runs: list[Run], key: str) -> float:
    return statistics.median(getattr(r, key) for r in runs)


def compare(w: Workload, repeat: int, with_reader: bool) -> None:
    server = Server(w)
    try:
        urls = [w.feed_url(server.base, f) for f in range(w.feeds)]
        expected = expected_titles(w, server.base)
        rows: dict[str, dict[str, list]] = {}
        with tempfile.TemporaryDirectory(prefix="scraper-bench-") as tmp:
            urls_file = Path(tmp) / "urls.txt"
            urls_file.write_text("\n".join(urls))
            pages_file = Path(tmp) / "pages.txt"
            pages_file.write_text("\n".join(expected))
            for n in range(repeat):
                _one_round(w, Path(tmp) / f"r{n}", urls, urls_file, pages_file, expected,
                           rows, with_reader)
        _print_compare(w, rows)
    finally:
        server.close()


def _one_round(w: Workload, work: Path, urls: list[str], urls_file: Path, pages_file: Path,
               expected: dict[str, str], rows: dict, with_reader: bool) -> None:
    full_text = "auto" if w.mode == "summary" else "never"
    (work / "scraper").mkdir(parents=True)
    first, second, titles = run_scraper(work / "scraper", urls, full_text)
    _add(rows, "scraper fetch", first, second, right(titles, expected))
    if with_reader:
        (work / "reader").mkdir()
        first, second, titles = run_reader(work / "reader", urls_file)
        _add(rows, f"reader {READER_VERSION} update_feeds", first, second, right(titles, expected))
    floor = run_floor("httpx", urls_file)
    _add(rows, f"httpx alone, {IN_FLIGHT} in flight", floor, None, None, inner=True)
    if w.mode == "content":
        _add(rows, "feedparser.parse alone", run_floor("feedparser", urls_file), None, None,
             inner=True)
    else:
        _add(rows, f"httpx alone, {len(pages_file.read_text().split())} pages",
             run_floor("httpx", pages_file), None, None, inner=True)
        _add(rows, "our extractor alone, 1 core", run_floor("extract", pages_file), None, None,
             inner=True)


def _add(rows: dict, name: str, first: Run, second: Run | None, titles: int | None,
         inner: bool = False) -> None:
    row = rows.setdefault(name, {"first": [], "second": [], "rss": [], "summed": [], "titles": []})
    row["first"].append(first.inner["first"] if inner else first.wall)
    if inner and "second" in first.inner:
        row["second"].append(first.inner["second"])
    if second is not None:
        row["second"].append(second.wall)
    row["rss"].append(first.rss_mb if second is None else max(first.rss_mb, second.rss_mb))
    row["summed"].append(
        first.summed_mb if second is None else max(first.summed_mb, second.summed_mb))
    if titles is not None:
        row["titles"].append(titles)


def _print_compare(w: Workload, rows: dict) -> None:
    entries = w.feeds * w.items
    print(f"\n{w.feeds} feeds x {w.items} items, mode {w.mode}, {w.gbk:.0%} GBK "
          f"(medians of {len(next(iter(rows.values()))['first'])})\n")
    again = "304" if w.conditional else "200, same bytes"
    print(f"| tool | first pass | feeds/s | entries/s | second pass ({again}) | peak RSS "
          "| RSS summed | titles right |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    med = {name: {k: statistics.median(v) if v else None for k, v in row.items()}
           for name, row in rows.items()}
    for name, m in med.items():
        second = f"{m['second']:.2f} s" if m["second"] is not None else "-"
        titles = f"{int(m['titles'])}/{entries}" if m["titles"] is not None else "-"
        print(f"| {name} | {m['first']:.2f} s | {w.feeds / m['first']:.0f} | "
              f"{entries / m['first']:.0f} | {second} | {m['rss']:.0f} MB | {m['summed']:.0f} MB "
              f"| {titles} |")
    _print_ratios(w, med)


def _print_ratios(w: Workload, med: dict) -> None:
    ours = med["scraper fetch"]
    reader = med.get(f"reader {READER_VERSION} update_feeds")
    print()
    if reader:
        print(f"first pass, scraper / reader:  {ours['first'] / reader['first']:.2f} "
              "(target <= 0.33)")
        print(f"second pass, scraper / reader: {ours['second'] / reader['second']:.2f} "
              "(target <= 1.0)")
        print(f"peak RSS, scraper / reader:    {ours['rss'] / reader['rss']:.2f} (target <= 1.3)"
              f"; RSS summed {ours['summed'] / reader['summed']:.2f}")
    if w.mode == "summary":
        pages = w.feeds * w.items
        fetch_floor = med[f"httpx alone, {IN_FLIGHT} in flight"]["first"] \
            + med[f"httpx alone, {pages} pages"]["first"]
        extract = med["our extractor alone, 1 core"]["first"]
        floor = fetch_floor + extract / 2
        print(f"full text: floor = fetch {fetch_floor:.2f} s + extract {extract:.2f} s / 2 cores "
              f"= {floor:.2f} s; scraper / floor = {ours['first'] / floor:.2f} (target <= 1.2)")


def scaling(sizes: list[int], items: int, repeat: int) -> None:
    print(f"\nscaling, scraper fetch, {items} items per feed, feed-content mode "
          f"(medians of {repeat})\n")
    print("| feeds | first pass | ms per feed | second pass | ms per feed | peak RSS "
          "| RSS summed |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for feeds in sizes:
        w = Workload(feeds=feeds, items=items)
        server = Server(w)
        try:
            urls = [w.feed_url(server.base, f) for f in range(feeds)]
            runs = []
            with tempfile.TemporaryDirectory(prefix="scraper-bench-") as tmp:
                for n in range(repeat):
                    work = Path(tmp) / f"r{n}"
                    work.mkdir()
                    runs.append(run_scraper(work, urls, "never")[:2])
            first = statistics.median(r[0].wall for r in runs)
            second = statistics.median(r[1].wall for r in runs)
            rss = statistics.median(max(r[0].rss_mb, r[1].rss_mb) for r in runs)
            summed = statistics.median(max(r[0].summed_mb, r[1].summed_mb) for r in runs)
            print(f"| {feeds} | {first:.2f} s | {first / feeds * 1000:.1f} | {second:.2f} s | "
                  f"{second / feeds * 1000:.1f} | {rss:.0f} MB | {summed:.0f} MB |", flush=True)
        finally:
            server.close()


def compile_scraper() -> None:
    """Byte-compile this checkout, as `pip install` does for an installed
    package (reader's venv has its .pyc files): otherwise, where
    PYTHONDONTWRITEBYTECODE is set, each `scraper fetch` compiles its
    modules again at start."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "scraper")],
                   check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--mode", choices=("content", "summary"), default="content")
    ap.add_argument("--gbk", type=float, default=0.10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-conditional", action="store_true",
                    help="no ETag, Last-Modified or 304: the second pass gets every feed again")
    ap.add_argument("--no-reader", action="store_true", help="skip lemon24/reader")
    ap.add_argument("--scaling", help="comma-separated feed counts: scraper alone at each size")
    args = ap.parse_args()
    compile_scraper()
    exact = _distinct_pages([os.getpid()]) is not None
    print("peak RSS: " + ("distinct physical pages of the process tree (pagemap)" if exact else
                          "estimate, private pages + the largest shared set (run as root "
                          "for the exact count)"), flush=True)
    if args.scaling:
        scaling([int(n) for n in args.scaling.split(",")], args.items, args.repeat)
        return
    w = Workload(feeds=args.feeds, items=args.items, mode=args.mode, gbk=args.gbk,
                 conditional=not args.no_conditional)
    compare(w, args.repeat, not args.no_reader)


if __name__ == "__main__":
    main()
