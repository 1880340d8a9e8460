"""``ConcurrentExecutor.map_unordered``: results in the order the calls
end, a read-ahead bounded by ``buffersize``, an item's exception raised
when reached, the timeout, and nothing left running when the iterator is
closed. Both cores."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from support import Blocker


def test_a_slow_item_holds_back_nothing_behind_it(make_executor: Any) -> None:
    ex = make_executor(2)
    gate = threading.Event()

    def work(i: int) -> int:
        if i == 0:
            assert gate.wait(30)
        return i

    results = ex.map_unordered(work, range(5))
    fast = [next(results) for _ in range(4)]  # item 0 still blocked
    assert sorted(fast) == [1, 2, 3, 4]
    gate.set()
    assert list(results) == [0]


def test_every_item_comes_once_with_several_iterables(make_executor: Any) -> None:
    ex = make_executor(3)
    out = list(ex.map_unordered(pow, range(50), itertools.repeat(2), buffersize=7))
    assert sorted(out) == [i * i for i in range(50)]


def test_the_read_ahead_is_bounded_by_buffersize(make_executor: Any) -> None:
    ex = make_executor(2)
    read: list[int] = []

    def endless() -> Iterator[int]:
        for i in itertools.count():
            read.append(i)
            yield i

    results = ex.map_unordered(abs, endless(), buffersize=4)
    assert len(read) == 4  # read at the call
    for taken in range(1, 20):
        next(results)
        assert len(read) <= taken + 4
    results.close()


def test_an_items_exception_is_raised_when_reached_and_ends_the_map(
    make_executor: Any,
) -> None:
    ex = make_executor(2)
    gate = threading.Event()

    def work(i: int) -> int:
        if i == 0:
            raise ValueError("item 0")
        assert gate.wait(30)
        return i

    results = ex.map_unordered(work, range(6), buffersize=4)
    with pytest.raises(ValueError, match="item 0"):
        next(results)
    gate.set()
    with pytest.raises(StopIteration):  # the map has ended
        next(results)
    ex.shutdown(wait=True)
    s = ex.stats()
    assert s.failed == 1
    assert s.cancelled >= 1  # what was still queued (item 1 runs on the other worker)
    assert s.submitted == 4 == s.completed + s.failed + s.cancelled


def test_nothing_comes_after_the_error_not_even_what_had_ended(
    make_executor: Any, wait_until: Any
) -> None:
    ex = make_executor(1)  # one worker: item 0 ends first, then 1 and 2

    def work(i: int) -> int:
        if i == 0:
            raise ValueError("item 0")
        return i

    results = ex.map_unordered(work, range(3), buffersize=3)
    wait_until(lambda: ex.stats().completed == 2, what="items 1 and 2 ended")
    with pytest.raises(ValueError, match="item 0"):
        next(results)
    assert list(results) == []  # ended: what ended after it is not handed out


def test_timeout_counts_from_the_call(make_executor: Any) -> None:
    ex = make_executor(1)
    hold = Blocker()
    results = ex.map_unordered(hold, [1], timeout=0.05)
    with pytest.raises(TimeoutError):
        next(results)
    hold.release()


def test_closing_the_iterator_cancels_what_has_not_started(make_executor: Any) -> None:
    ex = make_executor(1)
    hold = Blocker()
    ran: list[int] = []

    def work(i: int) -> int:
        if i == 0:
            hold(i)
        ran.append(i)
        return i

    results = ex.map_unordered(work, range(10), buffersize=5)
    assert hold.started.wait(10)
    results.close()
    hold.release()
    ex.shutdown(wait=True)
    assert ran == [0]
    assert ex.stats().cancelled == 4


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"buffersize": 0}, ValueError), ({"buffersize": 1.5}, TypeError)],
)
def test_arguments_are_checked_at_the_call(
    make_executor: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    ex = make_executor(1)
    with pytest.raises(error):
        ex.map_unordered(abs, [1], **kwargs)
    with pytest.raises(TypeError):
        ex.map_unordered(42, [1])
