"""``python -m tests.stress``: the long stress run (see run.py)."""

import sys

from .run import main

sys.exit(main())
