# Adapted from CPython's Lib/test/test_concurrent_futures.py, Python 3.11,
# as shipped in Debian's libpython3.11-testsuite 3.11.2-6+deb12u9
# (usr/lib/python3.11/test/test_concurrent_futures.py).
#
# Copyright (c) 2001-2023 Python Software Foundation; All Rights Reserved.
# Distributed under the Python Software Foundation License Version 2
# (https://docs.python.org/3/license.html), which allows modified copies
# provided this notice is kept and the changes are summarised; they are:
#
# * The ThreadPoolExecutor test classes run against conexe.ConcurrentExecutor,
#   once per available core ("c", the Cython extension, and "py", its
#   pure-Python twin): every class name ends in _c or _py. Their test methods
#   are the original ones; where a test named ThreadPoolExecutor directly it
#   uses self.executor_type.
# * Everything about process pools is removed: the ProcessPool* mixins, the
#   ProcessPoolShutdownTest/ProcessPoolExecutorTest/ExecutorDeadlockTest
#   classes and their helpers (pickling crashers, EventfulGCObj).
# * Tests that counted ThreadPoolExecutor's private ``_threads`` set count
#   the pool's threads through ``pool_threads()`` (conexe's own thread list)
#   or the public ``stats().workers`` instead; the default thread name is
#   ``conexe-N_i`` instead of ``ThreadPoolExecutor-N_i``.
# * The subprocess scripts (interpreter exit tests) import conexe, bind the
#   core under test, and define sleep_and_print themselves instead of
#   importing it from test.test_concurrent_futures.
# * FutureTests run against each core's Future. Their futures in a given
#   state are built through the public methods (set_running_or_notify_cancel,
#   cancel, set_result, set_exception) instead of by assigning the private
#   ``_state``; test_cancel checks the public predicates instead of
#   ``_state``; test_exception_with_success completes its future with
#   set_exception(); the two tests that read the logging "last resort"
#   output from stderr read the log record instead (pytest installs its own
#   log handler, so nothing reaches stderr).
# * test_cancel_futures_wait_false takes CPython 3.13's fix for gh-116682:
#   stdout may be empty when shutdown cancels the task before a worker takes
#   it (on a free-threaded build ThreadPoolExecutor itself loses that race
#   about 1 time in 300).
# * test_hang_global_shutdown_lock ignores the warning of a fork() with
#   threads running, as CPython 3.15's copy does: from 3.15 pytest's "error"
#   filter can raise it.
# * test_no_stale_references takes CPython 3.14's free-threaded branch: with
#   biased reference counting the object is freed only once the thread that
#   made it runs again, so the test alternates gc_collect() with the wait
#   (ThreadPoolExecutor itself failed the old wait on 3.14.7t, 0 of 8 times
#   collected within 1 s in a loop here).
# * The module skips cleanly when the ``test`` package is not installed.
"""CPython's own concurrent.futures tests, run against conexe.ConcurrentExecutor."""
# ruff: noqa  (vendored: kept close to CPython's text, not to conexe's style)

import pytest

try:
    from test import support
    from test.support import threading_helper
    from test.support.script_helper import assert_python_ok
except ImportError:  # some distributions ship CPython without its test package
    pytest.skip(
        "CPython's 'test' package is not installed (Debian/Ubuntu: "
        "libpython3.11-testsuite); it is needed to run CPython's own tests",
        allow_module_level=True,
    )

import contextlib
import itertools
import os
import sys
import sysconfig
import textwrap
import threading
import time
import unittest
import weakref

from concurrent import futures
from concurrent.futures._base import (
    PENDING,
    RUNNING,
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    Future,
    BrokenExecutor,
)

import multiprocessing as mp

import conexe
from conexe._impl import cores
from support import ignore_fork_in_thread_deprecation_warnings


# test.support.Py_GIL_DISABLED, which 3.11's test package lacks.
Py_GIL_DISABLED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


if support.check_sanitizer(address=True, memory=True):
    # bpo-46633: Skip the test because it is too slow when Python is built
    # with ASAN/MSAN: between 5 and 20 minutes on GitHub Actions.
    raise unittest.SkipTest("test too slow on ASAN/MSAN build")


def create_future(state=PENDING, exception=None, result=None):
    f = Future()
    f._state = state
    f._exception = exception
    f._result = result
    return f


PENDING_FUTURE = create_future(state=PENDING)
RUNNING_FUTURE = create_future(state=RUNNING)
CANCELLED_FUTURE = create_future(state=CANCELLED)
CANCELLED_AND_NOTIFIED_FUTURE = create_future(state=CANCELLED_AND_NOTIFIED)
EXCEPTION_FUTURE = create_future(state=FINISHED, exception=OSError())
SUCCESSFUL_FUTURE = create_future(state=FINISHED, result=42)

INITIALIZER_STATUS = "uninitialized"


def mul(x, y):
    return x * y


def capture(*args, **kwargs):
    return args, kwargs


def sleep_and_raise(t):
    time.sleep(t)
    raise Exception("this is an exception")


def sleep_and_print(t, msg):
    time.sleep(t)
    print(msg)
    sys.stdout.flush()


def init(x):
    global INITIALIZER_STATUS
    INITIALIZER_STATUS = x


def get_init_status():
    return INITIALIZER_STATUS


