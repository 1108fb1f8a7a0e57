"""Pure decisions about what a fetched entry means for the archive."""

from __future__ import annotations

from enum import Enum

__all__ = ["Action", "decide"]


class Action(Enum):
    NEW = "new"
    CHANGED = "updated"
    UNCHANGED = "unchanged"


def decide(
    stored_hash: str | None, new_hash: str, owned: bool = True, page_recovered: bool = False
) -> Action:
    """New when nothing is stored, unchanged when the content hash is the same,
    changed otherwise (the store then keeps the previous version).

    `page_recovered` is True when the stored version kept the feed's summary
    because its article page failed, and this one has the page: the entry is
    the same, but the record is better, so it is written.

    `owned` is False when the entry comes through another feed than the one
    that first archived the article: that feed's copy (often a shorter
    summary) never overwrites the owner's, or two feeds would flip the
    article back and forth on every poll."""
    if stored_hash is None:
        return Action.NEW
    if not owned:
        return Action.UNCHANGED
    if stored_hash == new_hash:
        return Action.CHANGED if page_recovered else Action.UNCHANGED
    return Action.CHANGED
