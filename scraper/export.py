"""Write archived records as a Hexo `source/_posts` tree.

`DIR/<category>/<source>/<channel>/<title>-<id>.md`: every component is made
safe for every filesystem and for Hexo (no separators, no reserved
characters, no `%`, at most 255 bytes, never starting with `.` or `_`), so
nothing is written outside DIR, and the id suffix makes the name unique and
stable: exporting again rewrites the same file, never a second one.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from scraper.models import StoredArticle
from scraper.record import render_post

if TYPE_CHECKING:
    from scraper.store import Store

__all__ = ["ExportStats", "article_path", "export", "safe_name", "write_articles"]

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|%#\[\]{}^`~\s\u3000]+")
_MAX_BYTES = 255
_ID_SUFFIX = re.compile(r"-(\d+)\.md$")


@dataclass
class ExportStats:
    written: int = 0
    unchanged: int = 0
    removed: int = 0  # files of renamed articles


def safe_name(text: str, max_bytes: int = _MAX_BYTES) -> str:
    """`text` as one path component: reserved characters become `-`, no
    leading `.`/`_`/`-`, no trailing dot, at most `max_bytes` in UTF-8."""
    name = _UNSAFE.sub("-", unicodedata.normalize("NFC", text))
    name = name.strip("-. _")
    encoded = name.encode("utf-8")[:max_bytes]
    name = encoded.decode("utf-8", "ignore").rstrip("-. ")
    return name


def article_path(out_dir: Path, article: StoredArticle) -> Path:
    """Where an article's post goes under `out_dir`."""
    suffix = f"-{article.id}.md"
    stem = safe_name(article.record.title, _MAX_BYTES - len(suffix.encode())) or "untitled"
    folders = [safe_name(c) for c in article.record.categories]
    return out_dir.joinpath(*[f for f in folders if f], stem + suffix)


def write_articles(store: Store, out_dir: Path, ids: Iterable[int]) -> ExportStats:
    """Write the given articles' posts (after a fetch wrote them)."""
    return _write(out_dir, store.articles(ids=list(ids)))


def export(
    store: Store, out_dir: Path, since: datetime | None = None,
    feed_urls: Iterable[str] | None = None,
) -> ExportStats:
    """Write every (selected) article's post under `out_dir`."""
    return _write(out_dir, store.articles(since=since, feed_urls=feed_urls))


def _write(out_dir: Path, articles: Iterable[StoredArticle]) -> ExportStats:
    stats = ExportStats()
    root = out_dir.resolve()
    folders: dict[Path, dict[int, set[str]]] = {}  # folder -> article id -> file names
    for article in articles:
        path = article_path(root, article)
        if root not in path.resolve().parents:  # cannot happen with safe names; be sure
            raise ValueError(f"refusing to write outside {root}: {path}")
        text = render_post(article.record, article.first_seen)
        if path.parent not in folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            folders[path.parent] = _by_id(path.parent)
        names = folders[path.parent].setdefault(article.id, set())
        for stale in names - {path.name}:  # the title changed: drop the old file
            (path.parent / stale).unlink(missing_ok=True)
            stats.removed += 1
        names.intersection_update({path.name})
        names.add(path.name)
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            stats.unchanged += 1
            continue
        _atomic_write(path, text)
        stats.written += 1
    return stats


def _by_id(folder: Path) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for entry in folder.iterdir():
        match = _ID_SUFFIX.search(entry.name)
        if match and entry.is_file():
            found.setdefault(int(match.group(1)), set()).add(entry.name)
    return found


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".md")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
