"""Synthetic speakers: children aged 3-10 and adults, with voices that differ the way real ones do.

Pitch alone is a small domain gap (a base trained on low-pitched espeak voices already read
pitch-raised ones at CER 0.26). Children differ from adults in more ways, and each is modelled:

- Shorter vocal tract: formants AND pitch scaled up by `formant_scale` (espeak renders slowed
  down by that factor, then the samples are played faster by it: resampled from
  22050*scale Hz to 16 kHz; the duration comes out as spoken).
- Higher, unstable pitch: a higher espeak `-p` base, a different pitch for every word
  (`word_pitch_jitter`, SSML prosody) and a slow random wobble of the playback rate
  (`pitch_wobble`, 2-6 Hz) on top.
- Irregular speaking rate: a slower base rate, a different rate for every word
  (`word_rate_jitter`) and pauses between words (`pause_prob`, 120-450 ms).
- Disfluencies: fillers (음, 어) and part-word repetitions (사... 사과) spoken but marked in the
  label as AI Hub event tags `(NO:음)` / `(SP:사)`, which normalisation removes, so the target
  text is the fluent sentence.
- More noise: coloured noise mixed at a lower SNR (recorded per utterance as `snr_db`).

Per-age parameters (a speaker draws each value uniformly from its range once; jitters are
redrawn per word, pauses and disfluencies per utterance):

| group    | formant_scale | espeak -p | espeak voice | rate wpm | word pitch ±% | word rate ±% | wobble ±% | pause p | filler p | repeat p | SNR dB  |
|----------|---------------|-----------|--------------|----------|---------------|--------------|-----------|---------|----------|----------|---------|
| age 3-4  | 1.28-1.36     | 65-85     | ko+f1..f5    | 115-135  | 25            | 30           | 3.0       | 0.30    | 0.35     | 0.25     | 10-18   |
| age 5-6  | 1.22-1.30     | 60-80     | ko+f1..f5    | 125-145  | 20            | 25           | 2.5       | 0.22    | 0.25     | 0.18     | 12-20   |
| age 7-8  | 1.16-1.24     | 55-75     | ko+f1..f5    | 135-155  | 15            | 20           | 2.0       | 0.16    | 0.18     | 0.12     | 13-21   |
| age 9-10 | 1.10-1.18     | 50-70     | ko+f1..f5    | 145-165  | 12            | 15           | 1.5       | 0.10    | 0.12     | 0.08     | 14-22   |
| adult F  | 0.97-1.03     | 35-55     | ko+f1..f5    | 160-180  | 5             | 5            | 0.3       | 0.02    | 0        | 0        | 25-38   |
| adult M  | 0.97-1.03     | 15-40     | ko+m1..m7    | 160-180  | 5             | 5            | 0.3       | 0.02    | 0        | 0        | 25-38   |

Children of both sexes use the female espeak variants: voices differ by sex only after puberty.
Median F0 measured on a 1500-utterance corpus (seed 1): age 3-4 321 Hz, 5-6 291 Hz, 7-8 268 Hz,
9-10 246 Hz, adult women 178 Hz, adult men 92 Hz (tests/data/test_synth.py checks child > 1.4x
adult and a higher spectral centroid).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class AgeProfile:
    """Ranges one group of speakers draws from (see the table in the module docstring)."""

    formant_scale: tuple[float, float]
    pitch: tuple[int, int]
    rate_wpm: tuple[int, int]
    word_pitch_jitter: float
    word_rate_jitter: float
    pitch_wobble: float
    pause_prob: float
    filler_prob: float
    repeat_prob: float
    snr_db: tuple[float, float]


CHILD_PROFILES: dict[tuple[int, int], AgeProfile] = {
    (3, 4): AgeProfile((1.28, 1.36), (65, 85), (115, 135), 0.25, 0.30, 0.030, 0.30, 0.35, 0.25, (10, 18)),
    (5, 6): AgeProfile((1.22, 1.30), (60, 80), (125, 145), 0.20, 0.25, 0.025, 0.22, 0.25, 0.18, (12, 20)),
    (7, 8): AgeProfile((1.16, 1.24), (55, 75), (135, 155), 0.15, 0.20, 0.020, 0.16, 0.18, 0.12, (13, 21)),
    (9, 10): AgeProfile((1.10, 1.18), (50, 70), (145, 165), 0.12, 0.15, 0.015, 0.10, 0.12, 0.08, (14, 22)),
}
ADULT_FEMALE = AgeProfile((0.97, 1.03), (35, 55), (160, 180), 0.05, 0.05, 0.003, 0.02, 0.0, 0.0, (25, 38))
ADULT_MALE = AgeProfile((0.97, 1.03), (15, 40), (160, 180), 0.05, 0.05, 0.003, 0.02, 0.0, 0.0, (25, 38))
FEMALE_VOICES = tuple(f"ko+f{i}" for i in range(1, 6))
MALE_VOICES = tuple(f"ko+m{i}" for i in range(1, 8))
CHILD_AGES = tuple(range(3, 11))


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: identity, the values drawn once from its profile, and the profile."""

    index: int
    speaker_id: str
    group: str  # "child" | "adult"
    age: int
    gender: str  # "M" | "F"
    voice: str
    formant_scale: float
    pitch: int
    rate_wpm: int
    # Spectral tilt of this speaker's room noise: 0 white, 1 pink, 2 brown.
    noise_color: float
    # Jitters, pause/disfluency probabilities and SNR range, used per word or per utterance.
    profile: AgeProfile

    def to_dict(self) -> dict:
        return asdict(self)