def init_fail(log_queue=None):
    time.sleep(0.1)  # let some futures be scheduled
    raise ValueError("error in initializer")


class MyObject(object):
    def my_method(self):
        pass


def make_dummy_object(_):
    return MyObject()


# -- conexe adaptation: binding a core, and the pool's threads ---------------


def bind_core(core):
    """ConcurrentExecutor using ``core`` (as tests/conftest.py's bind_core)."""
    return type("ConcurrentExecutor", (conexe.ConcurrentExecutor,), {"_core": core})


def pool_threads(executor):
    """The pool's live worker threads (ThreadPoolExecutor: ``_threads``)."""
    return executor._threads.threads()


_CONEXE_PATH = os.path.dirname(os.path.dirname(os.path.abspath(conexe.__file__)))

# Prepended to every subprocess script: the executor class under test, bound
# to the same core, and the helper the original imported from this module.
_SCRIPT_PRELUDE = """\
import sys, time
import conexe
from conexe._impl import cores
{executor_type} = type("ConcurrentExecutor", (conexe.ConcurrentExecutor,),
                       {{"_core": cores[{core!r}]}})
def sleep_and_print(t, msg):
    time.sleep(t)
    print(msg)
    sys.stdout.flush()
"""


def run_script(test, body):
    """assert_python_ok() on ``body`` with conexe importable and bound."""
    prelude = _SCRIPT_PRELUDE.format(executor_type="ConcurrentExecutor", core=test.core_name)
    pythonpath = os.pathsep.join(p for p in (_CONEXE_PATH, os.environ.get("PYTHONPATH")) if p)
    return assert_python_ok(
        "-c", prelude + textwrap.dedent(body), __isolated=False, PYTHONPATH=pythonpath
    )


class BaseTestCase(unittest.TestCase):
    def setUp(self):
        self._thread_key = threading_helper.threading_setup()

    def tearDown(self):
        support.reap_children()
        threading_helper.threading_cleanup(*self._thread_key)


class ExecutorMixin:
    worker_count = 5
    executor_kwargs = {}

    def setUp(self):
        super().setUp()

        self.t1 = time.monotonic()
        self.executor = self.executor_type(max_workers=self.worker_count, **self.executor_kwargs)

    def tearDown(self):
        self.executor.shutdown(wait=True)
        self.executor = None

        dt = time.monotonic() - self.t1
        if support.verbose:
            print("%.2fs" % dt, end=" ")
        self.assertLess(dt, 300, "synchronization issue: test lasted too long")

        super().tearDown()


def thread_pool_mixins():
    """One ThreadPoolMixin per core: (suffix, mixin)."""
    out = []
    for name, core in sorted(cores.items()):
        mixin = type(
            "ThreadPoolMixin_" + name,
            (ExecutorMixin,),
            {
                "executor_type": bind_core(core),
                "core": core,
                "core_name": name,
            },
        )
        out.append((name, mixin))
    return out


def create_executor_tests(mixin, bases=(BaseTestCase,), name=None):
    """``<name>_<core>`` test classes: ``mixin`` run on each core."""
    name = name or mixin.__name__
    for core_name, exe in thread_pool_mixins():
        cls_name = "%s_%s" % (name, core_name)
        cls = type(cls_name, (mixin, exe) + bases, {})
        cls.__qualname__ = cls_name
        globals()[cls_name] = cls


class InitializerMixin(ExecutorMixin):
    worker_count = 2

    def setUp(self):
        global INITIALIZER_STATUS
        INITIALIZER_STATUS = "uninitialized"
        self.executor_kwargs = dict(initializer=init, initargs=("initialized",))
        super().setUp()

    def test_initializer(self):
        futures = [self.executor.submit(get_init_status) for _ in range(self.worker_count)]

        for f in futures:
            self.assertEqual(f.result(), "initialized")


class FailingInitializerMixin(ExecutorMixin):
    worker_count = 2

    def setUp(self):
        # In a thread pool, the child shares our logging setup
        # (see _assert_logged())
        self.mp_context = None
        self.log_queue = None
        self.executor_kwargs = dict(initializer=init_fail)
        super().setUp()

    def test_initializer(self):
        with self._assert_logged("ValueError: error in initializer"):
            try:
                future = self.executor.submit(get_init_status)
            except BrokenExecutor:
                # Perhaps the executor is already broken
                pass
            else:
                with self.assertRaises(BrokenExecutor):
                    future.result()
            # At some point, the executor should break
            t1 = time.monotonic()
            while not self.executor._broken:
                if time.monotonic() - t1 > 5:
                    self.fail("executor not broken after 5 s.")
                time.sleep(0.01)
            # ... and from this point submit() is guaranteed to fail
            with self.assertRaises(BrokenExecutor):
                self.executor.submit(get_init_status)

    @contextlib.contextmanager
    def _assert_logged(self, msg):
        with self.assertLogs("concurrent.futures", "CRITICAL") as cm:
            yield
        output = cm.output
        self.assertTrue(any(msg in line for line in output), output)


create_executor_tests(InitializerMixin, name="ConcurrentInitializerTest")
create_executor_tests(FailingInitializerMixin, name="ConcurrentFailingInitializerTest")


