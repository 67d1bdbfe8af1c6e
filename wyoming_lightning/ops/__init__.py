"""Operations: who may spend the key (the allow-list and per-client slots, the daily budget),
the usage store and report, metrics, the recent requests, heap care and listening sockets.

The adapters reach it through one object, :class:`~wyoming_lightning.ops.guard.Guard`, at a few
named points (admit, observe, close); the pure parts (access, quota, recent) do no I/O."""
