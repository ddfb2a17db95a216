"""Exponential backoff with jitter and a cap, for retrying sends after network trouble.

"Equal jitter": the n-th delay is drawn uniformly from ``[d/2, d]`` with
``d = min(cap, initial * factor**n)``. The lower half keeps a fleet of devices from hammering a
server that just came back (no zero delays), the random upper half spreads them out.

Example:
    >>> b = Backoff(initial=0.5, cap=30.0)
    >>> 0.25 <= b.next_delay() <= 0.5
    True
    >>> b.reset()
"""
from __future__ import annotations

import random
from typing import Optional

from ..errors import ConfigError


class Backoff:
    """Delays for consecutive failures; :meth:`reset` after a success."""

    def __init__(self, *, initial: float = 0.5, cap: float = 30.0, factor: float = 2.0,
                 rng: Optional[random.Random] = None) -> None:
        if initial <= 0 or cap < initial or factor < 1:
            raise ConfigError(
                f"bad backoff settings initial={initial}, cap={cap}, factor={factor}",
                hint="use 0 < initial <= cap and factor >= 1, e.g. initial=0.5, cap=30",
            )
        self.initial = float(initial)
        self.cap = float(cap)
        self.factor = float(factor)
        self.failures = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """Upper bound of the next delay (before jitter)."""
        # Cap the exponent too, so a device offline for weeks never overflows a float.
        exponent = min(self.failures, 64)
        return min(self.cap, self.initial * (self.factor ** exponent))

    def next_delay(self) -> float:
        """Delay to wait after one more failure; grows until the cap."""
        top = self.ceiling()
        self.failures += 1
        return self._rng.uniform(top / 2.0, top)

    def reset(self) -> None:
        """Forget past failures (call after a successful send)."""
        self.failures = 0