class ExecutorShutdownTest:
    def test_run_after_shutdown(self):
        self.executor.shutdown()
        self.assertRaises(RuntimeError, self.executor.submit, pow, 2, 5)

    def test_interpreter_shutdown(self):
        # Test the atexit hook for shutdown of worker threads and processes
        rc, out, err = run_script(
            self,
            """
            from time import sleep
            if __name__ == "__main__":
                t = ConcurrentExecutor(5)
                t.submit(sleep_and_print, 1.0, "apple")
            """,
        )
        # Errors in atexit hooks don't change the process exit code, check
        # stderr manually.
        self.assertFalse(err)
        self.assertEqual(out.strip(), b"apple")

    def test_submit_after_interpreter_shutdown(self):
        # Test the atexit hook for shutdown of worker threads and processes
        rc, out, err = run_script(
            self,
            """
            import atexit
            @atexit.register
            def run_last():
                try:
                    t.submit(id, None)
                except RuntimeError:
                    print("runtime-error")
                    raise
            if __name__ == "__main__":
                t = ConcurrentExecutor(5)
            """,
        )
        # Errors in atexit hooks don't change the process exit code, check
        # stderr manually.
        self.assertIn("RuntimeError: cannot schedule new futures", err.decode())
        self.assertEqual(out.strip(), b"runtime-error")

    def test_hang_issue12364(self):
        fs = [self.executor.submit(time.sleep, 0.1) for _ in range(50)]
        self.executor.shutdown()
        for f in fs:
            f.result()

    def test_cancel_futures(self):
        assert self.worker_count <= 5, "test needs few workers"
        fs = [self.executor.submit(time.sleep, 0.1) for _ in range(50)]
        self.executor.shutdown(cancel_futures=True)
        # We can't guarantee the exact number of cancellations, but we can
        # guarantee that *some* were cancelled. With few workers, many of
        # the submitted futures should have been cancelled.
        cancelled = [fut for fut in fs if fut.cancelled()]
        self.assertGreater(len(cancelled), 20)

        # Ensure the other futures were able to finish.
        # Use "not fut.cancelled()" instead of "fut.done()" to include futures
        # that may have been left in a pending state.
        others = [fut for fut in fs if not fut.cancelled()]
        for fut in others:
            self.assertTrue(fut.done(), msg=f"{fut._state=}")
            self.assertIsNone(fut.exception())

        # Similar to the number of cancelled futures, we can't guarantee the
        # exact number that completed. But, we can guarantee that at least
        # one finished.
        self.assertGreater(len(others), 0)

    def test_hang_gh83386(self):
        """shutdown(wait=False) doesn't hang at exit with running futures.

        See https://github.com/python/cpython/issues/83386.
        """
        rc, out, err = run_script(
            self,
            """
            if __name__ == "__main__":
                t = ConcurrentExecutor(max_workers=3)
                t.submit(sleep_and_print, 1.0, "apple")
                t.shutdown(wait=False)
            """,
        )
        self.assertFalse(err)
        self.assertEqual(out.strip(), b"apple")


class ThreadPoolShutdownTest(ExecutorShutdownTest):
    def test_threads_terminate(self):
        def acquire_lock(lock):
            lock.acquire()

        sem = threading.Semaphore(0)
        for i in range(3):
            self.executor.submit(acquire_lock, sem)
        self.assertEqual(len(pool_threads(self.executor)), 3)
        for i in range(3):
            sem.release()
        threads = pool_threads(self.executor)
        self.executor.shutdown()
        for t in threads:
            t.join()

    def test_context_manager_shutdown(self):
        with self.executor_type(max_workers=5) as e:
            executor = e
            self.assertEqual(list(e.map(abs, range(-5, 5))), [5, 4, 3, 2, 1, 0, 1, 2, 3, 4])
            threads = pool_threads(executor)

        for t in threads:
            t.join()

    def test_del_shutdown(self):
        executor = self.executor_type(max_workers=5)
        res = executor.map(abs, range(-5, 5))
        threads = pool_threads(executor)
        del executor

        for t in threads:
            t.join()

        # Make sure the results were all computed before the
        # executor got shutdown.
        assert all([r == abs(v) for r, v in zip(res, range(-5, 5))])

    def test_shutdown_no_wait(self):
        # Ensure that the executor cleans up the threads when calling
        # shutdown with wait=False
        executor = self.executor_type(max_workers=5)
        res = executor.map(abs, range(-5, 5))
        threads = pool_threads(executor)
        executor.shutdown(wait=False)
        for t in threads:
            t.join()

        # Make sure the results were all computed before the
        # executor got shutdown.
        assert all([r == abs(v) for r, v in zip(res, range(-5, 5))])

    def test_thread_names_assigned(self):
        executor = self.executor_type(max_workers=5, thread_name_prefix="SpecialPool")
        executor.map(abs, range(-5, 5))
        threads = pool_threads(executor)
        del executor
        support.gc_collect()  # For PyPy or other GCs.

        for t in threads:
            self.assertRegex(t.name, r"^SpecialPool_[0-4]$")
            t.join()

    def test_thread_names_default(self):
        executor = self.executor_type(max_workers=5)
        executor.map(abs, range(-5, 5))
        threads = pool_threads(executor)
        del executor
        support.gc_collect()  # For PyPy or other GCs.

        for t in threads:
            # Ensure that our default name is reasonably sane and unique when
            # no thread_name_prefix was supplied.
            self.assertRegex(t.name, r"^conexe-\d+_[0-4]$")
            t.join()

    def test_cancel_futures_wait_false(self):
        # Can only be reliably tested for TPE, since PPE often hangs with
        # `wait=False` (even without *cancel_futures*).
        rc, out, err = run_script(
            self,
            """
            if __name__ == "__main__":
                t = ConcurrentExecutor()
                t.submit(sleep_and_print, .1, "apple")
                t.shutdown(wait=False, cancel_futures=True)
            """,
        )
        # Errors in atexit hooks don't change the process exit code, check
        # stderr manually.
        self.assertFalse(err)
        # gh-116682: stdout may be empty if shutdown happens before task
        # starts executing.
        self.assertIn(out.strip(), [b"apple", b""])


