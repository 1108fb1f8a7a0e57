"""scraper: an archiver for finance news feeds (RSS/Atom/RSSHub to SQLite and Hexo)."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# httpx imports its command-line client (click, pygments, rich) whenever
# click is installed, as it is beside sqlite-utils: 2 MB in every process
# that fetches, never used. A None entry makes that one import fail, and
# httpx falls back to a stub `main`. Set here, before any module of ours
# imports httpx; it changes nothing if httpx was imported already.
_sys.modules.setdefault("httpx._main", None)


def child_env() -> dict[str, str]:
    """This process's environment, PYTHONPATH set to its import path: a fresh
    interpreter started with it (the store's schema helper, a spawned worker)
    imports what this one does, scraper included, however it was started."""
    path = _os.pathsep.join(entry or _os.getcwd() for entry in _sys.path)
    return {**_os.environ, "PYTHONPATH": path}
