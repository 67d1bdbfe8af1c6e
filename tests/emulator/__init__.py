"""The emulator of the service on its own: its protocol, faults, recognizers, CLI."""
