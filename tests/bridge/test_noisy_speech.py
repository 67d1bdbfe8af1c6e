"""Real speech in steady noise through the real bridge: the words of the command come through.

A few recordings of tests/data/human mixed with a fan, mains hum or pink noise
(tests/kit/noisy_speech.py), streamed as Home Assistant sends them (real time, default
settings: silero gate, Pulse URL) to the emulator's Whisper recognizer. The same stream heard
straight by the same recognizer is the bar: every word of the reference it gets right must also
come through the bridge. The mixes are ones where the gate once lost words at the edges of the
speech (``python -m benchmarks noise`` prints them all; these are the clearest): a first word
the engine scored low in the noise, which a fixed pre-roll did not reach.
"""

from __future__ import annotations

import asyncio

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from tests.kit import human_speech as hs
from tests.kit import noisy_speech as ns
from tests.kit.bridge import API_KEY, bridge_port, bridge_settings, read_answer, running_bridge
from tests.kit.wer import align, normalise_words
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer, create_recognizer
from wyoming_lightning.settings.config import DEFAULT_VAD

CHUNK_S = 0.02
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: (recording, noise, SNR dB): chosen with ``python -m benchmarks.noise --words``, each the
#: first word of the command lost through the gate before the onset look-back (silero fired
#: late in the noise and 300 ms of pre-roll did not reach the word's start): "four" of "four
#: queen of clubs" in hum, "montreal" in brown noise at 0 dB, "sorry" under a TV's babble.
MIXES: tuple[tuple[str, ns.NoiseKind, float], ...] = (
    ("cmu_cards_002", "hum", 20),
    ("mfa_uh", "brown", 0),
    ("asterisk_vm_mailboxfull", "babble", 20),
)


def _right_words(reference: str, heard: str) -> list[str]:
    """The reference words ``heard`` got right, in order."""
    ref, hyp = normalise_words(reference), normalise_words(heard)
    return [
        ref[r] for r, h in align(ref, hyp) if r is not None and h is not None and ref[r] == hyp[h]
    ]


async def _spoken(port: int, pcm: bytes) -> str:
    """One request paced as a microphone records it (an absolute schedule), then its answer."""
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    try:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        loop = asyncio.get_running_loop()
        start = loop.time()
        step = round(2 * 16000 * CHUNK_S)
        for index, offset in enumerate(range(0, len(pcm), step)):
            chunk = AudioChunk(rate=16000, width=2, channels=1, audio=pcm[offset : offset + step])
            await client.write_event(chunk.event())
            await asyncio.sleep(max(0.0, start + (index + 1) * CHUNK_S - loop.time()))
        await client.write_event(AudioStop().event())
        answer = await read_answer(client, until=("transcript", "error"))
    finally:
        await client.disconnect()
    assert answer.error is None, answer.error
    return answer.transcript or ""


async def _through_bridge(streams: list[bytes]) -> list[str]:
    config = EmulatorConfig(api_key=API_KEY, recognizer="whisper")
    async with EmulatorServer(config, host="127.0.0.1", port=0) as emulator:
        settings = bridge_settings(emulator.live_url, vad=DEFAULT_VAD, rejoin=True)
        async with running_bridge(settings) as server:
            port = bridge_port(server)
            return [await _spoken(port, pcm) for pcm in streams]


def test_no_word_heard_straight_is_lost_in_noise() -> None:
    clips = {c.name: c for c in hs.load_human_speech()}
    cases = [(clips[name], ns.Condition(noise, snr)) for name, noise, snr in MIXES]
    streams = [ns.noisy_stream(clip, condition) for clip, condition in cases]
    recognizer = create_recognizer("whisper")
    straight = [" ".join(w.text for w in recognizer.transcribe(pcm, "en")) for pcm in streams]
    bridged = asyncio.run(_through_bridge(streams))
    lost = {}
    for (clip, condition), heard, answer in zip(cases, straight, bridged, strict=True):
        missing = _missing(_right_words(clip.text, heard), _right_words(clip.text, answer))
        if missing:
            lost[f"{clip.name} in {condition.label}"] = (missing, heard, answer)
    assert not lost, lost


def _missing(wanted: list[str], got: list[str]) -> list[str]:
    """Words of ``wanted`` not in ``got`` (as a multiset)."""
    left = list(got)
    out = []
    for word in wanted:
        if word in left:
            left.remove(word)
        else:
            out.append(word)
    return out
