"""Stress tests and the stress runner (``python -m tests.stress --help``)."""
