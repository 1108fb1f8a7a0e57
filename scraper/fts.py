"""Text segmentation for the full-text index (no SQL here).

SQLite's `unicode61` tokenizer keeps a run of Chinese characters as one token,
so a two-character word such as 降准 inside a sentence is never found, and
`trigram` finds nothing shorter than three characters. Instead every Han,
kana or other CJK character is indexed as a token of its own, and a query
word becomes a phrase of those tokens: "降准" matches exactly where the two
characters stand side by side, in any text, at any length.
"""

from __future__ import annotations

import re

__all__ = ["match_expression", "query_terms", "segment"]

_CJK = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
)
_CJK_CHAR = re.compile(f"([{_CJK}])")
_WORDISH = re.compile(r"\w")


def segment(text: str) -> str:
    """Text with every CJK character set apart by spaces, ready to index."""
    return _CJK_CHAR.sub(r" \1 ", text)


def query_terms(query: str) -> list[str]:
    """The user's words (split on whitespace) that hold something searchable."""
    return [t for t in query.split() if _WORDISH.search(t)]


def match_expression(query: str) -> str:
    """An FTS5 MATCH expression: every word must occur (as a phrase of its
    tokens); quotes are escaped so no input is an FTS syntax error."""
    phrases = []
    for term in query_terms(query):
        tokens = segment(term).split()
        phrase = " ".join(tokens).replace('"', '""')
        phrases.append(f'"{phrase}"')
    return " AND ".join(phrases)
