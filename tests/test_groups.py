"""Task groups (``executor.group()``): submit together, wait together,
results in submission order, an ExceptionGroup on leaving the ``with``
block, and the policies that end a group (fail-fast, first n successes, a
timeout), cancelling the tasks that have not started. Both cores."""

from __future__ import annotations

import time
from concurrent.futures import CancelledError
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
    after = g.submit(abs, 1)  # the group is over: cancelled, never queued
    assert after.cancelled() and after.done()
    assert g.futures[-1] is after
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


# -- the policies that end a group ----------------------------------------------


def test_a_failure_while_still_submitting_keeps_the_error_and_the_loop_goes_on(
    make_executor: Any, wait_until: Any
) -> None:
    # The README's loop, with its 4th fetch failing while the caller still
    # submits: no submit raises; the block raises the real error.
    ex = make_executor(2)

    def fetch(i: int) -> int:
        if i == 3:
            raise ValueError("fetch 3 failed")
        return i

    with pytest.raises(ExceptionGroup) as info:
        with ex.group(fail_fast=True) as g:
            for i in range(10):
                fut = g.submit(fetch, i)
                if i == 3:
                    assert isinstance(fut.exception(timeout=10), ValueError)
                    # Its done-callback (which ends the group) may still be
                    # on its way when exception() returns.
                    wait_until(lambda: g.ended, what="the group ended")
    assert [repr(e) for e in info.value.exceptions] == ["ValueError('fetch 3 failed')"]
    assert info.value.exceptions[0].__traceback__ is not None
    assert len(g) == 10
    assert all(f.cancelled() for f in g.futures[4:])


def test_first_returns_once_enough_tasks_succeeded_and_cancels_the_queued(
    make_executor: Any, wait_until: Any
) -> None:
    ex = make_executor(2)
    slow = Blocker()
    with ex.group(first=1) as g:
        running = g.submit(slow, "slow")
        assert slow.started.wait(10)
        quick = g.submit(pow, 2, 5)
        quick.result(timeout=10)
        wait_until(lambda: g.ended, what="the group ended")
        queued = g.submit(abs, -1)  # the group is over: cancelled, never queued
    # Left without waiting for the slow task, which is still running.
    assert not running.done()
    assert g.successes() == [32]
    assert queued.cancelled()
    slow.release()
    assert running.result(timeout=10) == "slow"
    # What finished after, in order (its done-callback may still be on its way).
    wait_until(lambda: g.successes() == [32, "slow"], what="the late success recorded")


def test_first_n_counts_successes_and_skips_failures(make_executor: Any) -> None:
    ex = make_executor(1)
    with ex.group(first=2) as g:
        g.submit(fail, "one")
        g.submit(pow, 2, 2)
        g.submit(fail, "two")
        g.submit(pow, 3, 2)
        g.submit(pow, 4, 2)  # after the second success: cancelled or not needed
    assert g.successes()[:2] == [4, 9]
    assert g.ended
    assert sorted(str(e) for e in g.errors()) == ["one", "two"]


def test_first_n_raises_the_failures_when_too_few_succeed(make_executor: Any) -> None:
    ex = make_executor(2)
    with pytest.raises(ExceptionGroup) as info:
        with ex.group(first=2) as g:
            g.submit(fail, "one")
            g.submit(pow, 2, 2)
            g.submit(fail, "two")
    assert sorted(str(e) for e in info.value.exceptions) == ["one", "two"]
    assert "needed 2 successes and got 1 of 3 tasks" in str(info.value)
    assert g.successes() == [4]


def test_first_n_with_nothing_failed_nor_enough_done_raises_cancelled(
    make_executor: Any,
) -> None:
    ex = make_executor(1)
    hold = Blocker()
    ex.submit(hold)  # not the group's: holds the only worker
    assert hold.started.wait(10)
    with pytest.raises(CancelledError, match="needed 1 successes and got 0 of 2 tasks"):
        with ex.group(first=1) as g:
            g.submit(abs, -1)
            g.submit(abs, -2)
            assert g.cancel() == 2  # neither ran: no success, no failure
    hold.release()


def test_timeout_cancels_what_is_left_and_keeps_what_finished(
    make_executor: Any, wait_until: Any
) -> None:
    ex = make_executor(1)
    hold = Blocker()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"timeout \(0.2 s\) passed with 1 of 3 tasks done"):
        with ex.group(timeout=0.2) as g:
            g.submit(pow, 2, 3)
            wait_until(lambda: g.successes() == [8], what="the first task recorded")
            running = g.submit(hold, "late")
            queued = g.submit(abs, -1)
    assert time.monotonic() - started < 10
    assert g.successes() == [8]
    assert queued.cancelled()
    assert not running.cancelled()
    hold.release()
    assert running.result(timeout=10) == "late"


def test_a_group_that_settles_in_time_ignores_its_timeout(make_executor: Any) -> None:
    ex = make_executor(2)
    with ex.group(timeout=30) as g:
        for i in range(5):
            g.submit(pow, i, 2)
    assert g.results() == [0, 1, 4, 9, 16]


def test_nested_groups_and_a_group_inside_a_task(make_executor: Any) -> None:
    ex = make_executor(4)

    def squares(n: int) -> list[int]:
        with ex.group() as inner:
            for i in range(n):
                inner.submit(pow, i, 2)
        return inner.results()

    with ex.group() as outer:
        with ex.group(fail_fast=True) as inner:
            inner.submit(abs, -7)
        outer.submit(squares, 3)
        outer.submit(squares, 2)
    assert inner.results() == [7]
    assert outer.results() == [[0, 1, 4], [0, 1]]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"first": 0}, ValueError, "first must be >= 1"),
        ({"first": True}, TypeError, "first must be an int"),
        ({"first": 1.5}, TypeError, "first must be an int"),
        ({"timeout": -1}, ValueError, "timeout must be >= 0"),
        ({"timeout": "1"}, TypeError, "timeout must be a number"),
        ({"fail_fast": True, "first": 1}, ValueError, "exclusive"),
    ],
)
def test_group_options_are_checked_at_the_call(
    make_executor: Any, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    ex = make_executor(1)
    with pytest.raises(error, match=message):
        ex.group(**options)