create_executor_tests(ThreadPoolShutdownTest, name="ConcurrentShutdownTest")


class WaitTests:
    def test_20369(self):
        # See https://bugs.python.org/issue20369
        future = self.executor.submit(time.sleep, 1.5)
        done, not_done = futures.wait([future, future], return_when=futures.ALL_COMPLETED)
        self.assertEqual({future}, done)
        self.assertEqual(set(), not_done)

    def test_first_completed(self):
        future1 = self.executor.submit(mul, 21, 2)
        future2 = self.executor.submit(time.sleep, 1.5)

        done, not_done = futures.wait(
            [CANCELLED_FUTURE, future1, future2], return_when=futures.FIRST_COMPLETED
        )

        self.assertEqual(set([future1]), done)
        self.assertEqual(set([CANCELLED_FUTURE, future2]), not_done)

    def test_first_completed_some_already_completed(self):
        future1 = self.executor.submit(time.sleep, 1.5)

        finished, pending = futures.wait(
            [CANCELLED_AND_NOTIFIED_FUTURE, SUCCESSFUL_FUTURE, future1],
            return_when=futures.FIRST_COMPLETED,
        )

        self.assertEqual(set([CANCELLED_AND_NOTIFIED_FUTURE, SUCCESSFUL_FUTURE]), finished)
        self.assertEqual(set([future1]), pending)

    def test_first_exception(self):
        future1 = self.executor.submit(mul, 2, 21)
        future2 = self.executor.submit(sleep_and_raise, 1.5)
        future3 = self.executor.submit(time.sleep, 3)

        finished, pending = futures.wait(
            [future1, future2, future3], return_when=futures.FIRST_EXCEPTION
        )

        self.assertEqual(set([future1, future2]), finished)
        self.assertEqual(set([future3]), pending)

    def test_first_exception_some_already_complete(self):
        future1 = self.executor.submit(divmod, 21, 0)
        future2 = self.executor.submit(time.sleep, 1.5)

        finished, pending = futures.wait(
            [SUCCESSFUL_FUTURE, CANCELLED_FUTURE, CANCELLED_AND_NOTIFIED_FUTURE, future1, future2],
            return_when=futures.FIRST_EXCEPTION,
        )

        self.assertEqual(set([SUCCESSFUL_FUTURE, CANCELLED_AND_NOTIFIED_FUTURE, future1]), finished)
        self.assertEqual(set([CANCELLED_FUTURE, future2]), pending)

    def test_first_exception_one_already_failed(self):
        future1 = self.executor.submit(time.sleep, 2)

        finished, pending = futures.wait(
            [EXCEPTION_FUTURE, future1], return_when=futures.FIRST_EXCEPTION
        )

        self.assertEqual(set([EXCEPTION_FUTURE]), finished)
        self.assertEqual(set([future1]), pending)

    def test_all_completed(self):
        future1 = self.executor.submit(divmod, 2, 0)
        future2 = self.executor.submit(mul, 2, 21)

        finished, pending = futures.wait(
            [SUCCESSFUL_FUTURE, CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE, future1, future2],
            return_when=futures.ALL_COMPLETED,
        )

        self.assertEqual(
            set(
                [
                    SUCCESSFUL_FUTURE,
                    CANCELLED_AND_NOTIFIED_FUTURE,
                    EXCEPTION_FUTURE,
                    future1,
                    future2,
                ]
            ),
            finished,
        )
        self.assertEqual(set(), pending)

    def test_timeout(self):
        future1 = self.executor.submit(mul, 6, 7)
        future2 = self.executor.submit(time.sleep, 6)

        finished, pending = futures.wait(
            [CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE, SUCCESSFUL_FUTURE, future1, future2],
            timeout=5,
            return_when=futures.ALL_COMPLETED,
        )

        self.assertEqual(
            set([CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE, SUCCESSFUL_FUTURE, future1]),
            finished,
        )
        self.assertEqual(set([future2]), pending)


class ThreadPoolWaitTests(WaitTests):
    def test_pending_calls_race(self):
        # Issue #14406: multi-threaded race condition when waiting on all
        # futures.
        event = threading.Event()

        def future_func():
            event.wait()

        oldswitchinterval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            fs = {self.executor.submit(future_func) for i in range(100)}
            event.set()
            futures.wait(fs, return_when=futures.ALL_COMPLETED)
        finally:
            sys.setswitchinterval(oldswitchinterval)


create_executor_tests(ThreadPoolWaitTests, name="ConcurrentWaitTest")


