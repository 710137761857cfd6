"""On-the-fly waveform perturbation: speed (0.9/1.0/1.1, Kaldi-style resampling that changes
tempo and pitch together) and pitch (sox's `pitch` effect: pitch only, tempo kept).

The speed factor of each utterance and epoch comes from the batch plan (sampler.speed_factors);
the pitch shift draws from the utterance's own generator seeded by (seed, epoch, index). Both are
the same whichever data-loader worker runs them, and a resumed run sees the same audio.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import numpy as np

from trainer.data.audio import SAMPLE_RATE, change_speed


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
    """Speed by the factor the batch plan drew for the utterance (trainer.training.sampler plans
    batches on the lengths the model sees), then pitch shifted uniformly in +-`pitch_semitones`."""

    pitch_semitones: float = 0.0

    def __call__(self, audio: np.ndarray, speed: float, rng: np.random.Generator) -> np.ndarray:
        audio = change_speed(audio, speed)
        if self.pitch_semitones > 0:
            audio = shift_pitch(audio, float(rng.uniform(-self.pitch_semitones, self.pitch_semitones)))
        return audio
