"""When does a Dask cluster beat the local executor?

Starts a ``LocalCluster`` of 2 worker processes (1 thread each) and measures:

1. the per-task overhead of ``conexe.dask.ConcurrentExecutor`` on no-op
   tasks, beside raw ``client.submit`` + ``gather`` and the local
   ``conexe.ConcurrentExecutor``;
2. the step time of one key on ``conexe.dask.KeyedExecutor`` (a client
   round trip between two tasks of a key);
3. for CPU-bound pure-Python tasks (a loop of N iterations), the wall time
   of a batch on the local executor (2 threads, bound by the GIL) and on
   the 2 Dask worker processes, and the smallest N at which Dask wins.

    python benchmarks/bench_dask.py            # about a minute on 2 cores
    python benchmarks/bench_dask.py --quick    # fewer sizes and repeats
    python benchmarks/bench_dask.py --cost     # conexe.dask's cost over raw Dask

``--cost`` times, on the same cluster in the same run, N tasks (no-op, then
1 ms of sleep) submitted then awaited through raw ``client.submit`` +
``gather``, ``conexe.dask.ConcurrentExecutor`` and
``conexe.dask.KeyedExecutor`` (N distinct keys, and 8 keys of N/8 tasks
each, with the key's order kept on the client and on the cluster), rounds
alternated, ``--repeat`` of them: the ratio to raw Dask (of the best rounds,
and of the medians) is the cost conexe adds (the target: at most 1.2x).
Beside them, raw Dask with a done-callback per future (what learning of
each task's end costs Dask), and raw Dask keeping 8 keys' order itself:
chained on the scheduler (each task a dependency of its key's previous
one), and through the client (a key's next task submitted from the
previous one's done-callback, the least a client-side chain pays).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))


def noop() -> None:
    return None


def spin(n: int) -> int:
    """Pure-Python CPU work: n loop iterations (holds the GIL)."""
    total = 0
    for i in range(n):
        total += i ^ (i >> 3)
    return total


def best(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def overhead(client, local, dask_ex, n: int, repeats: int) -> None:  # type: ignore[no-untyped-def]
    def raw() -> None:
        client.gather([client.submit(noop, pure=False) for _ in range(n)])

    def via(ex) -> None:  # type: ignore[no-untyped-def]
        cf.wait([ex.submit(noop) for _ in range(n)])

    rows = [
        ("local conexe.ConcurrentExecutor", best(lambda: via(local), repeats)),
        ("raw client.submit + gather", best(raw, repeats)),
        ("conexe.dask.ConcurrentExecutor", best(lambda: via(dask_ex), repeats)),
    ]
    print(f"\nPer-task overhead, {n} no-op tasks submitted then awaited (best of {repeats}):")
    print(f"  {'executor':34} {'ms/task':>9} {'tasks/s':>9}")
    for name, t in rows:
        print(f"  {name:34} {t / n * 1e3:9.3f} {n / t:9.0f}")


def sleep_1ms() -> None:
    time.sleep(0.001)


def after(_previous: object, fn):  # type: ignore[no-untyped-def]
    """A task of a chain on the scheduler: runs once its key's previous one ended."""
    return fn()


def chained_on_scheduler(client, fn, n: int, keys: int) -> None:  # type: ignore[no-untyped-def]
    """Raw Dask keeping per-key order: each task a dependency of its key's next."""
    last: dict[int, object] = {}
    futures = []
    for i in range(n):
        k = i % keys
        f = (
            client.submit(after, last[k], fn, pure=False)
            if k in last
            else client.submit(fn, pure=False)
        )
        last[k] = f
        futures.append(f)
    client.gather(futures)


