"""Values derived from an immutable prompt object, computed once per object and kept while it lives."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# id(object) -> (a weak reference to it, its values by slot); an entry goes when its object is collected. No lock:
# two threads asking at once may both build a value, and either one is kept (they are equal).
_HELD: dict[int, tuple[weakref.ref[Any], dict[str, Any]]] = {}


def per_object(obj: Any, slot: str, build: Callable[[], T]) -> T:
    """`build()` the first time `slot` is asked of `obj`, the same value after that while `obj` lives: for objects
    that never change (a prompt is immutable: a change makes a new one). One that cannot be weakly referenced gets
    `build()` every time."""
    key = id(obj)
    held = _HELD.get(key)
    if held is None or held[0]() is not obj:

        def forget(ref: weakref.ref[Any]) -> None:
            if _HELD.get(key, (None, None))[0] is ref:
                _HELD.pop(key, None)

        try:
            held = (weakref.ref(obj, forget), {})
        except TypeError:  # not weak-referenceable
            return build()
        _HELD[key] = held
    values = held[1]
    if slot not in values:
        values[slot] = build()
    return values[slot]
