# Adapted from CPython's Lib/test/test_concurrent_futures/ package, Python 3.13.0
# (as installed by pyenv: lib/python3.13/test/test_concurrent_futures/).
#
# Copyright (c) 2001-2024 Python Software Foundation; All Rights Reserved.
# Distributed under the Python Software Foundation License Version 2
# (https://docs.python.org/3/license.html), which allows modified copies
# provided this notice is kept and the changes are summarised; they are:
#
# * Only the thread-pool cases are kept: everything about process pools is
#   removed (the ProcessPool* mixins and the test classes built from them,
#   test_process_pool.py, test_deadlock.py, FailingInitializerResourcesTest).
#   test_hang_global_shutdown_lock keeps its fork-context ProcessPoolExecutor:
#   it checks that a thread pool's shutdown lock survives fork. It ignores the
#   warning of a fork() with threads running, as CPython 3.15's copy does
#   (ignore_fork_in_thread_deprecation_warnings): from 3.15 pytest's "error"
#   filter can raise it.
# * Every thread-pool test class runs against conexe.ThreadPoolExecutor once
#   per available core ("c", the Cython extension, and "py", its pure-Python
#   twin): util.for_each_core() replaces the class with <Name>_c and <Name>_py.
#   Tests that named futures.ThreadPoolExecutor directly use
#   self.executor_type.
# * The subprocess scripts (interpreter exit tests) import conexe, bind the
#   core under test and define sleep_and_print themselves instead of importing
#   concurrent.futures.ThreadPoolExecutor and test.test_concurrent_futures.
# * test_future.py (the Future class alone, no executor) is not copied: its
#   20 tests are, body for body, 3.11's FutureTests, which tests/cpython
#   already runs against both cores' Future on every Python (with the same
#   two adaptations: public methods instead of assigning ``_state``, the log
#   record instead of stderr).
# * The package skips cleanly before Python 3.13 and where CPython's `test`
#   package is not installed.
"""CPython 3.13's own concurrent.futures tests, run against conexe."""
# ruff: noqa  (vendored: kept close to CPython's text, not to conexe's style)

import sys

import pytest

if sys.version_info < (3, 13):
    pytest.skip(
        "CPython 3.13's test_concurrent_futures needs Python >= 3.13", allow_module_level=True
    )
try:
    from test import support
    from test.support import threading_helper
except ImportError:
    pytest.skip("CPython's 'test' package is not installed", allow_module_level=True)

# Adjust if we ever have a platform with processes but not threads.
threading_helper.requires_working_threading(module=True)

if support.check_sanitizer(address=True, memory=True):
    # gh-90791: Skip the test because it is too slow when Python is built
    # with ASAN/MSAN: between 5 and 20 minutes on GitHub Actions.
    pytest.skip("test too slow on ASAN/MSAN build", allow_module_level=True)
