"""The loop's two clocks: the wall clock (live runs) and a virtual clock that jumps.

As in SimPy, where `Environment` and `RealtimeEnvironment` run the same model and
differ only in how `step()` advances time, the tick loop runs unchanged on either:
`LiveClock` sleeps on `time.monotonic` (waking early when an agent writes), and
`VirtualClock` jumps straight to the next thing that happens — a scheduled
callback or the deadline — so 100 simulated ticks take milliseconds. Callbacks
scheduled for the same instant run in the order they were scheduled (a sequence
counter breaks ties, as in SimPy's event queue), so a simulated run is
deterministic. Touches nothing but time.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable

from maxwell.run.parts import Channel


class LiveClock:
    """Wall-clock time: `time.monotonic`, waiting by sleeping or on the channel."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._monotonic = monotonic
        self._sleep = sleep

    def now(self) -> float:
        return self._monotonic()

    def wait_until(self, deadline: float, channel: Channel | None) -> bool:
        remaining = deadline - self._monotonic()
        if channel is not None:
            return channel.wait(max(remaining, 0.0))
        if remaining > 0:
            self._sleep(remaining)
        return False


class VirtualClock:
    """Simulated time that advances only when the loop waits, and then in one jump."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._now = float(start_s)
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def schedule(self, at_s: float, callback: Callable[[], None]) -> None:
        """Run `callback` when simulated time reaches `at_s` (never before now)."""
        heapq.heappush(self._queue, (max(float(at_s), self._now), next(self._seq), callback))

    def advance(self, dt_s: float) -> None:
        """Let `dt_s` of simulated time pass, running what falls due on the way."""
        self.wait_until(self._now + dt_s, None)

    def wait_until(self, deadline: float, channel: Channel | None) -> bool:
        if channel is not None and channel.wait(0.0):
            return True
        while self._queue and self._queue[0][0] <= deadline:
            at_s, _, callback = heapq.heappop(self._queue)
            self._now = max(self._now, at_s)
            callback()
            if channel is not None and channel.wait(0.0):
                return True
        self._now = max(self._now, deadline)
        return False
