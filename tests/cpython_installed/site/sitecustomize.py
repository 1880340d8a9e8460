"""Child interpreters of tests/cpython_installed/run.py start with conexe in the slot.

run.py starts CPython's test scripts with this folder on PYTHONPATH, so
Python imports this module at start-up (the ``site`` module's hook).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import slot  # noqa: E402

del sys.path[0]
slot.install()
