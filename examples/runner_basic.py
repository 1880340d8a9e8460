"""Basic usage: a simple calculator (the Go tasker's examples/basic).

Two workers, each owning a ``CalculatorResource``; two tasks queued from
two threads; stats printed; the Runner stopped, which destroys both
resources. Exits non-zero if anything came out wrong.

    python examples/runner_basic.py
"""

from __future__ import annotations

import sys
import threading
import time

import conexe


def say(message: str) -> None:
    """print(), in one write, so lines from worker threads don't interleave."""
    sys.stdout.write(message + "\n")


class CalculatorResource:
    """A placeholder resource (in real code: a connection to a math service)."""

    created = 0
    destroyed = 0
    lock = threading.Lock()


def create_calc_resource() -> CalculatorResource:
    say("INFO: Creating CalculatorResource")
    with CalculatorResource.lock:
        CalculatorResource.created += 1
    return CalculatorResource()


def destroy_calc_resource(r: CalculatorResource) -> None:
    say("INFO: Destroying CalculatorResource")
    with CalculatorResource.lock:
        CalculatorResource.destroyed += 1


def main() -> int:
    print("--- Basic Usage: Simple Calculator ---")
    results: dict[str, int] = {}

    with conexe.Runner(create_calc_resource, destroy_calc_resource, worker_count=2) as runner:

        def add(r: CalculatorResource) -> int:
            time.sleep(0.05)  # simulate some work
            a, b = 10, 25
            say(f"Worker processing: {a} + {b}")
            return a + b

        def subtract(r: CalculatorResource) -> int:
            time.sleep(0.07)
            a, b = 100, 40
            say(f"Worker processing: {a} - {b}")
            return a - b

        def run(name: str, task: object) -> None:
            start = time.monotonic()
            results[name] = runner.queue_task(task)  # type: ignore[arg-type]
            say(f"{name} Result: {results[name]} (took {time.monotonic() - start:.3f}s)")

        print("Queuing a simple addition task and a subtraction task...")
        callers = [
            threading.Thread(target=run, args=("Task 1 (Addition)", add)),
            threading.Thread(target=run, args=("Task 2 (Subtraction)", subtract)),
        ]
        for t in callers:
            t.start()
        for t in callers:
            t.join()

        stats = runner.stats()
        print("\n--- Current Stats ---")
        print(f"Active Workers: {stats.active_workers}")
        print(f"Queued Tasks: {stats.queued_tasks}")
        print(f"Available Resources: {stats.available_resources}")
        print(f"Completed: {stats.completed}, run time p50: {stats.run_p50 * 1000:.1f} ms")
        print("----------------------")

    problems = []
    if results != {"Task 1 (Addition)": 35, "Task 2 (Subtraction)": 60}:
        problems.append(f"wrong results: {results}")
    if (stats.base_workers, stats.queued_tasks, stats.completed) != (2, 0, 2):
        problems.append(f"unexpected stats: {stats}")
    created, destroyed = CalculatorResource.created, CalculatorResource.destroyed
    # One resource per worker that started (both, unless the machine was so
    # slow that the tasks were done before the second worker began).
    if not 1 <= created <= 2 or destroyed != created:
        problems.append(f"{created} resources created, {destroyed} destroyed")
    for p in problems:
        print("FAILED:", p, file=sys.stderr)
    print("Basic usage example finished.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
