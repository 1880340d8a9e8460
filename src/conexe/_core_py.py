"""Pure-Python twin of :mod:`conexe._core`.

Same names, same behaviour, same error messages as the Cython core; it is
loaded when ``CONEXE_NO_EXTENSIONS=1`` is set or the extension can't be
imported (see :mod:`conexe._impl`). It is the readable reference for what the
C code does, and the test suite runs every behaviour test against both.

This file is the hub; the pieces live in ``_units/``, one module per unit of
the C core (``_units/future.py`` is the twin of ``_units/future.pxi``, and so
on), so that a change to one core is reviewed against the other by diffing
matching files.

The pieces, bottom to top:

* :class:`Future` -- a :class:`concurrent.futures.Future` that also carries
  its task (function, arguments, priority, start deadline) until it runs, so
  a queued task costs one object.
* :class:`Engine` -- priority lanes (FIFO within a level, higher first), an
  optional bound on the number of queued tasks, counters, latency
  histograms, and the worker loop. Workers park on a private lock when there
  is nothing to do and are woken one at a time, only while queued tasks
  outnumber the workers already on their way.
* :class:`Worker` -- one worker thread's handle: its park lock, its resource
  (for the Runner) and its retire flag.

Example::

    >>> import threading
    >>> engine = Engine()
    >>> worker = Worker()
    >>> engine.add_workers(1)
    >>> t = threading.Thread(target=engine.worker_loop, args=(worker,))
    >>> t.start()
    >>> engine.submit(pow, (2, 10), None).result()
    1024
    >>> engine.close()
    0
    >>> t.join()
"""

from __future__ import annotations

# What Engine.worker_loop returns, also here as in the C core's module.
from ._contract import EXIT_REPLACE as EXIT_REPLACE
from ._contract import EXIT_RETIRE as EXIT_RETIRE
from ._contract import EXIT_SHUTDOWN as EXIT_SHUTDOWN
from ._units.engine import Engine, executor_submit
from ._units.future import Future
from ._units.running import running_future
from ._units.tasks import ChunkItemError, run_chunk
from ._units.workers import Worker

__all__ = [
    "ChunkItemError",
    "Engine",
    "Future",
    "Worker",
    "IMPLEMENTATION",
    "executor_submit",
    "run_chunk",
    "running_future",
]

IMPLEMENTATION = "py"
