"""``python -m conexe bench``: conexe against ``ThreadPoolExecutor``.

* :mod:`.cli`: the command, its table and its JSON;
* :mod:`.idioms`: every way of waiting for a batch of tasks, timed alike;
* :mod:`.subjects`: what runs each scenario (each core, TPE);
* :mod:`.baselines`: what conexe is measured against where the stdlib has
  no direct equivalent (per-key order, worker-owned resources);
* :mod:`.scaling`: how throughput grows with workers (``--scaling``).

``benchmarks/`` in the repository uses the same pieces for its scripts.
"""

from .cli import main

__all__ = ["main"]
