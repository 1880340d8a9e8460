#!/usr/bin/env python3
"""The side-by-side comparison of issue 2: conexe (each core) against
``concurrent.futures.ThreadPoolExecutor`` in one process, printing ratios.

A thin wrapper over ``python -m conexe bench`` (same options)::

    python benchmarks/compare.py --quick
    python benchmarks/compare.py --repeat 7 --only a,c,d --json out.json
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # Run from a source checkout without installing: use src/ next to us.
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    if os.path.isdir(os.path.join(src, "conexe")) and src not in sys.path:
        sys.path.insert(0, src)
    from conexe.bench.cli import main

    sys.exit(main(sys.argv[1:]))
