"""On-the-fly waveform perturbation: speed (0.9/1.0/1.1, Kaldi-style resampling that changes
tempo and pitch together) and pitch (sox's `pitch` effect: pitch only, tempo kept).

Every utterance draws from its own generator seeded by (seed, epoch, index), so augmentation is
the same whichever data-loader worker runs it and a resumed run sees the same audio.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import soxr

from trainer.data.audio import SAMPLE_RATE


def change_speed(audio: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Play `factor` times faster: read the samples as if recorded at rate*factor, resample."""
    if factor == 1.0:
        return audio
    return soxr.resample(audio, sample_rate * factor, sample_rate).astype(np.float32)


def shift_pitch(audio: np.ndarray, semitones: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Shift pitch by `semitones` keeping the duration (sox WSOLA), float32 in and out."""
    if semitones == 0.0:
        return audio
    raw = ["-t", "raw", "-r", str(sample_rate), "-e", "floating-point", "-b", "32", "-c", "1"]
    result = subprocess.run(
        ["sox", *raw, "-", *raw, "-", "pitch", f"{semitones * 100:.1f}"],
        input=audio.astype(np.float32).tobytes(),
        capture_output=True,
        check=True,
    )
    return np.frombuffer(result.stdout, dtype=np.float32).copy()


@dataclass
class Perturbation:
    """Random speed factor from `speeds` and pitch shift uniform in +-`pitch_semitones`."""

    speeds: Sequence[float] = field(default_factory=lambda: (0.9, 1.0, 1.1))
    pitch_semitones: float = 0.0

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.speeds:
            audio = change_speed(audio, float(rng.choice(self.speeds)))
        if self.pitch_semitones > 0:
            audio = shift_pitch(audio, float(rng.uniform(-self.pitch_semitones, self.pitch_semitones)))
        return audio
