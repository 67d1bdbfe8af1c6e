"""PCM shape, conversion to 16 kHz mono s16le, and fixed-size framing.

Everything downstream (the VAD gate, the cloud service) speaks one format:
16 kHz, 16-bit signed little-endian, mono. Clients may send anything a WAV file
can hold, in chunks that need not respect sample-frame boundaries, so the
converter is a streaming, sans-I/O object: bytes in, bytes out, state kept
between calls. No sockets, no files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import soxr

from wyoming_lightning.core.pipeline_format import CHANNELS, SAMPLE_RATE, SAMPLE_WIDTH

MIN_RATE: Final = 8000
MAX_RATE: Final = 48000
MIN_WIDTH: Final = 1
MAX_WIDTH: Final = 4
MIN_CHANNELS: Final = 1
MAX_CHANNELS: Final = 8

#: soxr quality preset. "HQ" is a 20-bit-accurate, steep anti-aliasing filter:
#: far beyond what a 16-bit output needs, at a fraction of VHQ's cost.
RESAMPLE_QUALITY: Final = "HQ"

_F32 = npt.NDArray[np.float32]


class AudioFormatError(ValueError):
    """The client's audio format cannot be converted (the message says why)."""


@dataclass(frozen=True)
class PcmFormat:
    """Shape of interleaved PCM as announced by a Wyoming ``audio-start``.

    ``width`` is bytes per sample: 1 = unsigned 8-bit (as in WAV), 2/3/4 = signed
    little-endian, 3 being packed 24-bit.
    """

    rate: int
    width: int
    channels: int

    @property
    def frame_bytes(self) -> int:
        """Bytes per sample-frame (one sample for every channel)."""
        return self.width * self.channels

    @property
    def is_target(self) -> bool:
        """True for 16 kHz mono s16, which needs no conversion at all."""
        return (self.rate, self.width, self.channels) == (
            SAMPLE_RATE,
            SAMPLE_WIDTH,
            CHANNELS,
        )

    def validate(self) -> None:
        """Raise AudioFormatError, with what is supported, if this shape is unusable."""
        problems: list[str] = []
        if not _is_int(self.rate) or not MIN_RATE <= self.rate <= MAX_RATE:
            problems.append(f"sample rate {self.rate!r} Hz (supported: {MIN_RATE}..{MAX_RATE} Hz)")
        if not _is_int(self.width) or not MIN_WIDTH <= self.width <= MAX_WIDTH:
            problems.append(
                f"sample width {self.width!r} bytes (supported: 1 = unsigned 8-bit, "
                "2 = 16-bit, 3 = 24-bit, 4 = 32-bit signed little-endian)"
            )
        if not _is_int(self.channels) or not MIN_CHANNELS <= self.channels <= MAX_CHANNELS:
            problems.append(
                f"channel count {self.channels!r} (supported: {MIN_CHANNELS}..{MAX_CHANNELS})"
            )
        if problems:
            raise AudioFormatError("unsupported audio format: " + "; ".join(problems))


def _is_int(value: object) -> bool:
    # bool is an int subclass; a rate of True is a caller bug, not 1 Hz.
    return isinstance(value, int) and not isinstance(value, bool)


def _decode(data: bytes | bytearray | memoryview, fmt: PcmFormat) -> _F32:
    """Whole sample-frames -> float32 mono in [-1, 1), channels averaged."""
    width = fmt.width
    if width == 1:
        samples = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
        # Place the 3 bytes in the top of an int32 so the sign comes for free.
        wide = np.zeros((raw.shape[0], 4), dtype=np.uint8)
        wide[:, 1:] = raw
        samples = wide.view("<i4").reshape(-1).astype(np.float32) / 2147483648.0
    else:
        samples = (np.frombuffer(data, dtype="<i4").astype(np.float64) / 2147483648.0).astype(
            np.float32
        )
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels).mean(axis=1, dtype=np.float32)
    return samples


def _encode_s16(samples: _F32) -> bytes:
    """float32 in [-1, 1) -> s16le bytes, rounded and clipped (resampling may overshoot)."""
    scaled: _F32 = np.rint(samples * np.float32(32768.0))
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    encoded: bytes = scaled.astype("<i2").tobytes()
    return encoded


