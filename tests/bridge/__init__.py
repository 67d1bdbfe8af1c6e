"""The server over loopback against the emulator, driven by real Wyoming clients."""
