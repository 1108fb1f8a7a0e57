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

__all__ = ["ExportStats", "Exporter", "article_path", "export", "safe_name", "write_articles"]

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


class Exporter:
    """Writes posts under one export folder. It indexes the folder's existing
    posts once, so an article whose title or feed labels changed has its old
    file removed wherever it was (files that do not look like our posts are
    never touched)."""

    def __init__(self, out_dir: Path) -> None:
        self.root = out_dir.resolve()
        self._index: dict[int, set[Path]] | None = None

    def write(self, articles: Iterable[StoredArticle]) -> ExportStats:
        stats = ExportStats()
        index = self._existing()
        for article in articles:
            path = article_path(self.root, article)
            if self.root not in path.resolve().parents:  # safe names make this impossible
                raise ValueError(f"refusing to write outside {self.root}: {path}")
            text = render_post(article.record, article.first_seen)
            known = index.setdefault(article.id, set())
            for stale in known - {path}:
                stats.removed += _remove_post(stale, self.root)
            known.clear()
            known.add(path)
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                stats.unchanged += 1
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, text)
            stats.written += 1
        return stats

    def _existing(self) -> dict[int, set[Path]]:
        if self._index is None:
            self._index = {}
            if self.root.is_dir():
                for path in self.root.rglob("*.md"):
                    match = _ID_SUFFIX.search(path.name)
                    if match and path.is_file():
                        self._index.setdefault(int(match.group(1)), set()).add(path)
        return self._index


def write_articles(store: Store, exporter: Exporter, ids: Iterable[int]) -> ExportStats:
    """Write the given articles' posts (after a fetch wrote them)."""
    return exporter.write(store.articles(ids=list(ids)))


def export(
    store: Store, out_dir: Path, since: datetime | None = None,
    feed_urls: Iterable[str] | None = None,
) -> ExportStats:
    """Write every (selected) article's post under `out_dir`."""
    return Exporter(out_dir).write(store.articles(since=since, feed_urls=feed_urls))


def _remove_post(path: Path, root: Path) -> int:
    """Delete an article's previous file if it is one of our posts, and the
    folders it leaves empty; 1 if removed."""
    try:
        with path.open(encoding="utf-8") as fh:
            head = fh.read(4096)
    except (OSError, UnicodeDecodeError):
        return 0
    if not (head.startswith("---\ntitle: '") and "\ncomments: false\n" in head):
        return 0
    path.unlink(missing_ok=True)
    folder = path.parent
    while folder != root and root in folder.parents and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
    return 1


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".md")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
