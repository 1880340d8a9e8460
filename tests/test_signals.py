"""``conexe._signals``: main-thread waits cut into slices a Ctrl-C interrupts."""

from __future__ import annotations

import threading

import pytest

from conexe._signals import SIGNAL_SLICE, wait_interruptibly


class SpentNotifyCondition:
    """A Condition whose every wait ends as if its timeout ran out just as
    a notify picked it: ``threading.Condition.wait`` then returns False
    although the waiter was notified (the notify is spent on it)."""

    def __init__(self) -> None:
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return False


@pytest.mark.timeout(10)
def test_a_main_thread_wait_returns_after_one_slice_so_the_caller_rechecks() -> None:
    # Waiting slice after slice until notified would never return here: the
    # one notify there was is spent. Returning lets the caller see its state.
    assert threading.current_thread() is threading.main_thread()
    cond = SpentNotifyCondition()
    assert wait_interruptibly(cond, None) is True  # type: ignore[arg-type]
    assert cond.waits == [SIGNAL_SLICE]
    assert wait_interruptibly(cond, 5.0) is True  # type: ignore[arg-type]
    assert cond.waits == [SIGNAL_SLICE, SIGNAL_SLICE]


def test_a_wait_shorter_than_a_slice_is_one_wait_and_reports_the_timeout() -> None:
    cond = SpentNotifyCondition()
    assert wait_interruptibly(cond, SIGNAL_SLICE / 2) is False  # type: ignore[arg-type]
    assert cond.waits == [SIGNAL_SLICE / 2]


def test_a_real_condition_times_out() -> None:
    c = threading.Condition()
    with c:
        assert wait_interruptibly(c, 0.12) is True  # a slice passed; time is left
        assert wait_interruptibly(c, 0.01) is False
