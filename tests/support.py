"""Helpers shared by the test modules (importable as ``support``; pytest
puts ``tests/`` on sys.path). Fixtures live in ``conftest.py``."""

from __future__ import annotations

import functools
import os
import sysconfig
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")


def bind_core(cls: type, core: ModuleType) -> type:
    """``cls`` with its core swapped (a subclass; same name)."""
    return type(cls.__name__, (cls,), {"_core": core})


def child_env(core: ModuleType | str | None = None) -> dict[str, str]:
    """The environment for a child Python that runs the conexe under test.

    The package this run imports comes first on ``PYTHONPATH`` (a checkout's
    ``src`` or the installed one). Given a core (module or ``"c"``/``"py"``),
    ``CONEXE_NO_EXTENSIONS`` makes it the child's default; without one, a
    script that binds its core itself is left to do so::

        subprocess.run([sys.executable, "-c", code], env=child_env(core))
    """
    import conexe

    env = dict(os.environ)
    package_parent = str(Path(conexe.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_parent, *filter(None, [env.get("PYTHONPATH")])])
    if core is None:
        return env
    env.pop("CONEXE_NO_EXTENSIONS", None)
    if (core if isinstance(core, str) else core.IMPLEMENTATION) == "py":
        env["CONEXE_NO_EXTENSIONS"] = "1"
        env.pop("CONEXE_REQUIRE_EXTENSION", None)
    return env


class HoldOnRelease:
    """A task argument whose release (its last reference dropped) signals
    ``released``, calls ``then()`` and holds the releasing thread until
    ``go`` is set: it pins the deadline reaper inside ``_expire()`` while a
    test looks. Submit it with :func:`made_in_a_thread_that_ends`, so that
    the release runs where the last reference is dropped on every build.

        >>> hold = HoldOnRelease()
        >>> hold.go.set()
        >>> arg = hold.arg()
        >>> del arg
        >>> hold.released.is_set()
        True
    """

    def __init__(self, then: Callable[[], Any] | None = None) -> None:
        self.released = threading.Event()
        self.go = threading.Event()
        self.then = then

    def arg(self) -> Any:
        hold = self

        class Arg:
            def __del__(self) -> None:
                hold.released.set()
                if hold.then is not None:
                    hold.then()
                hold.go.wait(10)

        return Arg()


def made_in_a_thread_that_ends(make: Callable[[], T]) -> T:
    """``make()``, run in a thread that has ended when this returns.

    On a free-threaded build an object is freed by the thread that drops its
    last reference only if the thread that made it has ended; otherwise the
    drop is queued to its maker (biased reference counting, see
    ``FREE_THREADED`` below). Whatever ``make()`` builds (a future and its
    task's arguments) is owned by no live thread, so its release happens
    where the last reference goes, as on a GIL build.

        >>> made_in_a_thread_that_ends(lambda: [1, 2])
        [1, 2]
    """
    out: list[T] = []
    maker = threading.Thread(target=lambda: out.append(make()), name="maker")
    maker.start()
    maker.join()
    return out[0]


class Blocker:
    """A task that holds its worker until released: ``started`` is set when
    it runs, ``release()`` lets it (and any other holder) return ``value``
    (or ``then(value)``: a Runner passes its resource as ``value``), and
    ``finished`` is set once a holder has returned. One instance can hold
    several workers at once (submit it several times); ``wait_started(n)``
    waits for ``n`` of them to have started.

        >>> import concurrent.futures as cf
        >>> hold = Blocker()
        >>> with cf.ThreadPoolExecutor(1) as ex:
        ...     fut = ex.submit(hold, "done")
        ...     assert hold.started.wait(10) and not fut.done()
        ...     hold.release()
        ...     fut.result(10)
        'done'
    """

    def __init__(self, then: Callable[[Any], Any] | None = None) -> None:
        self.then = then
        self.starts = 0
        self._counted = threading.Condition()
        self.started = threading.Event()
        self.gate = threading.Event()
        self.finished = threading.Event()

    def __call__(self, value: Any = None) -> Any:
        with self._counted:
            self.starts += 1
            self._counted.notify_all()
        self.started.set()
        if not self.gate.wait(30):
            raise RuntimeError("Blocker was never released")
        self.finished.set()
        return value if self.then is None else self.then(value)

    def wait_started(self, n: int, timeout: float = 10.0) -> bool:
        """True once ``n`` calls have started, False after ``timeout`` s."""
        with self._counted:
            return self._counted.wait_for(lambda: self.starts >= n, timeout)

    def release(self) -> None:
        self.gate.set()


def wait_until(
    check: Callable[[], T], timeout: float = 10.0, what: str = "condition", poll: float = 0.002
) -> T:
    """Poll ``check()`` until it returns something truthy, and return that;
    fail after ``timeout`` seconds with the last value seen. For state that
    has no event to wait on (counters, stats); everything else waits on an
    event (see :class:`Blocker`)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: wait() is an interruptible sleep
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s; last: {last!r}")
        pause.wait(poll)


def thread_asleep(pid: int, tid: int | None = None) -> bool:
    """Whether thread ``tid`` (default: the main thread) of process ``pid``
    is blocked in the kernel: asleep twice in a row, 2 ms apart, so that a
    thread only waiting its turn for the GIL (which the others release in
    between) doesn't pass for one blocked in a wait. Linux (/proc)."""

    def state() -> str:
        with open(f"/proc/{pid}/task/{tid or pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]

    if state() != "S":
        return False
    threading.Event().wait(0.002)
    return state() == "S"


# A free-threaded CPython (3.13t, 3.14t) frees an object dropped by a thread
# other than the one that made it only when its maker next runs Python code:
# biased reference counting queues that last decrement to the owner thread.
# A result made by a pool worker that then parks stays alive until the worker
# runs again. The release tests state that guarantee instead of "at once".
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def let_worker_run(submit: Any, workers: int = 1) -> None:
    """On a free-threaded build, make each of an executor's ``workers`` run
    Python code once (:func:`each_worker_takes_a_task`), so that objects
    they made and other threads dropped are freed; on a GIL build nothing
    is queued and this does nothing.

        >>> import concurrent.futures as cf
        >>> with cf.ThreadPoolExecutor(2) as ex:
        ...     let_worker_run(ex.submit, workers=2)
    """
    if not FREE_THREADED:
        return
    # Barrier.wait is Python code: entering it runs the eval loop's pending
    # work, which is where a thread frees what other threads queued to it.
    each_worker_takes_a_task(submit, workers)


def each_worker_takes_a_task(submit: Any, workers: int) -> None:
    """Make each of an executor's ``workers`` take one more task (tasks
    through ``submit(fn)`` that meet at a barrier, so no worker can take
    two) and wait for them: each worker has then finished everything it
    took before, its futures' callbacks and hand-offs included.

        >>> import concurrent.futures as cf
        >>> with cf.ThreadPoolExecutor(2) as ex:
        ...     each_worker_takes_a_task(ex.submit, workers=2)
    """
    meet = threading.Barrier(workers, timeout=30)
    for fut in [submit(meet.wait) for _ in range(workers)]:
        fut.result(timeout=30)


def ignore_fork_in_thread_deprecation_warnings(test: Callable[..., T]) -> Callable[..., T]:
    """CPython 3.15's ``test.support.warnings_helper`` decorator of that name,
    for the vendored CPython tests that fork with threads running: from 3.15
    the DeprecationWarning such a fork() gives can be raised (pytest's
    "error" filter), where before it was only printed."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", ".*fork.*may lead to deadlocks in the child.*", DeprecationWarning
            )
            return test(*args, **kwargs)

    return wrapper
