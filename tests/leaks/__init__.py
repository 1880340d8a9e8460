"""Leak checks: weakref release tests (fast) and the million-task soak
scripts they run in subprocesses (see soak.py)."""
