"""A token bucket that limits the AFC byte rate of one simulated phone (USB 2 / USB 3 speeds).

Why a bucket with debt: each READ reserves its bytes up front and learns how long to wait
before sending them. Reservations may drive the balance below zero, so readers queue by
themselves (a later reservation waits for the debt of the earlier ones) and a late timer wake-up
never loses throughput: the balance is refilled from the clock, not from the sleeps. Over any
interval the bytes released are at most ``burst + rate * elapsed``, and with a steady demand
they approach it. The arithmetic is pure (the clock is injected), so tests check it exactly;
the server sleeps on the event loop for the returned delay, never in a busy loop.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

#: How much the bucket may hold after an idle spell, in seconds of the rate. Big enough that a
#: sender delayed by the scheduler on a busy machine catches up (20 ms lost ~4 % at 300 MB/s
#: under load), small enough that a 4 MiB chunk at 35 MB/s still takes most of its 120 ms.
BURST_SECONDS = 0.05
#: Pieces a throttled READ is sent in, in seconds of the rate (bounded below and above), so a
#: 4 MiB reply at 35 MB/s leaves the link in steps of ~10 ms instead of one 120 ms lump, and a
#: test's slow phone (50 kB/s) still shows progress every ~80 ms rather than every second.
PIECE_SECONDS = 0.01
MIN_PIECE_BYTES = 4096
MAX_PIECE_BYTES = 1024 * 1024


class TokenBucket:
    """Bytes per second with a small burst; ``reserve`` says how long to wait before sending."""

    def __init__(self, rate: float, clock: Callable[[], float], burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate!r}")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(rate * BURST_SECONDS, 1.0)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()
        #: Bytes reserved since the bucket was made (for tests and benchmarks).
        self.reserved_bytes = 0

    @property
    def piece_bytes(self) -> int:
        """The size of the pieces a throttled READ should be sent in."""
        return int(min(MAX_PIECE_BYTES, max(MIN_PIECE_BYTES, self.rate * PIECE_SECONDS)))

    def reserve(self, count: int) -> float:
        """Take ``count`` bytes now; return the seconds to wait before they may leave."""
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._tokens -= count
        self.reserved_bytes += count
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate


class PhoneBuckets:
    """One bucket per phone, shared by all of its AFC connections, rebuilt when the rate changes.

    Keyed by the phone object's identity (``PhoneState`` is a mutable dataclass and not
    hashable); an entry goes away with its phone.
    """

    def __init__(self) -> None:
        self._buckets: dict[int, TokenBucket] = {}

    def bucket(
        self, phone: object, rate: float | None, clock: Callable[[], float]
    ) -> TokenBucket | None:
        """The bucket for ``phone`` at ``rate`` bytes/s, or None when the phone is not throttled."""
        key = id(phone)
        if rate is None:
            self._buckets.pop(key, None)
            return None
        current = self._buckets.get(key)
        if current is not None and current.rate == float(rate):
            return current
        if current is None:
            weakref.finalize(phone, self._buckets.pop, key, None)
        fresh = TokenBucket(rate, clock)
        self._buckets[key] = fresh
        return fresh


#: The process-wide registry the AFC servers share.
PHONE_BUCKETS = PhoneBuckets()
