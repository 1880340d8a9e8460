"""The core's units, one concept each, in both cores.

``NAME.pxi`` is a unit of the Cython core: ``_core.pyx`` includes them all
into one extension module, and ``_core.pxd`` includes each one's
declarations, ``NAME.pxd``. ``NAME.py`` is its pure-Python twin, which
``_core_py.py`` gathers. Two units exist only in C, and the contract says
so (``_contract.C_ONLY_UNITS``): what ``concurrent.futures.wait()`` relies
on (``waiters.pxi``; the twin is the stdlib's own ``Future``) and who stays
awake on a free-threaded build (``awake_policy.pxi``).
"""
