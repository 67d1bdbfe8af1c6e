"""Benchmarks: ``python -m benchmarks [TABLE ...] [--json FILE]`` (see benchmarks/__main__.py).

The tables run the bridge and the emulator as subprocesses on loopback and load them from
this process; docs/benchmarks.md has the figures. ``python -m benchmarks.load`` is a steady
load (optionally under py-spy) for profiling. ``benchmarks/vad_gate.py`` (the VAD gate alone),
``benchmarks/soak.py`` (faults and memory over many requests) and ``benchmarks/silero_heap.py``
(issue 15's mechanism in one process) run as scripts of their own.
"""
