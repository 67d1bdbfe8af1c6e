"""Benchmarks: run each module as a script (python benchmarks/<name>.py)."""
