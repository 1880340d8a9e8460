# ruff: noqa  (vendored from CPython 3.13: see __init__.py for the changes)
import os
import textwrap
import time
import unittest
from concurrent.futures._base import (
    PENDING,
    RUNNING,
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    Future,
)

from test import support
from test.support import threading_helper
from test.support.script_helper import assert_python_ok

import conexe
from conexe._impl import cores


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


class ThreadPoolMixin(ExecutorMixin):
    """Bound to a core by for_each_core(): executor_type, core_name."""


# -- conexe adaptation: one class per core, and subprocess scripts ------------


def bind_core(core_name):
    """conexe.ThreadPoolExecutor on ``core_name`` (as tests/support.py)."""
    return type("ThreadPoolExecutor", (conexe.ThreadPoolExecutor,), {"_core": cores[core_name]})


def for_each_core(remote_globals, cls):
    """Replace the test class ``cls`` with one subclass per core."""
    del remote_globals[cls.__name__]
    for core_name in sorted(cores):
        name = "%s_%s" % (cls.__name__, core_name)
        sub = type(
            name,
            (cls,),
            {
                "__module__": remote_globals["__name__"],
                "executor_type": bind_core(core_name),
                "core_name": core_name,
            },
        )
        sub.__qualname__ = name
        remote_globals[name] = sub


def create_executor_tests(remote_globals, mixin, bases=(BaseTestCase,)):
    """``ThreadPool<Mixin>Test_<core>`` classes: ``mixin`` on each core."""

    def strip_mixin(name):
        if name.endswith(("Mixin", "Tests")):
            return name[:-5]
        elif name.endswith("Test"):
            return name[:-4]
        else:
            return name

    name = "ThreadPool%sTest" % strip_mixin(mixin.__name__)
    remote_globals[name] = type(
        name, (mixin, ThreadPoolMixin) + bases, {"__module__": remote_globals["__name__"]}
    )
    for_each_core(remote_globals, remote_globals[name])


_CONEXE_PATH = os.path.dirname(os.path.dirname(os.path.abspath(conexe.__file__)))

# Prepended to every subprocess script: the executor class under test, bound
# to the same core, and the helper the original imported from the package.
_SCRIPT_PRELUDE = """\
import sys, time
import conexe
from conexe._impl import cores
ThreadPoolExecutor = type("ThreadPoolExecutor", (conexe.ThreadPoolExecutor,),
                          {{"_core": cores[{core!r}]}})
def sleep_and_print(t, msg):
    time.sleep(t)
    print(msg)
    sys.stdout.flush()
"""


def run_script(test, body):
    """assert_python_ok() on ``body`` with conexe importable and bound."""
    prelude = _SCRIPT_PRELUDE.format(core=test.core_name)
    pythonpath = os.pathsep.join(p for p in (_CONEXE_PATH, os.environ.get("PYTHONPATH")) if p)
    return assert_python_ok(
        "-c", prelude + textwrap.dedent(body), __isolated=False, PYTHONPATH=pythonpath
    )


def setup_module():
    thread_info = threading_helper.threading_setup()
    unittest.addModuleCleanup(threading_helper.threading_cleanup, *thread_info)
