"""What the user sees on stderr while a request runs: audio sent, time elapsed, partial text."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Progress on stderr: one live line on a terminal, plain lines in a log or a pipe."""

    def __init__(self, stream: TextIO, enabled: bool = True) -> None:
        self._stream = stream
        self._enabled = enabled
        self._live = enabled and stream.isatty()
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._line = ""
        self.sent_s = 0.0

    def _elapsed(self) -> float:
        return time.monotonic() - self._start

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self._live or (not force and now - self._last_draw < 0.1):
            return
        self._last_draw = now
        status = f"sent {self.sent_s:5.1f} s of audio | {self._elapsed():5.1f} s elapsed"
        if self._line:
            status += f" | {self._line}"
        width = 120
        self._stream.write("\r\x1b[K" + status[:width])
        self._stream.flush()

    def _print(self, text: str) -> None:
        if self._live:
            self._stream.write("\r\x1b[K")
        self._stream.write(text + "\n")
        self._stream.flush()

    def audio(self, seconds: float) -> None:
        self.sent_s += seconds
        self._draw()

    def partial(self, text: str) -> None:
        if not self._enabled or not text:
            return
        if self._live:
            self._line = f"… {text}"
            self._draw(force=True)
        else:
            self._print(f"partial: {text}")

    def note(self, text: str) -> None:
        if self._enabled:
            self._print(text)
            self._draw(force=True)

    def audio_done(self, reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        self.note(f"sent {self.sent_s:.2f} s of audio in {self._elapsed():.2f} s{why}")

    def finish(self, text: str) -> None:
        if self._enabled:
            self._print(f"{text} after {self._elapsed():.2f} s")
