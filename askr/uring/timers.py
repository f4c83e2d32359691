"""Timers for the event loop: a heap of deadlines.

The loop asks ``next_timeout()`` for the wait timeout, waits, then calls
``run_due()``.  Cancelling marks the entry dead instead of searching the
heap (O(1)); dead entries are dropped when they reach the top, and the heap
is rebuilt when they outnumber live ones so that many cancelled keep-alive
timers cannot grow it without bound.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable


class Timer:
    """A handle returned by ``Timers.add``; pass it to ``Timers.cancel``."""

    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], object]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False


class Timers:
    """A heap of deadlines on a monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def add(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Call ``callback()`` from ``run_due`` once ``delay`` seconds passed."""
        timer = Timer(self._clock() + max(0.0, delay), callback)
        heapq.heappush(self._heap, (timer.deadline, next(self._seq), timer))
        self._live += 1
        return timer

    def cancel(self, timer: Timer) -> None:
        """Forget a timer; cancelling twice or after it fired does nothing."""
        if timer.cancelled:
            return
        timer.cancelled = True
        self._live -= 1
        if len(self._heap) > 64 and self._live < len(self._heap) // 2:
            self._heap = [e for e in self._heap if not e[2].cancelled]
            heapq.heapify(self._heap)

    def _drop_dead(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)

    def next_timeout(self, limit: float | None = None) -> float | None:
        """Seconds until the nearest deadline (0 if due), capped by limit.

        None means "no timer and no limit": wait forever.
        """
        self._drop_dead()
        if not self._heap:
            return limit
        left = max(0.0, self._heap[0][0] - self._clock())
        return left if limit is None else min(left, limit)

    def run_due(self) -> int:
        """Run every timer whose deadline has passed; return how many ran.

        A callback that adds a timer due at once does not run in this call,
        so one pass always ends.
        """
        now = self._clock()
        due = []
        while self._heap and self._heap[0][0] <= now:
            timer = heapq.heappop(self._heap)[2]
            if not timer.cancelled:
                timer.cancelled = True
                self._live -= 1
                due.append(timer)
        for timer in due:
            timer.callback()
        return len(due)
