"""Tests without sockets: the request machine, the VAD gate, the protocol, config, audio."""