class AsCompletedTests:
    # TODO(brian@sweetapp.com): Should have a test with a non-zero timeout.
    def test_no_timeout(self):
        future1 = self.executor.submit(mul, 2, 21)
        future2 = self.executor.submit(mul, 7, 6)

        completed = set(
            futures.as_completed(
                [
                    CANCELLED_AND_NOTIFIED_FUTURE,
                    EXCEPTION_FUTURE,
                    SUCCESSFUL_FUTURE,
                    future1,
                    future2,
                ]
            )
        )
        self.assertEqual(
            set(
                [
                    CANCELLED_AND_NOTIFIED_FUTURE,
                    EXCEPTION_FUTURE,
                    SUCCESSFUL_FUTURE,
                    future1,
                    future2,
                ]
            ),
            completed,
        )

    def test_zero_timeout(self):
        future1 = self.executor.submit(time.sleep, 2)
        completed_futures = set()
        try:
            for future in futures.as_completed(
                [CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE, SUCCESSFUL_FUTURE, future1],
                timeout=0,
            ):
                completed_futures.add(future)
        except futures.TimeoutError:
            pass

        self.assertEqual(
            set([CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE, SUCCESSFUL_FUTURE]),
            completed_futures,
        )

    def test_duplicate_futures(self):
        # Issue 20367. Duplicate futures should not raise exceptions or give
        # duplicate responses.
        # Issue #31641: accept arbitrary iterables.
        future1 = self.executor.submit(time.sleep, 2)
        completed = [f for f in futures.as_completed(itertools.repeat(future1, 3))]
        self.assertEqual(len(completed), 1)

    def test_free_reference_yielded_future(self):
        # Issue #14406: Generator should not keep references
        # to finished futures.
        futures_list = [Future() for _ in range(8)]
        futures_list.append(create_future(state=CANCELLED_AND_NOTIFIED))
        futures_list.append(create_future(state=FINISHED, result=42))

        with self.assertRaises(futures.TimeoutError):
            for future in futures.as_completed(futures_list, timeout=0):
                futures_list.remove(future)
                wr = weakref.ref(future)
                del future
                support.gc_collect()  # For PyPy or other GCs.
                self.assertIsNone(wr())

        futures_list[0].set_result("test")
        for future in futures.as_completed(futures_list):
            futures_list.remove(future)
            wr = weakref.ref(future)
            del future
            support.gc_collect()  # For PyPy or other GCs.
            self.assertIsNone(wr())
            if futures_list:
                futures_list[0].set_result("test")

    def test_correct_timeout_exception_msg(self):
        futures_list = [
            CANCELLED_AND_NOTIFIED_FUTURE,
            PENDING_FUTURE,
            RUNNING_FUTURE,
            SUCCESSFUL_FUTURE,
        ]

        with self.assertRaises(futures.TimeoutError) as cm:
            list(futures.as_completed(futures_list, timeout=0))

        self.assertEqual(str(cm.exception), "2 (of 4) futures unfinished")


create_executor_tests(AsCompletedTests, name="ConcurrentAsCompletedTest")


class ExecutorTest:
    # Executor.shutdown() and context manager usage is tested by
    # ExecutorShutdownTest.
    def test_submit(self):
        future = self.executor.submit(pow, 2, 8)
        self.assertEqual(256, future.result())

    def test_submit_keyword(self):
        future = self.executor.submit(mul, 2, y=8)
        self.assertEqual(16, future.result())
        future = self.executor.submit(capture, 1, self=2, fn=3)
        self.assertEqual(future.result(), ((1,), {"self": 2, "fn": 3}))
        with self.assertRaises(TypeError):
            self.executor.submit(fn=capture, arg=1)
        with self.assertRaises(TypeError):
            self.executor.submit(arg=1)

    def test_map(self):
        self.assertEqual(
            list(self.executor.map(pow, range(10), range(10))), list(map(pow, range(10), range(10)))
        )

        self.assertEqual(
            list(self.executor.map(pow, range(10), range(10), chunksize=3)),
            list(map(pow, range(10), range(10))),
        )

    def test_map_exception(self):
        i = self.executor.map(divmod, [1, 1, 1, 1], [2, 3, 0, 5])
        self.assertEqual(i.__next__(), (0, 1))
        self.assertEqual(i.__next__(), (0, 1))
        self.assertRaises(ZeroDivisionError, i.__next__)

    def test_map_timeout(self):
        results = []
        try:
            for i in self.executor.map(time.sleep, [0, 0, 6], timeout=5):
                results.append(i)
        except futures.TimeoutError:
            pass
        else:
            self.fail("expected TimeoutError")

        self.assertEqual([None, None], results)

    def test_shutdown_race_issue12456(self):
        # Issue #12456: race condition at shutdown where trying to post a
        # sentinel in the call queue blocks (the queue is full while processes
        # have exited).
        self.executor.map(str, [2] * (self.worker_count + 1))
        self.executor.shutdown()

    @support.cpython_only
    def test_no_stale_references(self):
        # Issue #16284: check that the executors don't unnecessarily hang onto
        # references.
        my_object = MyObject()
        my_object_collected = threading.Event()
        my_object_callback = weakref.ref(my_object, lambda obj: my_object_collected.set())
        # Deliberately discarding the future.
        self.executor.submit(my_object.my_method)
        del my_object

        if Py_GIL_DISABLED:
            # Due to biased reference counting, my_object might only be
            # deallocated while the thread that created it runs -- if the
            # thread is paused waiting on an event, it may not merge the
            # refcount of the queued object. For that reason, we alternate
            # between running the GC and waiting for the event.
            wait_time = 0.0
            collected = False
            while not collected and wait_time <= support.SHORT_TIMEOUT:
                support.gc_collect()
                collected = my_object_collected.wait(timeout=1.0)
                wait_time += 1.0
        else:
            collected = my_object_collected.wait(timeout=support.SHORT_TIMEOUT)
        self.assertTrue(collected, "Stale reference not collected within timeout.")

    def test_max_workers_negative(self):
        for number in (0, -1):
            with self.assertRaisesRegex(ValueError, "max_workers must be greater than 0"):
                self.executor_type(max_workers=number)

    def test_free_reference(self):
        # Issue #14406: Result iterator should not keep an internal
        # reference to result objects.
        for obj in self.executor.map(make_dummy_object, range(10)):
            wr = weakref.ref(obj)
            del obj
            support.gc_collect()  # For PyPy or other GCs.
            self.assertIsNone(wr())


