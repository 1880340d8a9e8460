"""Task groups (``executor.group()``): submit together, wait together,
results in submission order, fail-fast cancelling the not-yet-started
tasks, and an ExceptionGroup on leaving the ``with`` block. Both cores."""

from __future__ import annotations

from typing import Any

import pytest

from support import Blocker


def fail(message: str) -> None:
    raise ValueError(message)


def test_group_waits_for_all_its_tasks_and_gives_results_in_order(make_executor: Any) -> None:
    ex = make_executor(3)
    with ex.group() as g:
        for i in range(20):
            g.submit(pow, i, 2)
    assert all(f.done() for f in g.futures)
    assert g.results() == [i * i for i in range(20)]
    assert len(g) == 20
    assert g.errors() == []


def test_group_wait_returns_false_on_timeout_and_true_when_done(make_executor: Any) -> None:
    ex = make_executor(1)
    hold = Blocker()
    g = ex.group()
    g.submit(hold, True)
    assert g.wait(timeout=0.05) is False
    with pytest.raises(TimeoutError):
        g.results(timeout=0.05)
    hold.release()
    assert g.wait(timeout=10) is True
    assert g.results() == [True]


def test_leaving_the_block_raises_an_exception_group_of_every_failure(
    make_executor: Any,
) -> None:
    ex = make_executor(2)
    with pytest.raises(ExceptionGroup) as info:
        with ex.group() as g:
            g.submit(fail, "one")
            g.submit(abs, -1)
            g.submit(fail, "two")
    assert sorted(str(e) for e in info.value.exceptions) == ["one", "two"]
    assert "2 of 3 tasks" in str(info.value)
    assert g.futures[1].result() == 1  # without fail_fast every task ran


def test_base_exception_in_a_group_gives_a_base_exception_group(make_executor: Any) -> None:
    ex = make_executor(1)

    def leave() -> None:
        raise SystemExit(3)

    with pytest.raises(BaseExceptionGroup) as info:
        with ex.group() as g:
            g.submit(leave)
    assert isinstance(info.value.exceptions[0], SystemExit)


def test_results_raises_the_first_error_in_submission_order(make_executor: Any) -> None:
    ex = make_executor(2)
    g = ex.group()
    g.submit(abs, -1)
    g.submit(fail, "first")
    g.submit(fail, "second")
    with pytest.raises(ValueError, match="first"):
        g.results(timeout=10)


def test_fail_fast_cancels_the_tasks_that_have_not_started(make_executor: Any) -> None:
    ex = make_executor(1)
    ran: list[int] = []
    with pytest.raises(ExceptionGroup) as info:
        with ex.group(fail_fast=True) as g:
            hold = Blocker()
            g.submit(hold)  # holds the only worker
            g.submit(fail, "boom")
            later = [g.submit(ran.append, i) for i in range(5)]
            hold.release()
    assert [str(e) for e in info.value.exceptions] == ["boom"]
    assert ran == []
    assert all(f.cancelled() for f in later)
    with pytest.raises(RuntimeError, match="after one of its tasks failed"):
        g.submit(abs, 1)
    s = ex.stats()
    assert s.cancelled == 5
    assert s.submitted == s.completed + s.failed + s.cancelled + s.queued + s.running


def test_fail_fast_leaves_running_tasks_to_finish(make_executor: Any) -> None:
    ex = make_executor(2)
    blocker = Blocker()
    g = ex.group(fail_fast=True)
    running = g.submit(blocker, "finished")
    assert blocker.started.wait(10)
    failing = g.submit(fail, "boom")
    failing.exception(timeout=10)
    blocker.release()
    assert running.result(timeout=10) == "finished"


def test_exception_in_the_block_cancels_a_fail_fast_groups_queued_tasks(
    make_executor: Any,
) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    with pytest.raises(KeyError):
        with ex.group(fail_fast=True) as g:
            held = g.submit(blocker, True)  # holds the only worker
            assert blocker.started.wait(10)  # started: leaving the block can't cancel it
            queued = g.submit(abs, -1)
            # Leaving the block cancels `queued`, which frees the worker, so
            # the wait on exit can end.
            queued.add_done_callback(lambda f: blocker.release())
            raise KeyError("the caller's own error")
    assert queued.cancelled()
    assert held.result(timeout=10) is True


def test_group_cancel_cancels_only_not_started_tasks(make_executor: Any) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    g = ex.group()
    running = g.submit(blocker, True)
    assert blocker.started.wait(10)
    queued = [g.submit(abs, -i) for i in range(3)]
    assert g.cancel() == 3
    blocker.release()
    assert running.result(timeout=10) is True
    assert all(f.cancelled() for f in queued)
