"""The twin's clock: runs state transitions at their due time.

Every lifecycle of the twin that "takes time" (a cluster Creating -> Running, a host initialising,
a node upgrading, a pod turning Ready) is a callback scheduled here, never a sleeping thread, so that
a twin with thousands of pending transitions costs one thread. Both the cloud twin and the cluster
twin schedule through one Clock, so their timings stay consistent with each other.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Timer:
    due: float
    seq: int
    fn: Callable[[], None] = field(compare=False)
    # periodic: a heartbeat or a scan that re-arms itself forever (a quiet twin always has some);
    # otherwise a lifecycle step in flight (POST /_twin/snapshot refuses while one is pending)
    periodic: bool = field(default=False, compare=False)
    label: str = field(default="", compare=False)


class Clock:
    """A single-threaded timer wheel: ``call_later(delay, fn)`` runs ``fn`` after ``delay`` seconds.

    Callbacks run on the clock's thread one at a time; they must be short and take their own locks.
    An exception in a callback is logged and does not stop the clock.
    """

    def __init__(self) -> None:
        self._heap: list[_Timer] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="twin-clock", daemon=True)
        self._thread.start()

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def call_later(self, delay: float, fn: Callable[[], None], *, periodic: bool = False, label: str = "") -> _Timer:
        """``label`` names the step for a refused snapshot (default: the function's name)."""
        timer = _Timer(self.now() + max(0.0, delay), next(self._seq), fn, periodic,
                       label or getattr(fn, "__qualname__", repr(fn)))
        with self._cond:
            heapq.heappush(self._heap, timer)
            self._cond.notify()
        return timer

    def pending(self) -> list[str]:
        """The labels of the lifecycle steps still due (periodic timers left out), soonest first."""
        with self._cond:
            return [t.label for t in sorted(self._heap) if not t.periodic]

    def void_lifecycle(self) -> None:
        """Drop every pending lifecycle step (a reset or a restore replaced the world they belonged to);
        periodic timers stay: each checks on its next tick whether its owner still runs."""
        with self._cond:
            self._heap = [t for t in self._heap if t.periodic]
            heapq.heapify(self._heap)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
        self._thread.join(timeout=5)

    def _next_due(self) -> _Timer | None:
        with self._cond:
            while not self._stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0].due - self.now()
                if wait <= 0:
                    return heapq.heappop(self._heap)
                self._cond.wait(timeout=wait)
            return None

    def _run(self) -> None:
        while (timer := self._next_due()) is not None:
            try:
                timer.fn()
            except Exception:  # a broken transition must not stop every other one
                log.exception("twin clock callback failed")
