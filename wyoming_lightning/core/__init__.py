"""The core: everything that decides, and nothing that waits on a socket.

Audio conversion and framing, the voice-activity gate (:mod:`.vad`), the segmenter (where an
utterance starts and ends, the pause rule, the end of the turn), the request machine and its
events and actions, settling the service's finals, the service protocol (URLs, dialects,
parsing), the warm-socket policy, error codes and languages. Each is fed events and returns
actions; the adapters (:mod:`~wyoming_lightning.wyoming`, :mod:`~wyoming_lightning.cloud`) do the
I/O. An import contract in ``pyproject.toml`` (checked by the test suite) keeps ``asyncio``,
``socket``, ``sqlite3``, ``websockets``, ``wyoming`` and ``prometheus_client`` out of it.
"""
