"""What tests and benchmarks share: speech sets, WER, the bridge harness, statistics.

Import it as ``tests.kit.<module>`` from the repository root: pytest puts the root on
``sys.path`` itself (``tests`` is a package) and ``python -m benchmarks`` runs from there, so
no module here edits ``sys.path``.
"""