class ThreadPoolExecutorTest(ExecutorTest):
    def test_map_submits_without_iteration(self):
        """Tests verifying issue 11777."""
        finished = []

        def record_finished(n):
            finished.append(n)

        self.executor.map(record_finished, range(10))
        self.executor.shutdown(wait=True)
        self.assertCountEqual(finished, range(10))

    def test_default_workers(self):
        executor = self.executor_type()
        expected = min(32, (os.cpu_count() or 1) + 4)
        self.assertEqual(executor._max_workers, expected)
        executor.shutdown()

    def test_saturation(self):
        executor = self.executor_type(4)

        def acquire_lock(lock):
            lock.acquire()

        sem = threading.Semaphore(0)
        for i in range(15 * executor._max_workers):
            executor.submit(acquire_lock, sem)
        self.assertEqual(len(pool_threads(executor)), executor._max_workers)
        self.assertEqual(executor.stats().workers, executor._max_workers)
        for i in range(15 * executor._max_workers):
            sem.release()
        executor.shutdown(wait=True)

    def test_idle_thread_reuse(self):
        executor = self.executor_type()
        executor.submit(mul, 21, 2).result()
        executor.submit(mul, 6, 7).result()
        executor.submit(mul, 3, 14).result()
        self.assertEqual(len(pool_threads(executor)), 1)
        self.assertEqual(executor.stats().workers, 1)
        executor.shutdown(wait=True)

    @unittest.skipUnless(hasattr(os, "register_at_fork"), "need os.register_at_fork")
    @ignore_fork_in_thread_deprecation_warnings
    def test_hang_global_shutdown_lock(self):
        # bpo-45021: _global_shutdown_lock should be reinitialized in the child
        # process, otherwise it will never exit
        def submit(pool):
            pool.submit(submit, pool)

        with self.executor_type(1) as pool:
            pool.submit(submit, pool)

            for _ in range(50):
                with futures.ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as workers:
                    workers.submit(tuple)

    def test_executor_map_current_future_cancel(self):
        stop_event = threading.Event()
        log = []

        def log_n_wait(ident):
            log.append(f"{ident=} started")
            try:
                stop_event.wait()
            finally:
                log.append(f"{ident=} stopped")

        with self.executor_type(max_workers=1) as pool:
            # submit work to saturate the pool
            fut = pool.submit(log_n_wait, ident="first")
            try:
                with contextlib.closing(
                    pool.map(log_n_wait, ["second", "third"], timeout=0)
                ) as gen:
                    with self.assertRaises(TimeoutError):
                        next(gen)
            finally:
                stop_event.set()
            fut.result()
        # ident='second' is cancelled as a result of raising a TimeoutError
        # ident='third' is cancelled because it remained in the collection of futures
        self.assertListEqual(log, ["ident='first' started", "ident='first' stopped"])


create_executor_tests(ThreadPoolExecutorTest, name="ConcurrentExecutorTest")


