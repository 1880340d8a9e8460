"""The floor under a synchronous round trip on this machine: two threads
passing a pair of ``threading.Lock``s back and forth, no executor at all.

    python benchmarks/bench_handoff.py            # p50 of 3,000 round trips, 3 times

A ``submit(noop).result()`` on a pool whose worker is parked is the same two
wake-ups (the worker's, then the caller's), so no executor's round trip can
be much below this figure; read the bench's round-trip rows against it.
"""

from __future__ import annotations

import statistics
import threading
import time


def round_trip_p50_us(n: int = 3000) -> float:
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire()
    pong.acquire()

    def partner() -> None:
        for _ in range(n):
            ping.acquire()
            pong.release()

    t = threading.Thread(target=partner)
    t.start()
    lat = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        ping.release()
        pong.acquire()
        lat.append(time.perf_counter_ns() - t0)
    t.join()
    return statistics.median(lat) / 1000


if __name__ == "__main__":
    for _ in range(3):
        print(f"bare lock hand-off round trip, p50: {round_trip_p50_us():.1f} us")
