"""WebRTC VAD made independent of level: judged against the stream's own noise floor.

Plain webrtcvad reacts to absolute level. Measured on the speech test set:
steady noise at -30 dBFS (pink, brown, hum) or -20 dBFS (white) is "speech" in
95-100 % of frames, so the gate never closes; speech peaking at -40 dBFS loses
a third of its frames. Both have one cause, so one idea fixes both: judge each
frame relative to the stream.

- ``NoiseFloor`` follows the speech-band level of the background. A frame scores
  by how far it rises above that floor, against a margin that widens with how
  much the background itself fluctuates (brown noise swings by 5 dB from frame
  to frame, white noise by 1). Steady noise, however loud, sits on the floor.
- ``SpeechPeak`` drives an AGC: the frame handed to webrtcvad is amplified (up
  to 30 dB) so speech peaks reach a normal level, and a quiet microphone looks
  like an ordinary one.

The probability is that score, vetoed to 0 when webrtcvad rejects the
normalised frame. In practice the score does most of the work: webrtcvad
itself accepts tones, claps and loud noise alike.

Where it still fails (measured; benchmarks/vad_gate.py, tests/test_vad_speech.py):
speech at 0 dB SNR opens the gate late (a weak onset lost; with some noise
draws a whole short command never opens it), and anything loud and new that
is not steady noise opens it: a clap or door, a beep or chime, a fan switched
on mid-stream (for the 1.2 s the floor needs to catch up), and TV, music or
other voices. A stream that starts in the middle of a loud word loses up to
~60 ms, as the floor starts from the first frame.
"""

from __future__ import annotations

from typing import Final

import _webrtcvad
import numpy as np
import webrtcvad

from wyoming_lightning.core.pipeline_format import SAMPLE_RATE
from wyoming_lightning.core.vad.levels import NoiseFloor, SpeechPeak, band_energy

#: webrtcvad accepts 10, 20 or 30 ms; 30 ms gives it the most context per decision.
WEBRTC_FRAME_SAMPLES: Final = 480

_FRAME_S: Final = WEBRTC_FRAME_SAMPLES / SAMPLE_RATE

# Score: 0 at `margin + SPREAD_FACTOR * spread` dB above the floor, 1 at SCORE_RANGE_DB more.
# `spread` is the mean positive excursion of background frames above the floor;
# 2.5 x covers the loudest frame of white, pink and brown noise alike.
_MARGIN_DB: Final = 1.0
_SPREAD_FACTOR: Final = 2.5
_SCORE_RANGE_DB: Final = 4.0
_INITIAL_SPREAD_DB: Final = 1.0
_SPREAD_ALPHA: Final = 0.03  # per frame: follows the background over about a second
# Learnt from background only: frames at least 0.5 s after the last clear speech frame.
# Weak speech frames would otherwise inflate it and the threshold with it, until a
# slow sentence at 0 dB SNR lost its second half.
_SPREAD_HOLDOFF_FRAMES: Final = round(0.5 / _FRAME_S)

# AGC: speech-band peaks of normal speech sit near -15 dBFS.
_TARGET_PEAK_DB: Final = -15.0
_MAX_GAIN_DB: Final = 30.0


class WebRtcEngine:
    """webrtcvad behind a noise-floor tracker and an AGC (see the module docstring).

    ``normalise=False`` gives plain webrtcvad (probability 0 or 1), kept for comparison.
    """

    frame_samples: Final = WEBRTC_FRAME_SAMPLES

    def __init__(self, aggressiveness: int = 2, *, normalise: bool = True) -> None:
        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"webrtc aggressiveness must be 0..3, got {aggressiveness}")
        self._aggressiveness = aggressiveness
        self._normalise = normalise
        self._band_energy = band_energy(WEBRTC_FRAME_SAMPLES)
        self.reset()

    def reset(self) -> None:
        self._vad = webrtcvad.Vad(self._aggressiveness)
        self._handle = self._vad._vad  # the C state, for _webrtcvad.process
        self._scratch = np.empty(WEBRTC_FRAME_SAMPLES, np.float32)
        self._floor = NoiseFloor(frame_s=_FRAME_S)
        self._peak = SpeechPeak(frame_s=_FRAME_S)
        self._spread_db = _INITIAL_SPREAD_DB
        self._frames_since_speech = _SPREAD_HOLDOFF_FRAMES

    def speech_probability(self, frame: bytes) -> float:
        if not self._normalise:
            return 1.0 if self._vad.is_speech(frame, SAMPLE_RATE) else 0.0
        level_db = self._band_energy.of_frame(frame)
        snr_db = level_db - self._floor.update(level_db)
        low_db = _MARGIN_DB + _SPREAD_FACTOR * self._spread_db
        score = min(1.0, max(0.0, (snr_db - low_db) / _SCORE_RANGE_DB))
        if score >= 1.0:
            self._peak.update(level_db)
            self._frames_since_speech = 0
        else:
            self._frames_since_speech += 1
            if self._frames_since_speech >= _SPREAD_HOLDOFF_FRAMES:
                self._spread_db += _SPREAD_ALPHA * (max(0.0, snr_db) - self._spread_db)
        gain_db = self._peak.gain_db(_TARGET_PEAK_DB, _MAX_GAIN_DB)
        if gain_db > 0.5:
            # Into one scratch array by ufuncs: np.clip's Python wrapper cost more than the rest.
            scaled = np.multiply(
                self._band_energy.samples_of(frame),
                np.float32(10 ** (gain_db / 20)),
                out=self._scratch,
            )
            np.rint(scaled, out=scaled)
            np.maximum(scaled, -32768.0, out=scaled)
            np.minimum(scaled, 32767.0, out=scaled)
            frame = scaled.astype("<i2").tobytes()
        # webrtcvad's own wrapper only re-checks the length, which is fixed here.
        speech = _webrtcvad.process(self._handle, SAMPLE_RATE, frame, WEBRTC_FRAME_SAMPLES)
        return score if speech else 0.0
