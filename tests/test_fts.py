"""The search index's text: what SQLite's tokenizer makes of it."""

from __future__ import annotations

import gzip
import html
import sqlite3

from conftest import CORPUS, need
from hypothesis import given, settings
from hypothesis import strategies as st

from scraper.extractor import extract
from scraper.fts import _BLOCK_TAG, _HIDDEN, _TAG, index_text, segment


# The text as it was written before whitespace was left to the tokenizer: an
# archive indexed then must get the very same tokens from today's function,
# or deleting an updated article's old tokens would miss.
def _squeezed(body_html: str) -> str:
    text = _BLOCK_TAG.sub(" ", _HIDDEN.sub(" ", body_html))
    return segment(" ".join(html.unescape(_TAG.sub("", text)).split()))


def _tokens(texts: list[str]) -> list[tuple[str, int, int]]:
    """(term, row, position) of every token the index would hold."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, content='', "
               "tokenize = 'unicode61 remove_diacritics 2')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
    db.executemany("INSERT INTO t (rowid, body) VALUES (?, ?)", enumerate(texts, 1))
    return db.execute("SELECT term, doc, offset FROM v ORDER BY doc, offset").fetchall()


_AWKWARD = st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000\u200bab中文é&;<>/p" +
                   "".join(["<p>", "</p>", "<br>", "&nbsp;", "&amp;", "<b>", "</b>"]), max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.lists(_AWKWARD, min_size=1, max_size=5))
def test_awkward_whitespace_gives_the_tokens_it_always_gave(bodies: list[str]) -> None:
    assert _tokens([index_text(b) for b in bodies]) == _tokens([_squeezed(b) for b in bodies])


def test_corpus_articles_give_the_tokens_they_always_gave() -> None:
    pages = sorted(need(CORPUS / "article-extraction" / "html").glob("*.html.gz"))[:60]
    bodies = [extract(gzip.decompress(p.read_bytes()), "https://example.com/a").html
              for p in pages]
    assert len([b for b in bodies if b]) > 40
    assert _tokens([index_text(b) for b in bodies]) == _tokens([_squeezed(b) for b in bodies])
