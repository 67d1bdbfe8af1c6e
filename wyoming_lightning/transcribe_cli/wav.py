"""WAV files: read any PCM WAV as it is, and cut it into chunks sent at once or in real time."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wyoming_lightning.core.audio import PcmFormat
from wyoming_lightning.transcribe_cli.status import ClientError

_RIFF_PCM = 1
_RIFF_EXTENSIBLE = 0xFFFE
_PCM_SUBFORMAT_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


@dataclass(frozen=True)
class WavAudio:
    """A WAV file's PCM in the form it will be sent (its own rate, width and channels)."""

    fmt: PcmFormat
    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (self.fmt.rate * self.fmt.frame_bytes)


def read_wav(path: Path) -> WavAudio:
    """Any PCM WAV, including WAVE_FORMAT_EXTENSIBLE (which the ``wave`` module of Python 3.11
    rejects); the audio is sent as it is, except that unsigned 8-bit becomes signed 16-bit,
    because Wyoming servers disagree on what an 8-bit sample means."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ClientError(f"cannot read {path}: {err.strerror or err}") from None
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ClientError(f"{path} is not a WAV file")
    fmt: tuple[int, int, int, int] | None = None
    pcm: bytes | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt " and len(body) >= 16:
            tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", body)
            if tag == _RIFF_EXTENSIBLE and len(body) >= 40:
                subformat = body[24:40]
                tag = struct.unpack_from("<H", subformat)[0]
                if subformat[2:] != _PCM_SUBFORMAT_TAIL:
                    tag = -1
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            pcm = body
        offset += 8 + size + (size & 1)  # chunks are word-aligned
    if fmt is None or pcm is None:
        raise ClientError(f"{path}: a WAV file needs a fmt and a data chunk")
    tag, channels, rate, bits = fmt
    if tag != _RIFF_PCM:
        raise ClientError(
            f"{path}: only PCM WAV files can be sent (this one is not integer PCM); "
            f"convert it first, e.g.: sox {path} -b 16 out.wav"
        )
    if bits % 8 or not 8 <= bits <= 32:
        raise ClientError(f"{path}: {bits}-bit samples are not supported")
    width = bits // 8
    pcm = pcm[: len(pcm) - len(pcm) % (width * channels)]
    if width == 1:
        unsigned = np.frombuffer(pcm, dtype=np.uint8).astype(np.int16)
        pcm = ((unsigned - 128) << 8).astype("<i2").tobytes()
        width = 2
    audio = WavAudio(PcmFormat(rate=rate, width=width, channels=channels), pcm)
    if audio.fmt.channels < 1 or audio.fmt.rate < 1:
        raise ClientError(f"{path}: the WAV header is damaged (rate {rate}, {channels} channels)")
    return audio


def blocks_of(pcm: bytes, fmt: PcmFormat, chunk_ms: int) -> Iterable[bytes]:
    step = max(1, fmt.rate * chunk_ms // 1000) * fmt.frame_bytes
    return (pcm[i : i + step] for i in range(0, len(pcm), step))


async def paced(blocks: Iterable[bytes], fmt: PcmFormat, realtime: bool) -> AsyncIterator[bytes]:
    """Yield blocks at once, or as a live source would: on a clock, never drifting."""
    start = time.monotonic()
    sent = 0.0
    for block in blocks:
        if realtime:
            delay = start + sent - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        yield block
        sent += len(block) / (fmt.rate * fmt.frame_bytes)