def chained_through_client(client, fn, n: int, keys: int) -> None:  # type: ignore[no-untyped-def]
    """Raw Dask keeping per-key order from the client: a key's next task is
    submitted from its previous one's done-callback (no result fetched):
    the least any chain kept on the client pays."""
    import threading

    done = threading.Event()
    lock = threading.Lock()
    left = [n]
    futures = []

    def step(remaining: int) -> None:
        f = client.submit(fn, pure=False)
        futures.append(f)

        def ended(_: object) -> None:
            with lock:
                left[0] -= 1
                if not left[0]:
                    done.set()
            if remaining > 1:
                step(remaining - 1)

        f.add_done_callback(ended)

    for k in range(keys):
        step(n // keys + (k < n % keys))
    done.wait()
    client.gather(futures)


def with_done_callbacks(client, fn, n: int) -> None:  # type: ignore[no-untyped-def]
    """Raw Dask telling the client of each task's end, as any executor that
    completes one future per task must: a done-callback per future."""
    import threading

    done = threading.Event()
    lock = threading.Lock()
    left = [n]

    def ended(_: object) -> None:
        with lock:
            left[0] -= 1
            if not left[0]:
                done.set()

    futures = [client.submit(fn, pure=False) for _ in range(n)]
    for f in futures:
        f.add_done_callback(ended)
    done.wait()
    client.gather(futures)


def cost(client, n: int, repeats: int) -> None:  # type: ignore[no-untyped-def]
    """conexe.dask's cost per task over raw Dask, no-op and 1 ms tasks."""
    from conexe.dask import ConcurrentExecutor, KeyedExecutor

    with (
        ConcurrentExecutor(client) as ex,
        KeyedExecutor(client) as keyed,
        KeyedExecutor(client, chain="cluster") as on_cluster,
    ):
        ways = {
            "raw client.submit + gather": lambda fn: client.gather(
                [client.submit(fn, pure=False) for _ in range(n)]
            ),
            "raw Dask, a done-callback per future": lambda fn: with_done_callbacks(client, fn, n),
            "raw Dask, 8 keys chained on the scheduler": lambda fn: chained_on_scheduler(
                client, fn, n, 8
            ),
            "raw Dask, 8 keys chained through the client": lambda fn: chained_through_client(
                client, fn, n, 8
            ),
            "conexe.dask.ConcurrentExecutor": lambda fn: cf.wait([ex.submit(fn) for _ in range(n)]),
            f"conexe.dask.KeyedExecutor, {n} keys": lambda fn: cf.wait(
                [keyed.submit(i, fn) for i in range(n)]
            ),
            "conexe.dask.KeyedExecutor, 8 keys": lambda fn: cf.wait(
                [keyed.submit(i % 8, fn) for i in range(n)]
            ),
            "KeyedExecutor(chain='cluster'), 8 keys": lambda fn: cf.wait(
                [on_cluster.submit(i % 8, fn) for i in range(n)]
            ),
        }
        for fn in (noop, sleep_1ms):
            runs: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(repeats):  # rounds alternate the ways
                for name, go in ways.items():
                    start = time.perf_counter()
                    go(fn)
                    runs[name].append(time.perf_counter() - start)
            raw = runs["raw client.submit + gather"]
            print(f"\n{n} {fn.__name__} tasks, submitted then awaited, {repeats} rounds:")
            print(f"  {'way':44} {'ms/task best':>12} {'x raw best':>10} {'x raw median':>12}")
            for name, times in runs.items():
                t = min(times)
                median = statistics.median(times) / statistics.median(raw)
                print(f"  {name:44} {t / n * 1e3:12.3f} {t / min(raw):10.2f} {median:12.2f}")


def keyed_step(client, n: int) -> None:  # type: ignore[no-untyped-def]
    from conexe.dask import KeyedExecutor

    with KeyedExecutor(client) as ex:
        ex.submit("warm", noop).result()
        start = time.perf_counter()
        futures = [ex.submit("one-key", noop) for _ in range(n)]
        cf.wait(futures)
        one = time.perf_counter() - start
        start = time.perf_counter()
        futures = [ex.submit(i, noop) for i in range(n)]
        cf.wait(futures)
        many = time.perf_counter() - start
    print(f"\nKeyedExecutor on Dask, {n} no-op tasks:")
    print(f"  one key (strictly one after another): {one / n * 1e3:7.3f} ms/task")
    print(f"  {n} keys (in parallel):               {many / n * 1e3:7.3f} ms/task")


def crossover(local, dask_ex, sizes: list[int], tasks: int, repeats: int) -> None:  # type: ignore[no-untyped-def]
    print(f"\nCPU-bound pure Python: {tasks} tasks of spin(N), best of {repeats}")
    print(
        f"  {'N':>9} {'ms/task 1 core':>14} {'local 2 thr s':>13} {'dask 2 proc s':>13} "
        f"{'dask/local':>10}"
    )
    found = None
    for n in sizes:
        single = best(lambda: spin(n), 1)  # noqa: B023
        t_local = best(lambda: cf.wait([local.submit(spin, n) for _ in range(tasks)]), repeats)  # noqa: B023
        t_dask = best(lambda: cf.wait([dask_ex.submit(spin, n) for _ in range(tasks)]), repeats)  # noqa: B023
        ratio = t_dask / t_local
        print(f"  {n:9d} {single * 1e3:14.3f} {t_local:13.4f} {t_dask:13.4f} {ratio:10.2f}")
        if found is None and ratio < 1.0:
            found = (n, single)
    if found is None:
        print("  crossover: Dask never won at these sizes")
    else:
        print(
            f"  crossover: Dask wins from N = {found[0]} "
            f"(about {found[1] * 1e3:.2f} ms of pure-Python work per task)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--cost", action="store_true", help="only conexe.dask's cost over raw Dask")
    parser.add_argument("--tasks", type=int, default=400, help="tasks per --cost round")
    parser.add_argument("--repeat", type=int, default=5, help="--cost rounds")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    import conexe.dask

    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    client = Client(cluster)
    print(
        f"conexe core: {conexe.IMPLEMENTATION}; cpus: {os.cpu_count()}; "
        f"LocalCluster(2 processes) up in {time.perf_counter() - start:.2f} s"
    )
    if args.cost:
        client.gather([client.submit(noop, pure=False) for _ in range(20)])  # warm the workers
        cost(client, args.tasks, args.repeat)
        client.close()
        cluster.close()
        return
    repeats = 2 if args.quick else 3
    sizes = (
        [1_000, 10_000, 100_000, 1_000_000]
        if args.quick
        else [300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000]
    )
    with conexe.ConcurrentExecutor(2) as local, conexe.dask.ConcurrentExecutor(client) as dask_ex:
        cf.wait([dask_ex.submit(noop) for _ in range(20)])  # warm the workers
        overhead(client, local, dask_ex, 200 if args.quick else 500, repeats)
        keyed_step(client, 100 if args.quick else 200)
        crossover(local, dask_ex, sizes, 16, repeats)
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
