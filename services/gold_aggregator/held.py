"""The exact states a gold worker holds in memory, with the revision each was written at.

Used for the (store, day / week / month) groups (:mod:`incremental`): a state is trusted
only at the revision this worker wrote last; states unchanged for a while
leave memory (they reload from silver when they change again); a failed flush forgets all.
"""

from __future__ import annotations

import time
from typing import Generic, Protocol, TypeVar

IDLE_S = 900.0  # a state unchanged this long leaves memory


class Revised(Protocol):
    revision: int


K = TypeVar("K")
S = TypeVar("S", bound=Revised)


class Held(Generic[K, S]):
    def __init__(self, idle_s: float = IDLE_S) -> None:
        self._states: dict[K, S] = {}
        self._last_change: dict[K, float] = {}
        self._idle_s = idle_s

    def __len__(self) -> int:
        return len(self._states)

    def __getitem__(self, key: K) -> S:
        return self._states[key]

    def holds(self, key: K, revision: int) -> bool:
        """True if the state of ``key`` is held as of ``revision``."""
        held = self._states.get(key)
        return held is not None and held.revision == revision

    def put(self, key: K, state: S, revision: int) -> None:
        state.revision = revision
        self._states[key] = state
        self._last_change[key] = time.monotonic()

    def evict_idle(self) -> None:
        now = time.monotonic()
        for key in [k for k, t in self._last_change.items() if now - t > self._idle_s]:
            del self._states[key], self._last_change[key]

    def forget(self) -> None:
        self._states.clear()
        self._last_change.clear()
