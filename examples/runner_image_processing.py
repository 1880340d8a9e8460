"""Intermediate usage: image processing with health checks and pooling
(the Go tasker's examples/intermediate).

Two workers own an ``ImageProcessor`` each, and one more waits in the pool
for ``run_task``. A ``"processor_crash"`` error means the processor is
broken: ``check_health`` says so, the worker is replaced (its processor
destroyed, a new one created) and the task retried, at most
``max_retries=1`` time. Exits non-zero if anything came out wrong.

    python examples/runner_image_processing.py
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from concurrent.futures import Future

import conexe


def say(message: str) -> None:
    """print(), in one write, so lines from worker threads don't interleave."""
    sys.stdout.write(message + "\n")


class ImageProcessor:
    """A connection to an image processing service (simulated)."""

    ids = itertools.count(1)

    def __init__(self) -> None:
        self.id = next(self.ids)
        self.open = True


created: list[ImageProcessor] = []
destroyed: list[ImageProcessor] = []


def create_image_processor() -> ImageProcessor:
    p = ImageProcessor()
    created.append(p)
    say(f"INFO: Creating ImageProcessor {p.id}")
    return p


def destroy_image_processor(p: ImageProcessor) -> None:
    say(f"INFO: Destroying ImageProcessor {p.id}")
    p.open = False
    destroyed.append(p)


def check_image_processor_health(err: BaseException) -> bool:
    """``processor_crash`` means the processor is broken; anything else is
    just this task's failure."""
    if str(err) == "processor_crash":
        say(f"WARN: Detected unhealthy error: {err}. Worker will be replaced.")
        return False
    return True


def main() -> int:
    say("--- Intermediate Usage: Image Processing ---")
    problems: list[str] = []
    runner = conexe.Runner(
        create_image_processor,
        destroy_image_processor,
        worker_count=2,
        check_health=check_image_processor_health,
        max_retries=1,
        resource_pool_size=1,
    )
    pooled_id = created[0].id  # the pool is filled before the workers start

    # 1. A normal resize.
    def resize(proc: ImageProcessor) -> str:
        say(f"Worker {proc.id} processing normal resize for imageA.jpg")
        time.sleep(0.1)
        return "imageA_resized.jpg"

    say("Queueing a normal image resize task...")
    resized = runner.submit(resize)

    # 2. A high-priority thumbnail, queued from another thread.
    def thumbnail(proc: ImageProcessor) -> str:
        say(f"Worker {proc.id} processing HIGH PRIORITY thumbnail for video.mp4")
        time.sleep(0.05)
        return "video_thumbnail.jpg"

    say("Queueing a high-priority thumbnail task...")
    thumb: list[str] = []
    t = threading.Thread(target=lambda: thumb.append(runner.queue_task_with_priority(thumbnail)))
    t.start()

    # 3. A problematic image that crashes the first processor it meets.
    crashed_on: list[int] = []

    def problematic(proc: ImageProcessor) -> str:
        say(f"Worker {proc.id} processing problematic image (might crash)")
        time.sleep(0.05)
        if not crashed_on:
            crashed_on.append(proc.id)
            raise RuntimeError("processor_crash")
        return f"problematic_image_processed.jpg (on processor {proc.id})"

    say("Queueing a task that crashes its processor once...")
    recovered: Future[str] = runner.submit(problematic)

    # 4. A corrupt image that crashes every processor: retried once, then
    #    MaxRetriesExceeded, chained to the last crash.
    def corrupt(proc: ImageProcessor) -> str:
        say(f"Worker {proc.id} processing corrupt image")
        raise RuntimeError("processor_crash")

    say("Queueing a task that crashes every processor...")
    hopeless: Future[str] = runner.submit(corrupt)

    # 5. An immediate preview, in this thread, on the pooled processor.
    def preview(proc: ImageProcessor) -> tuple[str, int]:
        say(f"IMMEDIATE Task processing fast preview with processor {proc.id}")
        time.sleep(0.02)
        return "fast_preview.jpg", proc.id

    say("\nRunning an immediate task (using resource pool or temporary resource)...")
    immediate, used_id = runner.run_task(preview)
    say(f"Immediate Task Completed: {immediate}")

    t.join()
    say(f"Normal Resize Completed: {resized.result()}")
    say(f"Priority Thumbnail Completed: {thumb[0]}")
    say(f"Problematic Image Task Completed: {recovered.result()}")
    try:
        hopeless.result()
        problems.append("the corrupt image did not fail")
    except conexe.MaxRetriesExceeded as exc:
        say(f"Corrupt Image Task Failed: {exc} (cause: {exc.__cause__!r})")
        if "max retries exceeded" not in str(exc) or "processor_crash" not in str(exc.__cause__):
            problems.append(f"wrong error for the corrupt image: {exc!r}")

    # Replacements happen in the background: wait (bounded) for both workers.
    deadline = time.monotonic() + 30
    while runner.stats().active_workers < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = runner.stats()
    say("\n--- Current Stats ---")
    say(f"Base Workers: {stats.base_workers}")
    say(f"Active Workers: {stats.active_workers}")
    say(f"Queued Tasks: {stats.queued_tasks}")
    say(f"Priority Tasks: {stats.priority_tasks}")
    say(f"Available Resources: {stats.available_resources}")
    say(f"Retried: {stats.retried}, Workers replaced: {stats.replaced}")
    say("----------------------")
    runner.stop()

    if used_id != pooled_id:
        problems.append(f"run_task used processor {used_id}, not the pooled {pooled_id}")
    if (resized.result(), thumb) != ("imageA_resized.jpg", ["video_thumbnail.jpg"]):
        problems.append("the resize or the thumbnail went wrong")
    if f"processor {crashed_on[0]})" in recovered.result():
        problems.append("the problematic image was retried on the processor it crashed")
    # 1 retry for the problematic image, 1 for the corrupt one; 3 crashes.
    if (stats.retried, stats.replaced, stats.active_workers) != (2, 3, 2):
        problems.append(f"unexpected stats: {stats}")
    if stats.available_resources != 1:
        problems.append("the pooled processor did not go back to the pool")
    if sorted(p.id for p in destroyed) != sorted(p.id for p in created):
        problems.append(f"{len(created)} processors created, {len(destroyed)} destroyed")
    for p in problems:
        say(f"FAILED: {p}")
    say("Intermediate usage example finished.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
