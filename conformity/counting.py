"""How many of something each key holds at once in this process (threads included): requests of a session, uploads of
a vendor. A key is dropped when its count falls back to zero."""

from __future__ import annotations

import threading


class KeyedCounts:
    """A count per key, taken and given back under one lock."""

    def __init__(self) -> None:
        self._count: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, key: str, limit: int | None = None) -> bool:
        """Count one more for ``key``; False (nothing counted) when it already holds ``limit``."""
        with self._lock:
            held = self._count.get(key, 0)
            if limit is not None and held >= limit:
                return False
            self._count[key] = held + 1
            return True

    def leave(self, key: str) -> None:
        with self._lock:
            left = self._count.get(key, 0) - 1
            if left > 0:
                self._count[key] = left
            else:
                self._count.pop(key, None)

    def held(self, key: str) -> int:
        return self._count.get(key, 0)

    def busy(self, key: str) -> bool:
        return key in self._count

    def __bool__(self) -> bool:
        return bool(self._count)
