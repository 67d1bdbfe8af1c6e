"""The VAD gate: decides which stretches of a stream are worth sending to the cloud.

Sending only speech (plus padding) saves money and keeps the recogniser from
hallucinating on noise, but a clipped word onset or tail is worse than a few
hundred milliseconds of extra silence. Hence: pre-roll before the first speech
frame, a hangover after the last one, a minimum run of speech before opening
(clicks and door slams stay out) and a hard cap for segments held open by a TV.
Inside a segment, loud audio the engine doubts (falsetto, laughed words) is
still speech for a while: a neural VAD's dip must not cut a command in pieces.

Sans-I/O: feed 16 kHz mono s16le bytes of any chunk size to ``process``; it
returns events. Events depend only on the audio, never on how it was chunked.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

from wyoming_lightning.core.audio import Framer
from wyoming_lightning.core.pipeline_format import SAMPLE_RATE, SAMPLE_WIDTH
from wyoming_lightning.core.vad.base import VadEngine
from wyoming_lightning.core.vad.events import (
    EndReason,
    GateEvent,
    SpeechAudio,
    SpeechEnd,
    SpeechStart,
)
from wyoming_lightning.core.vad.levels import (
    FLOOR_MIN_DB,
    BandEnergy,
    NoiseFloor,
    SpeechPeak,
    band_energy,
)

_BYTES_PER_MS: Final = SAMPLE_RATE * SAMPLE_WIDTH // 1000
#: Skipped frames the engine hears again before it judges the next one (``_warm_up``).
WARM_UP_FRAMES: Final = 3
#: A noise floor within this many dB of ``FLOOR_MIN_DB`` is digital silence, not a background.
_NO_NOISE_DB: Final = 10.0


@dataclass
class GateConfig:
    """Timing and threshold knobs of the gate.

    ``threshold`` is the engine probability above which a frame starts speech;
    once in speech, frames stay speech while above ``off_threshold`` (hysteresis,
    so a probability hovering around one value does not chatter). ``None`` means
    ``threshold - 0.15``.

    The gate opens once the speech frames within ``onset_window_ms`` add up to
    ``min_speech_ms``: a click (one or two frames) never does, while noisy
    speech whose syllables the engine only catches in short bursts still opens
    the gate early enough for the pre-roll to hold the word onset.

    Once a segment is open, a frame the engine doubts still counts as speech
    (for the hangover and for ``silence_ms``, the pause) when it is loud: at
    least ``sustain_above_floor_db`` above the background and at most
    ``sustain_below_peak_db`` below the stream's recent speech peaks (``None``
    turns this off), for at most ``sustain_max_ms`` after the engine's last
    speech frame. Measured on real speech (benchmarks/gate_diff.py): silero
    scores falsetto words near zero and dips inside laughed or breathy
    words, and each dip either cut words out of a command or split it into
    fragments the recognizer reads worse than the whole. The bound keeps a TV
    or music after the command from holding the gate open; level alone never
    opens a segment, and steady noise sits on the floor.

    The pre-roll is counted back from where the speech began, not from where the engine
    noticed it: before the first speech frame, the frames that stand at least
    ``lookback_above_floor_db`` above the background (``None``: off), up to ``lookback_max_ms``
    of them, are taken as the word's onset, and ``pre_roll_ms`` goes before that. In steady
    noise a neural VAD scores a soft onset low and opens late; the noise floor shows where the
    word really started. Clean speech rises above the floor where the engine fires, so there
    the pre-roll stays ``pre_roll_ms``; after digital silence (no background measured yet)
    there is none. Measured (``python -m benchmarks noise``): of 557 noisy and clean streams
    of real speech, 27 had the first audio sent less than 100 ms before the speech, 23 with the
    look-back (the rest are words silero misses for seconds, which no look-back reaches).

    A segment that opens within ``gap_max_ms`` of the last one's close carries the rest of the
    pause (``SpeechStart.gap``): the gate sends none of it, but a caller that keeps one
    utterance open over the pause (dictation) can send the pause whole. Whisper read 15-30 s
    recordings with their pauses shortened to hangover + pre-roll worse than whole (one
    recording 10 errors against 4, ``python -m benchmarks noise --only long``). 0: no gap.
    """

    pre_roll_ms: int = 300
    hangover_ms: int = 500
    threshold: float = 0.5
    off_threshold: float | None = None
    min_speech_ms: int = 90
    onset_window_ms: int = 240
    max_utterance_s: float = 30.0
    sustain_above_floor_db: float | None = 15.0
    sustain_below_peak_db: float = 20.0
    sustain_max_ms: int = 1500
    lookback_above_floor_db: float | None = 6.0
    lookback_max_ms: int = 600
    skip_quiet_db: float | None = None
    """Frames less than this many dB above the background, with no speech near (no candidate
    onset, the last frame not speech, past the first onset window; idle or in a pause), are
    judged silence without asking the engine (``None``: every frame is asked). For an
    engine that costs far more than the level (silero's model: about 3.5 ms of CPU per audio
    second, the level 0.25), the quiet around and within a command is worth not asking about
    (a third of the ``cost`` table's frames). An engine that
    follows the background itself (webrtc's) must see every frame: leave it ``None`` there."""
    gap_max_ms: int = 2000

    @property
    def effective_off_threshold(self) -> float:
        if self.off_threshold is not None:
            return self.off_threshold
        return max(0.0, self.threshold - 0.15)

    def validate(self) -> None:
        """Raise ValueError naming the first nonsensical setting."""
        if self.pre_roll_ms < 0:
            raise ValueError(f"pre_roll_ms must be >= 0, got {self.pre_roll_ms}")
        if self.hangover_ms < 0:
            raise ValueError(f"hangover_ms must be >= 0, got {self.hangover_ms}")
        if self.min_speech_ms < 0:
            raise ValueError(f"min_speech_ms must be >= 0, got {self.min_speech_ms}")
        if self.onset_window_ms < self.min_speech_ms:
            raise ValueError(
                f"onset_window_ms ({self.onset_window_ms}) must be >= "
                f"min_speech_ms ({self.min_speech_ms})"
            )
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be within 0..1, got {self.threshold}")
        if not 0.0 <= self.effective_off_threshold <= self.threshold:
            raise ValueError(
                f"off_threshold must be within 0..threshold ({self.threshold}), "
                f"got {self.off_threshold}"
            )
        if self.sustain_above_floor_db is not None and self.sustain_above_floor_db < 0:
            raise ValueError(
                f"sustain_above_floor_db must be >= 0, got {self.sustain_above_floor_db}"
            )
        if self.sustain_below_peak_db < 0:
            raise ValueError(
                f"sustain_below_peak_db must be >= 0, got {self.sustain_below_peak_db}"
            )
        if self.lookback_above_floor_db is not None and self.lookback_above_floor_db < 0:
            raise ValueError(
                f"lookback_above_floor_db must be >= 0, got {self.lookback_above_floor_db}"
            )
        if self.lookback_max_ms < 0:
            raise ValueError(f"lookback_max_ms must be >= 0, got {self.lookback_max_ms}")
        if self.skip_quiet_db is not None and not 0 <= self.skip_quiet_db < math.inf:
            raise ValueError(f"skip_quiet_db must be >= 0, got {self.skip_quiet_db}")
        if self.gap_max_ms < 0:
            raise ValueError(f"gap_max_ms must be >= 0, got {self.gap_max_ms}")
        if not self.max_utterance_s > 0:
            raise ValueError(f"max_utterance_s must be > 0, got {self.max_utterance_s}")


class _State(Enum):
    IDLE = auto()  # waiting for speech; recent audio kept for pre-roll
    OPEN = auto()  # inside a segment; every frame goes out
    BLOCKED = auto()  # force-closed by max_utterance; waiting for real silence


class VadGate:
    """Segments a 16 kHz mono s16le stream into speech segments.

    ``engine=None`` is ``--vad off``: everything passes, one segment from the
    first audio to ``flush``, chunks passed through untouched.

    Within a segment, ``SpeechStart.pre_roll`` followed by every ``SpeechAudio``
    is the original audio, contiguous: nothing lost, nothing repeated. One gate
    (and one engine) per stream; ``reset`` to reuse both.
    """

    def __init__(self, engine: VadEngine | None, config: GateConfig | None = None) -> None:
        self.config: Final = config if config is not None else GateConfig()
        self.config.validate()
        self.engine: Final = engine
        cfg = self.config
        self._on_threshold = cfg.threshold
        self._off_threshold = cfg.effective_off_threshold
        self._pre_roll_bytes = round(cfg.pre_roll_ms * SAMPLE_RATE / 1000) * SAMPLE_WIDTH
        self._sustain_bytes = round(cfg.sustain_max_ms * SAMPLE_RATE / 1000) * SAMPLE_WIDTH
        self._max_segment_bytes = round(cfg.max_utterance_s * SAMPLE_RATE) * SAMPLE_WIDTH
        self._framer: Framer | None = None
        self._frame_bytes = 0
        self._min_speech_frames = self._onset_window_frames = self._hangover_frames = 1
        self._band: BandEnergy | None = None
        self._frame_s = 0.0
        self._lookback_frames = 0
        self._gap_max_bytes = 0
        self._history_keep = self._pre_roll_bytes
        if engine is not None:
            self._frame_bytes = engine.frame_samples * SAMPLE_WIDTH
            self._framer = Framer(self._frame_bytes)
            frame_ms = engine.frame_samples * 1000 / SAMPLE_RATE
            self._frame_s = frame_ms / 1000
            if (
                cfg.sustain_above_floor_db is not None
                or cfg.lookback_above_floor_db is not None
                or cfg.skip_quiet_db is not None
            ):
                self._band = band_energy(engine.frame_samples)
            if cfg.lookback_above_floor_db is not None:
                self._lookback_frames = math.floor(cfg.lookback_max_ms / frame_ms)
            lookback_bytes = self._lookback_frames * self._frame_bytes
            self._gap_max_bytes = round(cfg.gap_max_ms * SAMPLE_RATE / 1000) * SAMPLE_WIDTH
            self._history_keep = self._pre_roll_bytes + lookback_bytes + self._gap_max_bytes
            self._min_speech_frames = max(1, math.ceil(cfg.min_speech_ms / frame_ms))
            self._onset_window_frames = max(
                self._min_speech_frames, math.ceil(cfg.onset_window_ms / frame_ms)
            )
            self._hangover_frames = max(1, math.ceil(cfg.hangover_ms / frame_ms))
        self._clear()

    def reset(self) -> None:
        """Forget the stream (state, statistics, engine state) to start a new one."""
        if self.engine is not None:
            self.engine.reset()
        self._clear()

    def _clear(self) -> None:
        if self._framer is not None:
            self._framer.flush()
        self._state = _State.IDLE
        self._history = bytearray()  # idle audio before the candidate run
        # Frames since the first speech frame of a possible onset, and which are speech.
        self._candidate: deque[bytes] = deque()
        self._candidate_is_speech: deque[bool] = deque()
        self._candidate_speech = 0
        self._in_speech = False
        self._since_speech_bytes = 0
        self._silent_frames = 0
        self._segment_bytes = 0
        self._judged_bytes = 0
        self._in_bytes = 0
        self._out_bytes = 0
        self._speech_frames = 0
        self._skipped_frames = 0
        self._skipping = 0  # frames skipped since the engine was last asked
        self._segments = 0
        self._silence_bytes: int | None = None
        self._floor = NoiseFloor(frame_s=self._frame_s or 0.032)
        self._peak = SpeechPeak(frame_s=self._frame_s or 0.032)
        self._speech_end_bytes: int | None = None
        self._closed_at_bytes: int | None = None
        """Where the last segment closed for silence, in bytes judged (None: no such close)."""
        # Levels of the last judged frames (newest last), for the onset look-back.
        self._levels: deque[float] = deque(
            maxlen=self._lookback_frames + self._onset_window_frames + 1
        )

    # -- statistics -----------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True while a segment is open (between SpeechStart and SpeechEnd)."""
        return self._state is _State.OPEN

    @property
    def frame_ms(self) -> float:
        """The engine's frame: audio the gate may hold unjudged (0 with the VAD off)."""
        return self._frame_s * 1000

    @property
    def audio_in_ms(self) -> float:
        """Audio received by ``process``."""
        return self._in_bytes / _BYTES_PER_MS

    @property
    def audio_out_ms(self) -> float:
        """Audio emitted: pre-roll plus segment audio."""
        return self._out_bytes / _BYTES_PER_MS

    @property
    def speech_ms(self) -> float:
        """Audio in frames the engine judged speech (0 with the VAD off)."""
        return self._speech_frames * self._frame_bytes / _BYTES_PER_MS

    @property
    def skipped_ms(self) -> float:
        """Audio judged silence by its level alone, the engine not asked (``skip_quiet_db``)."""
        return self._skipped_frames * self._frame_bytes / _BYTES_PER_MS

    @property
    def segments(self) -> int:
        """Segments opened so far."""
        return self._segments

    @property
    def silence_ms(self) -> float | None:
        """Non-speech since the last speech frame of a segment, for endpointing.

        A loud frame the engine doubts counts as speech here too, within
        ``sustain_max_ms`` (see ``GateConfig``).

        ``None`` until a segment has opened (and always with the VAD off).
        Speech that never opened a segment (a click shorter than
        ``min_speech_ms``, a TV after a max_utterance cut) does not reset it.
        """
        if self._silence_bytes is None:
            return None
        return self._silence_bytes / _BYTES_PER_MS

    @property
    def speech_end_ms(self) -> float | None:
        """Where the last speech frame of a segment ended, in ms of the input stream.

        The pause a speaker makes is measured on the audio clock from here, not in whole
        judged frames: ``audio_in_ms - speech_end_ms`` counts the audio still waiting in the
        framer too, so a pause rule is not rounded up to the next frame boundary. ``None``
        until a segment has opened (and always with the VAD off); as ``silence_ms``, speech
        that opens no segment does not move it.
        """
        if self._speech_end_bytes is None:
            return None
        return self._speech_end_bytes / _BYTES_PER_MS

    # -- stream ---------------------------------------------------------------------

    def process(self, pcm: bytes | bytearray | memoryview) -> list[GateEvent]:
        """Feed the next chunk of 16 kHz mono s16le audio; return the events it caused."""
        self._in_bytes += len(pcm)
        if self._framer is None:
            return self._pass_through(pcm)
        events: list[GateEvent] = []
        for frame in self._framer.push(pcm):
            self._on_frame(frame, events)
        return events

    def flush(self) -> list[GateEvent]:
        """End of stream: close an open segment, sending the audio still buffered.

        An incomplete trailing frame is never judged; it is sent only if a
        segment is open. Statistics stay readable afterwards.
        """
        if self._framer is None:
            if self._state is _State.OPEN:
                self._state = _State.IDLE
                return [SpeechEnd("flush")]
            return []
        rest = self._framer.flush()
        events: list[GateEvent] = []
        if self._state is _State.OPEN:
            if rest:
                self._out_bytes += len(rest)
                events.append(SpeechAudio(rest))
            self._close("flush", events)
        return events

    def _pass_through(self, pcm: bytes | bytearray | memoryview) -> list[GateEvent]:
        if not pcm:
            return []
        data = pcm if isinstance(pcm, bytes) else bytes(pcm)
        self._out_bytes += len(data)
        if self._state is _State.OPEN:
            return [SpeechAudio(data)]
        self._state = _State.OPEN
        self._segments += 1
        start = (self._in_bytes - len(data)) // SAMPLE_WIDTH
        return [SpeechStart(b"", start), SpeechAudio(data)]

    def _on_frame(self, frame: bytes, events: list[GateEvent]) -> None:
        assert self.engine is not None
        level = floor = None
        if self._band is not None:
            level = self._band.of_frame(frame)
            floor = self._floor.update(level)
            self._levels.append(level)
        if self._quiet(level, floor):
            self._skipped_frames += 1
            self._skipping += 1
            speech = False
        else:
            if self._skipping:
                self._warm_up()
            threshold = self._off_threshold if self._in_speech else self._on_threshold
            speech = self.engine.speech_probability(frame) > threshold
        self._in_speech = speech
        if speech:
            self._speech_frames += 1
        self._judged_bytes += len(frame)
        loud = self._is_loud(level, floor, speech)

        state = self._state
        if state is _State.OPEN:
            self._segment_bytes += len(frame)
            self._out_bytes += len(frame)
            events.append(SpeechAudio(frame))
            if speech:
                self._since_speech_bytes = 0
            else:
                self._since_speech_bytes += len(frame)
            if speech or (loud and self._since_speech_bytes <= self._sustain_bytes):
                self._silent_frames = 0
                self._silence_bytes = 0
                self._speech_end_bytes = self._judged_bytes
            else:
                self._silence_bytes = (self._silence_bytes or 0) + len(frame)
                self._silent_frames += 1
            if self._silent_frames >= self._hangover_frames:
                self._close("silence", events)
            elif self._segment_bytes >= self._max_segment_bytes:
                self._close("max_utterance", events)
            return

        if self._silence_bytes is not None:
            self._silence_bytes += len(frame)
        if state is _State.BLOCKED:
            self._remember(frame)
            self._silent_frames = 0 if speech else self._silent_frames + 1
            if self._silent_frames >= self._hangover_frames:
                self._state = _State.IDLE
            return

        if not speech and not self._candidate:
            self._remember(frame)
            return
        candidate, is_speech = self._candidate, self._candidate_is_speech
        candidate.append(frame)
        is_speech.append(speech)
        self._candidate_speech += speech
        # Keep the candidate within the window and starting on a speech frame.
        while candidate and (len(candidate) > self._onset_window_frames or not is_speech[0]):
            self._remember(candidate.popleft())
            self._candidate_speech -= is_speech.popleft()
        if self._candidate_speech >= self._min_speech_frames:
            self._open(events)

    def _quiet(self, level: float | None, floor: float | None) -> bool:
        """True for a frame the engine need not judge: near the background with no speech near
        (the last frame not speech, no candidate onset), whether the gate is idle or in an open
        segment's pause (``GateConfig.skip_quiet_db``). The engine then never sees it; a
        recurrent model resumes from the quiet it last saw, which is what it skipped.

        The first onset window is judged whole: a stream may begin inside a word (the
        background is then its first frame's level), and silero notices an onset late when it
        has not heard the start of the stream, even digital silence (``python -m benchmarks
        noise``, clean: 4 -> 8 words lost at the onset when that silence was skipped)."""
        skip = self.config.skip_quiet_db
        return (
            skip is not None
            and level is not None
            and floor is not None
            and level < floor + skip
            and not self._in_speech
            and not self._candidate
            and self._judged_bytes >= self._onset_window_frames * self._frame_bytes
        )

    def _warm_up(self) -> None:
        """Before the engine judges a frame after skipping some, it hears the last of the
        skipped ones (answers unused): a recurrent model that resumes cold, from the quiet it
        heard long before, notices an onset late.

        They are replayed from the idle history, so in an open segment's pause (which the
        history does not keep) the model resumes directly. Measured (``python -m benchmarks
        noise``): replaying a pause's frames too split more commands (words lost at splits,
        fan 10 dB 39 -> 47, pink 10 dB 31 -> 38, hum 20 dB 11 -> 15)."""
        assert self.engine is not None
        count = min(self._skipping, WARM_UP_FRAMES)
        self._skipping = 0
        size = self._frame_bytes
        history = self._history
        start = len(history) - count * size
        for at in range(max(0, start), len(history) - size + 1, size):
            self.engine.speech_probability(bytes(history[at : at + size]))

    def _is_loud(self, level: float | None, floor: float | None, speech: bool) -> bool:
        """True for a frame loud enough to sustain an open segment; a speech frame's level
        goes to the peak."""
        if level is None or floor is None:
            return False
        if speech:
            self._peak.update(level)
            return False
        peak = self._peak.peak_db
        cfg = self.config
        return (
            cfg.sustain_above_floor_db is not None
            and peak is not None
            and level >= floor + cfg.sustain_above_floor_db
            and level >= peak - cfg.sustain_below_peak_db
        )

    def _pre_roll_length(self) -> int:
        """Bytes of idle history to send before the candidate run (see ``GateConfig``)."""
        history = len(self._history)
        onset = 0
        above = self.config.lookback_above_floor_db
        floor = self._floor.floor_db
        if above is not None and floor is not None and floor > FLOOR_MIN_DB + _NO_NOISE_DB:
            # The levels before the candidate run, newest first. Over digital silence (a floor
            # at or near the minimum, where it only creeps up from) there is no noise to hide an
            # onset: any room tone would stand above it and be taken for speech.
            earlier = list(self._levels)[: max(0, len(self._levels) - len(self._candidate))]
            for level in reversed(earlier[len(earlier) - self._lookback_frames :]):
                if level < floor + above:
                    break
                onset += self._frame_bytes
        return min(history, self._pre_roll_bytes + onset)

    def _open(self, events: list[GateEvent]) -> None:
        audio = b"".join(self._candidate)
        keep = self._pre_roll_length()
        history = self._history
        pre_roll = bytes(history[len(history) - keep :]) if keep else b""
        begin = self._judged_bytes - len(audio) - len(pre_roll)
        # The pause since the last close, if the history still holds all of it.
        pause = -1 if self._closed_at_bytes is None else begin - self._closed_at_bytes
        held = len(history) - keep
        gap = (
            bytes(history[held - pause : held])
            if 0 < pause <= min(self._gap_max_bytes, held)
            else b""
        )
        history.clear()
        self._candidate.clear()
        self._candidate_is_speech.clear()
        self._candidate_speech = 0
        events.append(SpeechStart(pre_roll, begin // SAMPLE_WIDTH, gap))
        events.append(SpeechAudio(audio))
        self._segments += 1
        self._segment_bytes = len(pre_roll) + len(audio)
        self._out_bytes += self._segment_bytes
        self._silent_frames = 0
        self._silence_bytes = 0
        self._speech_end_bytes = self._judged_bytes
        self._state = _State.OPEN
        if self._segment_bytes >= self._max_segment_bytes:
            self._close("max_utterance", events)

    def _close(self, reason: EndReason, events: list[GateEvent]) -> None:
        events.append(SpeechEnd(reason))
        self._closed_at_bytes = self._judged_bytes if reason == "silence" else None
        self._silent_frames = 0
        self._segment_bytes = 0
        self._state = _State.BLOCKED if reason == "max_utterance" else _State.IDLE

    def _remember(self, audio: bytes) -> None:
        """Keep idle audio for the next pre-roll, trimming in amortised O(1)."""
        history = self._history
        history += audio
        if len(history) > 2 * self._history_keep + len(audio):
            del history[: len(history) - self._history_keep]