class FutureTests:
    def test_done_callback_with_result(self):
        callback_result = None

        def fn(callback_future):
            nonlocal callback_result
            callback_result = callback_future.result()

        f = Future()
        f.add_done_callback(fn)
        f.set_result(5)
        self.assertEqual(5, callback_result)

    def test_done_callback_with_exception(self):
        callback_exception = None

        def fn(callback_future):
            nonlocal callback_exception
            callback_exception = callback_future.exception()

        f = Future()
        f.add_done_callback(fn)
        f.set_exception(Exception("test"))
        self.assertEqual(("test",), callback_exception.args)

    def test_done_callback_with_cancel(self):
        was_cancelled = None

        def fn(callback_future):
            nonlocal was_cancelled
            was_cancelled = callback_future.cancelled()

        f = Future()
        f.add_done_callback(fn)
        self.assertTrue(f.cancel())
        self.assertTrue(was_cancelled)

    def test_done_callback_raises(self):
        # Adapted: the original reads the logging last-resort output from
        # stderr; under pytest the record goes to pytest's handler instead.
        with self.assertLogs("concurrent.futures", "ERROR") as cm:
            raising_was_called = False
            fn_was_called = False

            def raising_fn(callback_future):
                nonlocal raising_was_called
                raising_was_called = True
                raise Exception("doh!")

            def fn(callback_future):
                nonlocal fn_was_called
                fn_was_called = True

            f = Future()
            f.add_done_callback(raising_fn)
            f.add_done_callback(fn)
            f.set_result(5)
            self.assertTrue(raising_was_called)
            self.assertTrue(fn_was_called)
        self.assertEqual(str(cm.records[0].exc_info[1]), "doh!")

    def test_done_callback_already_successful(self):
        callback_result = None

        def fn(callback_future):
            nonlocal callback_result
            callback_result = callback_future.result()

        f = Future()
        f.set_result(5)
        f.add_done_callback(fn)
        self.assertEqual(5, callback_result)

    def test_done_callback_already_failed(self):
        callback_exception = None

        def fn(callback_future):
            nonlocal callback_exception
            callback_exception = callback_future.exception()

        f = Future()
        f.set_exception(Exception("test"))
        f.add_done_callback(fn)
        self.assertEqual(("test",), callback_exception.args)

    def test_done_callback_already_cancelled(self):
        was_cancelled = None

        def fn(callback_future):
            nonlocal was_cancelled
            was_cancelled = callback_future.cancelled()

        f = Future()
        self.assertTrue(f.cancel())
        f.add_done_callback(fn)
        self.assertTrue(was_cancelled)

    def test_done_callback_raises_already_succeeded(self):
        # Adapted like test_done_callback_raises.
        with self.assertLogs("concurrent.futures", "ERROR") as cm:

            def raising_fn(callback_future):
                raise Exception("doh!")

            f = Future()

            # Set the result first to simulate a future that runs instantly,
            # effectively allowing the callback to be run immediately.
            f.set_result(5)
            f.add_done_callback(raising_fn)

        self.assertIn("exception calling callback for", cm.output[0])
        self.assertEqual(str(cm.records[0].exc_info[1]), "doh!")

    def test_repr(self):
        self.assertRegex(repr(PENDING_FUTURE), "<Future at 0x[0-9a-f]+ state=pending>")
        self.assertRegex(repr(RUNNING_FUTURE), "<Future at 0x[0-9a-f]+ state=running>")
        self.assertRegex(repr(CANCELLED_FUTURE), "<Future at 0x[0-9a-f]+ state=cancelled>")
        self.assertRegex(
            repr(CANCELLED_AND_NOTIFIED_FUTURE), "<Future at 0x[0-9a-f]+ state=cancelled>"
        )
        self.assertRegex(
            repr(EXCEPTION_FUTURE), "<Future at 0x[0-9a-f]+ state=finished raised OSError>"
        )
        self.assertRegex(
            repr(SUCCESSFUL_FUTURE), "<Future at 0x[0-9a-f]+ state=finished returned int>"
        )

    def test_cancel(self):
        # Adapted: the original checks the private _state after each
        # cancel(); this checks the public predicates instead.
        f1 = create_future(state=PENDING)
        f2 = create_future(state=RUNNING)
        f3 = create_future(state=CANCELLED)
        f4 = create_future(state=CANCELLED_AND_NOTIFIED)
        f5 = create_future(state=FINISHED, exception=OSError())
        f6 = create_future(state=FINISHED, result=5)

        self.assertTrue(f1.cancel())
        self.assertTrue(f1.cancelled())

        self.assertFalse(f2.cancel())
        self.assertTrue(f2.running())

        self.assertTrue(f3.cancel())
        self.assertTrue(f3.cancelled())

        self.assertTrue(f4.cancel())
        self.assertTrue(f4.cancelled())

        self.assertFalse(f5.cancel())
        self.assertIsInstance(f5.exception(), OSError)

        self.assertFalse(f6.cancel())
        self.assertEqual(f6.result(), 5)

    def test_cancelled(self):
        self.assertFalse(PENDING_FUTURE.cancelled())
        self.assertFalse(RUNNING_FUTURE.cancelled())
        self.assertTrue(CANCELLED_FUTURE.cancelled())
        self.assertTrue(CANCELLED_AND_NOTIFIED_FUTURE.cancelled())
        self.assertFalse(EXCEPTION_FUTURE.cancelled())
        self.assertFalse(SUCCESSFUL_FUTURE.cancelled())

    def test_done(self):
        self.assertFalse(PENDING_FUTURE.done())
        self.assertFalse(RUNNING_FUTURE.done())
        self.assertTrue(CANCELLED_FUTURE.done())
        self.assertTrue(CANCELLED_AND_NOTIFIED_FUTURE.done())
        self.assertTrue(EXCEPTION_FUTURE.done())
        self.assertTrue(SUCCESSFUL_FUTURE.done())

    def test_running(self):
        self.assertFalse(PENDING_FUTURE.running())
        self.assertTrue(RUNNING_FUTURE.running())
        self.assertFalse(CANCELLED_FUTURE.running())
        self.assertFalse(CANCELLED_AND_NOTIFIED_FUTURE.running())
        self.assertFalse(EXCEPTION_FUTURE.running())
        self.assertFalse(SUCCESSFUL_FUTURE.running())

    def test_result_with_timeout(self):
        self.assertRaises(futures.TimeoutError, PENDING_FUTURE.result, timeout=0)
        self.assertRaises(futures.TimeoutError, RUNNING_FUTURE.result, timeout=0)
        self.assertRaises(futures.CancelledError, CANCELLED_FUTURE.result, timeout=0)
        self.assertRaises(futures.CancelledError, CANCELLED_AND_NOTIFIED_FUTURE.result, timeout=0)
        self.assertRaises(OSError, EXCEPTION_FUTURE.result, timeout=0)
        self.assertEqual(SUCCESSFUL_FUTURE.result(timeout=0), 42)

    def test_exception_with_timeout(self):
        self.assertRaises(futures.TimeoutError, PENDING_FUTURE.exception, timeout=0)
        self.assertRaises(futures.TimeoutError, RUNNING_FUTURE.exception, timeout=0)
        self.assertRaises(futures.CancelledError, CANCELLED_FUTURE.exception, timeout=0)
        self.assertRaises(
            futures.CancelledError, CANCELLED_AND_NOTIFIED_FUTURE.exception, timeout=0
        )
        self.assertTrue(isinstance(EXCEPTION_FUTURE.exception(timeout=0), OSError))
        self.assertEqual(SUCCESSFUL_FUTURE.exception(timeout=0), None)

    def test_exception_with_success(self):
        # Adapted: the original completes f1 by writing its private state.
        def notification():
            # Wait until the main thread is waiting for the exception.
            time.sleep(1)
            f1.set_exception(OSError())

        f1 = create_future(state=PENDING)
        t = threading.Thread(target=notification)
        t.start()

        self.assertTrue(isinstance(f1.exception(timeout=support.SHORT_TIMEOUT), OSError))
        t.join()

    def test_result_with_success(self):
        # TODO(brian@sweetapp.com): This test is timing dependent.
        def notification():
            # Wait until the main thread is waiting for the result.
            time.sleep(1)
            f1.set_result(42)

        f1 = Future()
        t = threading.Thread(target=notification)
        t.start()

        self.assertEqual(f1.result(timeout=5), 42)
        t.join()

    def test_result_with_cancel(self):
        # TODO(brian@sweetapp.com): This test is timing dependent.
        def notification():
            # Wait until the main thread is waiting for the result.
            time.sleep(1)
            f1.cancel()

        f1 = Future()
        t = threading.Thread(target=notification)
        t.start()

        self.assertRaises(futures.CancelledError, f1.result, timeout=support.SHORT_TIMEOUT)
        t.join()

    def test_multiple_set_result(self):
        f = Future()
        f.set_result(1)

        with self.assertRaisesRegex(
            futures.InvalidStateError,
            "FINISHED: <Future at 0x[0-9a-f]+ state=finished returned int>",
        ):
            f.set_result(2)

        self.assertTrue(f.done())
        self.assertEqual(f.result(), 1)

    def test_multiple_set_exception(self):
        f = Future()
        e = ValueError()
        f.set_exception(e)

        with self.assertRaisesRegex(
            futures.InvalidStateError,
            "FINISHED: <Future at 0x[0-9a-f]+ state=finished raised ValueError>",
        ):
            f.set_exception(Exception())

        self.assertEqual(f.exception(), e)


