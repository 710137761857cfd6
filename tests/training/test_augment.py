"""Speed and pitch perturbation on real signals (soxr resampling, sox's pitch effect)."""

import numpy as np

from trainer.data.audio import change_speed
from trainer.training.augment import Perturbation, shift_pitch

RATE = 16000


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(int(RATE * seconds)) / RATE)).astype(np.float32)


def peak_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / RATE)[spectrum.argmax()])


def test_speed_changes_duration_and_pitch_together():
    faster = change_speed(tone(200.0), 1.1)
    assert abs(len(faster) - RATE / 1.1) < 10
    assert abs(peak_hz(faster) - 220.0) < 5


def test_pitch_shift_keeps_duration():
    shifted = shift_pitch(tone(200.0), 12.0)  # one octave up
    assert abs(len(shifted) - RATE) < 0.02 * RATE
    assert abs(peak_hz(shifted) - 400.0) < 10


def test_perturbation_is_a_function_of_its_generator():
    perturb = Perturbation(pitch_semitones=2.0)
    audio = tone(180.0, 0.6)
    first = perturb(audio, 0.9, np.random.default_rng([1, 0, 5]))
    again = perturb(audio, 0.9, np.random.default_rng([1, 0, 5]))
    assert np.array_equal(first, again)
    assert abs(len(first) - len(audio) / 0.9) < 10