def child_profile(age: int) -> AgeProfile:
    for (low, high), profile in CHILD_PROFILES.items():
        if low <= age <= high:
            return profile
    raise ValueError(f"no child profile for age {age}")


def _draw(rng: np.random.Generator, span: tuple[float, float]) -> float:
    return float(rng.uniform(span[0], span[1]))


def _speaker(index: int, group: str, age: int, gender: str, voice: str, profile: AgeProfile, rng) -> Speaker:
    # Digits-dash-digit ids like AI Hub's recorderId, so the file-name fallback pattern matches.
    speaker_id = f"{(1 if group == 'child' else 2) * 10**9 + index:010d}-1"
    return Speaker(
        index=index,
        speaker_id=speaker_id,
        group=group,
        age=age,
        gender=gender,
        voice=voice,
        formant_scale=round(_draw(rng, profile.formant_scale), 4),
        pitch=int(rng.integers(profile.pitch[0], profile.pitch[1] + 1)),
        rate_wpm=int(rng.integers(profile.rate_wpm[0], profile.rate_wpm[1] + 1)),
        noise_color=round(_draw(rng, (0.0, 2.0)), 3),
        profile=profile,
    )


def make_speakers(n_child: int, n_adult: int, seed: int) -> list[Speaker]:
    """Children spread evenly over ages 3-10 (then shuffled), adults half female, half male."""
    rng = np.random.default_rng([seed, 7])
    ages = rng.permutation([CHILD_AGES[i % len(CHILD_AGES)] for i in range(n_child)])
    speakers: list[Speaker] = []
    for i, age in enumerate(ages.tolist()):
        gender = "F" if rng.random() < 0.5 else "M"
        voice = FEMALE_VOICES[int(rng.integers(len(FEMALE_VOICES)))]
        speakers.append(_speaker(i, "child", int(age), gender, voice, child_profile(int(age)), rng))
    for j in range(n_adult):
        female = j % 2 == 0
        voices = FEMALE_VOICES if female else MALE_VOICES
        voice = voices[int(rng.integers(len(voices)))]
        profile = ADULT_FEMALE if female else ADULT_MALE
        age = int(rng.integers(20, 61))
        speakers.append(_speaker(n_child + j, "adult", age, "F" if female else "M", voice, profile, rng))
    return speakers
