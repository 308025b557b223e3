"""What text the system can keep: the one rule for every string that enters the log.

PostgreSQL `text` and `jsonb` cannot hold NUL (U+0000), and UTF-8 cannot encode a lone
surrogate (U+D800..U+DFFF), which JSON's `\\ud800` escapes and Python strings can carry.
An event holding either is accepted by the log (its payload is bytes) but can never be
applied by a read model that stores the text, and the log is immutable: so every text is
checked before it becomes an event, and readers replace what slipped through earlier.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from domain.errors import Invalid

# NUL and the surrogate block: the characters PostgreSQL text and JSONB cannot hold.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
# How deep and how long a foreign value is kept as it is (see storable_json).
MAX_JSON_DEPTH, MAX_REPR = 16, 2000
TOO_DEEP = "(nested too deep)"


def problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None if it can."""
    found = UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "Text must not contain the NUL character (U+0000)"
    return f"Text must not contain a lone surrogate (U+{ord(char):04X})"


# C0 and C1 control characters: a name or title is one line of visible text.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def line_problem(text: str) -> str | None:
    """Why `text` is not one line of text (a name, a title), or None."""
    return problem(text) or (
        "Text must not contain control characters" if CONTROL.search(text) else None)


def first_problem(value: Any, where: str = "") -> tuple[str, str] | None:
    """The first (location, problem) of any string in a nested value, keys included."""
    if isinstance(value, str):
        reason = problem(value)
        return (where, reason) if reason else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            here = f"{where}.{key}" if where else str(key)
            found = first_problem(key, here) if isinstance(key, str) else None
            if found or (found := first_problem(item, here)):
                return found
        return None
    if isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            if found := first_problem(item, f"{where}[{index}]" if where else str(index)):
                return found
    elif is_dataclass(value) and not isinstance(value, type):
        return first_problem({f.name: getattr(value, f.name) for f in fields(value)}, where)
    return None


def require_storable(value: Any, what: str = "value") -> None:
    """Refuse (Invalid, HTTP 422) a value holding text that cannot be stored."""
    found = first_problem(value)
    if found:
        where, reason = found
        raise Invalid(reason, code="UNSTORABLE_TEXT", field=where or what)


def storable(value: Any) -> Any:
    """The value with every unstorable character replaced by U+FFFD, keys included:
    how readers apply events recorded before the boundary refused such text."""
    if isinstance(value, str):
        return UNSTORABLE.sub(REPLACEMENT, value) if UNSTORABLE.search(value) else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    if isinstance(value, tuple):
        return tuple(storable(v) for v in value)
    return value


def storable_json(value: Any, depth: int = 0) -> Any:
    """Any value as JSON the log can keep: what a third party says of itself (a
    generator's provenance) can hold sets, bytes or objects that no transcoder knows,
    and nesting without end; such parts become text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        if depth >= MAX_JSON_DEPTH:
            return TOO_DEEP
        if isinstance(value, Mapping):
            return {storable(str(k)[:MAX_REPR]): storable_json(v, depth + 1)
                    for k, v in value.items()}
        items = [storable_json(v, depth + 1) for v in value]
        return items if isinstance(value, list | tuple) else sorted(items, key=repr)
    if isinstance(value, bytes):
        return storable(value.decode("utf-8", "replace"))
    return storable(repr(value)[:MAX_REPR])
