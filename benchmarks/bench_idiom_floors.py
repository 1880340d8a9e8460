"""What the stdlib's and asyncio's own waiting code costs per future on
conexe futures that are already done (C core): the floor under the
``as_completed`` and ``wrap_future`` rows of ``python -m
conexe bench``, with no task left to run. The same tasks' ``result()`` loop
(submitting and running them too) is timed alongside: "within 2x of the
``result()`` loop" needs each floor well above half that rate::

    $ python benchmarks/bench_idiom_floors.py
    result() loop, 50,000 no-op tasks on 4 workers: 1,456,950/s
    as_completed over 50,000 done futures: 1,357,112/s
    asyncio.gather of wrap_future over 50,000 done futures: 424,089/s
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import statistics
import time

import conexe

N = 50_000


EXECUTOR = conexe.ConcurrentExecutor(4)


def noop() -> None:
    pass


def done_futures(n: int) -> list[cf.Future[None]]:
    futs = [EXECUTOR.submit(noop) for _ in range(n)]
    for f in futs:
        f.result()
    return futs


def result_loop() -> float:
    t0 = time.perf_counter()
    for f in [EXECUTOR.submit(noop) for _ in range(N)]:
        f.result()
    return time.perf_counter() - t0


def as_completed_floor() -> float:
    futs = done_futures(N)
    t0 = time.perf_counter()
    for f in cf.as_completed(futs):
        f.result()
    return time.perf_counter() - t0


def wrap_future_floor() -> float:
    futs = done_futures(N)

    async def gather() -> None:
        await asyncio.gather(*[asyncio.wrap_future(f) for f in futs])

    t0 = time.perf_counter()
    asyncio.run(gather())
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for name, floor in (
        ("result() loop, 50,000 no-op tasks on 4 workers", result_loop),
        ("as_completed over 50,000 done futures", as_completed_floor),
        ("asyncio.gather of wrap_future over 50,000 done futures", wrap_future_floor),
    ):
        seconds = statistics.median(floor() for _ in range(args.repeat))
        print(f"{name}: {N / seconds:,.0f}/s")
    EXECUTOR.shutdown()


if __name__ == "__main__":
    main()