def public_create_future(future_type):
    """create_future() for ``future_type``, through its public methods only
    (the original assigns the private ``_state``; CANCELLED and
    CANCELLED_AND_NOTIFIED both come from cancel())."""

    def create_future(state=PENDING, exception=None, result=None):
        f = future_type()
        if state == RUNNING:
            f.set_running_or_notify_cancel()
        elif state in (CANCELLED, CANCELLED_AND_NOTIFIED):
            f.cancel()
        elif state == FINISHED:
            f.set_running_or_notify_cancel()
            if exception is not None:
                f.set_exception(exception)
            else:
                f.set_result(result)
        return f

    return create_future


# FutureTests, once per core, with ``Future`` meaning that core's Future:
# the methods above look ``Future``, ``create_future`` and the module-level
# futures up in their globals, so each class runs them with a copy of those
# globals where they are that core's.
def _future_tests_for(core_name, core):
    make = public_create_future(core.Future)
    ns = dict(
        globals(),
        Future=core.Future,
        create_future=make,
        PENDING_FUTURE=make(state=PENDING),
        RUNNING_FUTURE=make(state=RUNNING),
        CANCELLED_FUTURE=make(state=CANCELLED),
        CANCELLED_AND_NOTIFIED_FUTURE=make(state=CANCELLED_AND_NOTIFIED),
        EXCEPTION_FUTURE=make(state=FINISHED, exception=OSError()),
        SUCCESSFUL_FUTURE=make(state=FINISHED, result=42),
    )
    methods = {}
    for attr, func in vars(FutureTests).items():
        if attr.startswith("test_"):
            methods[attr] = type(func)(
                func.__code__, ns, func.__name__, func.__defaults__, func.__closure__
            )
    name = "FutureTests_" + core_name
    cls = type(name, (BaseTestCase,), methods)
    cls.__qualname__ = name
    return cls


for _name, _core in sorted(cores.items()):
    globals()["FutureTests_" + _name] = _future_tests_for(_name, _core)
del FutureTests


def setUpModule():
    thread_info = threading_helper.threading_setup()
    unittest.addModuleCleanup(threading_helper.threading_cleanup, *thread_info)


if __name__ == "__main__":
    unittest.main()
