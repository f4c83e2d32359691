"""Micro benchmarks of the hot paths (pytest-benchmark).

Not part of the test suite: run them with bench/micro/gate.py, which
compares a fresh run against bench/baseline.json.
"""
