"""The cloud adapter: the WebSocket session with the speech service, the warm sockets kept
between requests, the key check and the choice of region. The protocol itself (URLs, messages,
parsing) and the warm-socket policy are in :mod:`~wyoming_lightning.core`; this package does
their I/O."""