class AudioConverter:
    """Streaming converter from any supported PCM shape to 16 kHz mono s16le.

    Feed ``convert`` the payload of every audio chunk in order and ``flush`` once
    at the end. A chunk may end in the middle of a sample-frame; the remainder is
    held until the next chunk. Resampling uses soxr's streaming resampler, a real
    anti-aliasing filter, so a 12 kHz tone at 48 kHz disappears instead of folding
    down to 4 kHz as naive sample dropping would make it.

    16 kHz mono s16 input (Home Assistant) takes a fast path that hands back the
    very same bytes object whenever the chunk holds whole samples.
    """

    def __init__(self, fmt: PcmFormat) -> None:
        fmt.validate()
        self.fmt: Final = fmt
        self._frame_bytes = fmt.frame_bytes
        self._pending = bytearray()
        self._passthrough = fmt.is_target
        self._resampler: soxr.ResampleStream | None = None
        if fmt.rate != SAMPLE_RATE:
            self._resampler = soxr.ResampleStream(
                fmt.rate, SAMPLE_RATE, 1, dtype="float32", quality=RESAMPLE_QUALITY
            )
        self._dropped_bytes = 0

    @property
    def dropped_bytes(self) -> int:
        """Bytes of an incomplete trailing sample-frame discarded by ``flush`` (for logging)."""
        return self._dropped_bytes

    def convert(self, data: bytes | bytearray | memoryview) -> bytes:
        """Convert the next chunk; may return b"" while the resampler fills."""
        if self._passthrough and not self._pending and len(data) % 2 == 0:
            return data if isinstance(data, bytes) else bytes(data)
        whole = self._take_whole_frames(data)
        if not whole:
            return b""
        if self._passthrough:
            return whole
        samples = _decode(whole, self.fmt)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        return _encode_s16(samples)

    def flush(self) -> bytes:
        """Drain the resampler at end of stream; drops (and counts) a partial sample-frame.

        The converter is ready for a new stream afterwards.
        """
        self._dropped_bytes += len(self._pending)
        self._pending.clear()
        if self._resampler is None:
            return b""
        tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._resampler.clear()
        return _encode_s16(tail) if tail.size else b""

    def _take_whole_frames(self, data: bytes | bytearray | memoryview) -> bytes:
        """Join held bytes with ``data`` and return the whole sample-frames, keeping the rest."""
        size = self._frame_bytes
        if not self._pending:
            cut = len(data) - len(data) % size
            if cut == len(data):
                return data if isinstance(data, bytes) else bytes(data)
            view = memoryview(data)
            self._pending += view[cut:]
            return bytes(view[:cut])
        self._pending += data
        cut = len(self._pending) - len(self._pending) % size
        whole = bytes(self._pending[:cut])
        del self._pending[:cut]
        return whole


class Framer:
    """Cuts a byte stream into fixed-size frames, keeping the remainder between pushes.

    VAD engines decide on fixed frames (480 or 512 samples) while clients send
    arbitrary chunk sizes. Copies each input byte at most twice whatever the
    chunking, so cost stays linear in the stream length.
    """

    def __init__(self, frame_bytes: int) -> None:
        if frame_bytes <= 0:
            raise ValueError(f"frame_bytes must be positive, got {frame_bytes}")
        self.frame_bytes: Final = frame_bytes
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back waiting for a complete frame."""
        return len(self._buffer)

    def push(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add ``data``; return every frame completed by it, in order."""
        size = self.frame_bytes
        buffer = self._buffer
        length = len(data)
        if length < size or buffer:
            # The usual case (chunks smaller than a frame): held, and now and then one frame.
            buffer += data
            held = len(buffer)
            if held < size:
                return []
            if held == size:
                frame = bytes(buffer)
                buffer.clear()
                return [frame]
        else:
            if length == size and isinstance(data, bytes):
                return [data]
            view = memoryview(data)
            cut = length - length % size
            frames = [bytes(view[i : i + size]) for i in range(0, cut, size)]
            if cut < length:
                buffer += view[cut:]
            return frames
        cut = held - held % size
        with memoryview(buffer) as view:
            frames = [bytes(view[i : i + size]) for i in range(0, cut, size)]
        del buffer[:cut]
        return frames

    def flush(self) -> bytes:
        """Return (and forget) the incomplete remainder."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest
