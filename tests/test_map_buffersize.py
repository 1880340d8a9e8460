"""``Executor.map(..., buffersize=)``, Python 3.14's, on every Python.

The first block follows CPython 3.14's own ``test_map_buffersize_*`` tests
(Lib/test/test_concurrent_futures/executor.py) case for case; the rest pins
down what they leave open: exactly how many items are read and when,
``timeout`` and ``chunksize`` together with it, and that a map holds its
executor only weakly. Every test runs on both cores.
"""

from __future__ import annotations

import gc
import itertools
import threading
import weakref
from collections.abc import Iterator
from operator import add
from typing import Any

import pytest

from support import Blocker, wait_until


class CountingIterator:
    """An iterator that counts how many items were taken from it."""

    def __init__(self, items: Any) -> None:
        self._items = iter(items)
        self.taken = 0

    def __iter__(self) -> CountingIterator:
        return self

    def __next__(self) -> Any:
        item = next(self._items)
        self.taken += 1
        return item


# -- CPython 3.14's cases -----------------------------------------------------------


@pytest.mark.parametrize("buffersize", ["foo", 2.0])
def test_map_buffersize_type_validation(make_executor: Any, buffersize: Any) -> None:
    ex = make_executor(2)
    with pytest.raises(TypeError, match="^buffersize must be an integer or None$"):
        ex.map(str, range(4), buffersize=buffersize)


@pytest.mark.parametrize("buffersize", [0, -1])
def test_map_buffersize_value_validation(make_executor: Any, buffersize: int) -> None:
    ex = make_executor(2)
    with pytest.raises(ValueError, match=r"^buffersize must be None or > 0$"):
        ex.map(str, range(4), buffersize=buffersize)


@pytest.mark.parametrize("buffersize", [1, 2, 4, 8])
def test_map_buffersize(make_executor: Any, buffersize: int) -> None:
    ex = make_executor(2)
    assert list(ex.map(str, range(4), buffersize=buffersize)) == ["0", "1", "2", "3"]


@pytest.mark.parametrize("buffersize", [1, 2, 4, 8])
def test_map_buffersize_on_multiple_iterables(make_executor: Any, buffersize: int) -> None:
    ex = make_executor(2)
    ints = range(4)
    assert list(ex.map(add, ints, ints, buffersize=buffersize)) == [0, 2, 4, 6]


def test_map_buffersize_on_infinite_iterable(make_executor: Any) -> None:
    res = make_executor(2).map(str, itertools.count(), buffersize=2)
    assert [next(res, None) for _ in range(3)] == ["0", "1", "2"]


def test_map_buffersize_on_multiple_infinite_iterables(make_executor: Any) -> None:
    res = make_executor(2).map(add, itertools.count(), itertools.count(), buffersize=2)
    assert [next(res, None) for _ in range(3)] == [0, 2, 4]


def test_map_buffersize_on_empty_iterable(make_executor: Any) -> None:
    assert next(make_executor(2).map(str, [], buffersize=2), None) is None


def test_map_buffersize_without_iterable(make_executor: Any) -> None:
    assert next(make_executor(2).map(str, buffersize=2), None) is None


def test_map_buffersize_when_buffer_is_full(make_executor: Any) -> None:
    ex = make_executor(2)
    ints = iter(range(4))
    ex.map(str, ints, buffersize=2)
    ex.shutdown(wait=True)  # wait for tasks to complete
    assert next(ints) == 2, "should have fetched only `buffersize` elements from `ints`"


# -- exactly how much is read, and when ---------------------------------------------------


@pytest.mark.parametrize("buffersize", [1, 3, 100])
def test_buffersize_items_are_read_at_the_call_and_one_more_per_next(
    make_executor: Any, buffersize: int
) -> None:
    ex = make_executor(2)
    source = CountingIterator(range(1000))
    results = ex.map(abs, source, buffersize=buffersize)
    assert source.taken == buffersize
    for n in range(1, 20):
        assert next(results) == n - 1
        assert source.taken == buffersize + n


def test_the_next_item_is_read_before_next_waits_for_its_result(make_executor: Any) -> None:
    # 3.14 reads (and submits) one more item before it waits: a slow head
    # result does not hold the read-ahead back.
    ex = make_executor(2)
    blocker = Blocker()
    source = CountingIterator(itertools.chain([None], itertools.repeat(0)))
    results = ex.map(lambda x: blocker() if x is None else x, source, buffersize=2)
    assert source.taken == 2
    assert blocker.started.wait(10)
    taken_before = source.taken
    waiter = threading.Thread(target=next, args=(results,))
    waiter.start()
    wait_until(lambda: source.taken > taken_before, what="next() reading one more item")
    assert source.taken == taken_before + 1  # read while the head still runs
    blocker.release()
    waiter.join(10)
    assert not waiter.is_alive()


