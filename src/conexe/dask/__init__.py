"""conexe on a Dask cluster: the same APIs, one constructor argument apart.

When the work outgrows one machine, swap ``conexe.ConcurrentExecutor(...)``
for ``conexe.dask.ConcurrentExecutor(client, ...)`` (and likewise
``KeyedExecutor`` and ``Runner``); ``client`` is a ``distributed.Client``
connected to any Dask cluster, from a laptop ``LocalCluster`` to Kubernetes
or Slurm. Functions and arguments must pickle. See ``docs/dask.md`` for
what changes and when switching pays.

    >>> from distributed import Client, LocalCluster             # doctest: +SKIP
    >>> import conexe.dask
    >>> client = Client(LocalCluster(n_workers=2, dashboard_address=None))  # doctest: +SKIP
    >>> with conexe.dask.ConcurrentExecutor(client) as ex:       # doctest: +SKIP
    ...     ex.submit(pow, 2, 10).result()
    1024

This sub-package is an optional edge: nothing else in conexe imports it.
"""

from __future__ import annotations

try:
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "conexe.dask needs Dask's distributed package, which is not installed; "
        'install it with: pip install "conexe[dask]"'
    ) from exc

from .executor import ConcurrentExecutor
from .keyed import KeyedExecutor, KeyedStats
from .runner import Runner, RunnerStats

__all__ = ["ConcurrentExecutor", "KeyedExecutor", "KeyedStats", "Runner", "RunnerStats"]
