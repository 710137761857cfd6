"""Speak one utterance: espeak-ng SSML -> vocal-tract scaling -> pitch wobble -> noise -> 16 kHz.

Everything random comes from the RNG passed in, so an utterance is a pure function of
(speaker, sentence, RNG seed) and the corpus is reproducible whatever the worker scheduling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from trainer.data.audio import SAMPLE_RATE
from trainer.data.synth.espeak import espeak
from trainer.data.synth.mispronounce import Reading
from trainer.data.synth.speakers import Speaker

FILLERS = ("음", "어")


@dataclass(frozen=True)
class Utterance:
    samples: np.ndarray  # float32, 16 kHz, mono
    raw_text: str  # label text with AI Hub event tags, e.g. "(NO:음) 사과를 먹어요"
    text: str  # the fluent sentence
    snr_db: float


def _prosody(word: str, pitch_pct: float, rate_pct: float) -> str:
    return f'<prosody pitch="{pitch_pct:+.0f}%" rate="{rate_pct:.0f}%">{word}</prosody>'


def _script(
    speaker: Speaker, words: list[str], rng: np.random.Generator, reading: Reading | None = None
) -> tuple[str, str]:
    """SSML for espeak and the raw label text, with this utterance's disfluencies and pauses.

    With a `reading`, espeak speaks each word as it was said (pronounced spelling) and the label
    writes it as its transcript (dual `(word)/(said)` where it was said wrong).
    """
    said = reading.said if reading is not None else words
    written = reading.transcript if reading is not None else words
    ssml: list[str] = []
    label: list[str] = []

    def spoken(word: str) -> str:
        pitch = 100 * rng.uniform(-speaker.profile.word_pitch_jitter, speaker.profile.word_pitch_jitter)
        rate = 100 * (1 + rng.uniform(-speaker.profile.word_rate_jitter, speaker.profile.word_rate_jitter))
        return _prosody(word, pitch, rate)

    filler_at = int(rng.integers(len(words))) if rng.random() < speaker.profile.filler_prob else -1
    repeat_at = int(rng.integers(len(words))) if rng.random() < speaker.profile.repeat_prob else -1
    for i, word in enumerate(said):
        if i == filler_at:
            filler = FILLERS[int(rng.integers(len(FILLERS)))]
            ssml += [spoken(filler), f'<break time="{int(rng.integers(200, 450))}ms"/>']
            label.append(f"(NO:{filler})")
        if i == repeat_at:
            ssml += [spoken(word[0]), f'<break time="{int(rng.integers(80, 250))}ms"/>']
            label.append(f"(SP:{word[0]})")
        ssml.append(spoken(word))
        label.append(written[i])
        if i < len(words) - 1 and rng.random() < speaker.profile.pause_prob:
            ssml.append(f'<break time="{int(rng.integers(120, 450))}ms"/>')
    return "<speak>" + " ".join(ssml) + "</speak>", " ".join(label)


def _wobble(samples: np.ndarray, depth: float, rng: np.random.Generator) -> np.ndarray:
    """Slowly vary the playback rate by +-depth (2-6 Hz): unstable pitch and formants."""
    if depth <= 0:
        return samples
    n = len(samples)
    t = np.arange(n) / SAMPLE_RATE
    rate = 1 + depth * np.sin(2 * np.pi * rng.uniform(2, 6) * t + rng.uniform(0, 2 * np.pi)) * 0.6
    rate += depth * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 2 * np.pi)) * 0.4
    position = np.cumsum(rate) - rate[0]
    position = position[position <= n - 1]
    return np.interp(position, np.arange(n), samples).astype(np.float32)


def _noise(n: int, color: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a 1/f^color power spectrum, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, d=1 / SAMPLE_RATE)
    freqs[0] = freqs[1] if n > 1 else 1.0
    noise = np.fft.irfft(spectrum / freqs ** (color / 2), n)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def speech_power(samples: np.ndarray, frame: int = 320) -> float:
    """Mean power over frames within 20 dB of the loudest (ignores the silence around words)."""
    count = max(1, len(samples) // frame)
    energy = np.square(samples[: count * frame].reshape(count, -1), dtype=np.float64).mean(axis=1)
    return float(energy[energy >= energy.max() * 0.01].mean())


def render(speaker: Speaker, words: list[str], rng: np.random.Generator, reading: Reading | None = None) -> Utterance:
    """Speak `words` in this speaker's voice (see trainer.data.synth.speakers for the model), as
    `reading` says them when given (trainer.data.synth.mispronounce)."""
    ssml, raw_text = _script(speaker, words, rng, reading)
    scale = speaker.formant_scale
    # Rendered slower by `scale`, then played faster by it: formants and pitch up, length as spoken.
    samples, rate = espeak(ssml, speaker.voice, speaker.pitch, max(80, round(speaker.rate_wpm / scale)))
    samples = soxr.resample(samples, rate * scale, SAMPLE_RATE)
    samples = _wobble(samples, speaker.profile.pitch_wobble, rng)
    snr = float(rng.uniform(*speaker.profile.snr_db))
    noise = _noise(len(samples), speaker.noise_color, rng)
    samples = samples + noise * np.sqrt(speech_power(samples) / 10 ** (snr / 10))
    # Recording level varies between sessions; keep well clear of clipping.
    samples *= rng.uniform(0.3, 0.9) / (np.abs(samples).max() + 1e-9)
    return Utterance(samples.astype(np.float32), raw_text, " ".join(words), round(snr, 2))
