"""The offline recognizer: Whisper tiny.en in this process (:mod:`.whisper`), used as the
fallback when the service fails, or alone without a key (:mod:`.recognizer`). Optional (the
``local`` extra); the emulator's Whisper recognizer shares :mod:`.whisper`."""
