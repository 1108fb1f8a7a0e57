"""Pure decisions about what a fetched entry means for the archive."""

from __future__ import annotations

from enum import Enum

__all__ = ["Action", "decide"]


class Action(Enum):
    NEW = "new"
    CHANGED = "updated"
    UNCHANGED = "unchanged"


def decide(stored_hash: str | None, new_hash: str) -> Action:
    """New when nothing is stored, unchanged when the content hash is the same,
    changed otherwise (the store then keeps the previous version)."""
    if stored_hash is None:
        return Action.NEW
    return Action.UNCHANGED if stored_hash == new_hash else Action.CHANGED