def test_a_short_input_is_read_to_its_end_and_every_item_runs(make_executor: Any) -> None:
    ex = make_executor(3)
    ran: list[int] = []
    lock = threading.Lock()

    def record(i: int) -> int:
        with lock:
            ran.append(i)
        return -i

    assert list(ex.map(record, range(7), buffersize=100)) == [-i for i in range(7)]
    assert sorted(ran) == list(range(7))


# -- with chunksize, with timeout, on errors --------------------------------------------------


@pytest.mark.parametrize(("buffersize", "chunksize"), [(8, 3), (8, 8), (3, 10), (1, 4)])
def test_chunksize_reads_a_chunk_at_a_time_never_more_than_buffersize_ahead(
    make_executor: Any, buffersize: int, chunksize: int
) -> None:
    ex = make_executor(2)
    source = CountingIterator(range(200))
    results = ex.map(abs, source, buffersize=buffersize, chunksize=chunksize)
    assert source.taken == buffersize
    step = min(buffersize, chunksize)
    for n in range(1, 60):
        assert next(results) == n - 1
        ahead = source.taken - n
        assert buffersize - step < ahead <= buffersize, (n, source.taken)
    assert list(results) == list(range(59, 200))


def test_timeout_counts_from_the_call_and_cancels_the_rest(make_executor: Any) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    ran: list[int] = []
    # Item 0 returns at once, item 1 holds the only worker past the timeout.
    results = ex.map(
        lambda x: blocker() if x == 1 else ran.append(x), [0, 1, 2, 3], timeout=1.5, buffersize=3
    )
    assert next(results) is None
    with pytest.raises(TimeoutError):
        next(results)
    blocker.release()
    ex.shutdown(wait=True)
    # After the timeout nothing more is read, and what was queued is cancelled.
    assert ran == [0]
    with pytest.raises(StopIteration):
        next(results)


def test_an_items_exception_is_raised_in_order_and_ends_the_iteration(make_executor: Any) -> None:
    ex = make_executor(2)
    results = ex.map(divmod, [5, 5, 5, 5], [2, 3, 0, 5], buffersize=2)
    assert next(results) == (2, 1)
    assert next(results) == (1, 2)
    with pytest.raises(ZeroDivisionError):
        next(results)
    with pytest.raises(StopIteration):
        next(results)


def test_closing_the_iterator_cancels_what_has_not_started(make_executor: Any) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    ran: list[int] = []
    results = ex.map(lambda x: blocker() if x == 1 else ran.append(x), range(10), buffersize=4)
    assert next(results) is None  # item 0; item 4 is read
    assert blocker.started.wait(10)  # item 1 holds the only worker
    results.close()
    blocker.release()
    ex.shutdown(wait=True)
    assert ran == [0]
    assert ex.stats().cancelled == 3  # items 2, 3 and 4


def test_results_are_not_kept_by_the_iterator(make_executor: Any) -> None:
    class Obj:
        pass

    for obj in make_executor(2).map(lambda _: Obj(), range(10), buffersize=3):
        ref = weakref.ref(obj)
        del obj
        gc.collect()
        assert ref() is None


# -- the executor, held weakly ------------------------------------------------------------


def test_the_map_does_not_keep_its_executor_alive_and_submits_nothing_after(Executor: Any) -> None:
    ex = Executor(2)
    source = CountingIterator(itertools.count())
    results = ex.map(abs, source, buffersize=3)
    ref = weakref.ref(ex)
    del ex
    gc.collect()
    assert ref() is None
    # What was submitted before the executor went still arrives; nothing more
    # is read from the input.
    assert list(results) == [0, 1, 2]
    assert source.taken == 3


def test_after_shutdown_the_next_submission_raises_like_3_14(make_executor: Any) -> None:
    ex = make_executor(2)
    results = ex.map(abs, range(10), buffersize=2)
    ex.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        next(results)


def _endless() -> Iterator[int]:
    yield from itertools.count()


@pytest.mark.parametrize("buffersize", [4, 50])
def test_a_bounded_queue_is_never_overflowed_by_the_map_itself(
    make_executor: Any, buffersize: int
) -> None:
    # on_full="raise": one submission past the queue's bound would raise.
    ex = make_executor(1, max_queue_size=4)
    source = CountingIterator(_endless())
    results = ex.map(abs, source, buffersize=buffersize)
    assert source.taken == buffersize
    assert [next(results) for _ in range(500)] == list(range(500))
    assert source.taken - 500 <= buffersize
