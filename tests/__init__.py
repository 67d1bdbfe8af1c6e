"""The test suite, a package so that tests and benchmarks import one kit as ``tests.kit``.

Folders group tests by what they exercise: ``core`` (no sockets), ``bridge`` (the server over
loopback against the emulator), ``emulator`` (the service stand-in alone) and ``deploy``
(processes, Docker, the add-on, Home Assistant and other side environments).
"""
