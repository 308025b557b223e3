"""Deterministic identities for aggregates that are keyed by something other than a random id."""

from __future__ import annotations

from uuid import UUID, uuid5

_NAMESPACE = UUID("6f1c4d1e-2b7a-4c1e-9d3b-5a0e7f2c8b41")


def derived_id(kind: str, key: object) -> UUID:
    """A stable UUID for (kind, key), so concurrent creators of the same thing collide."""
    return uuid5(_NAMESPACE, f"{kind}:{key}")
