"""espeak-ng, the synthetic corpus's voice: speak SSML, and whether two spellings sound different.

espeak-ng's Korean voice does not make every contrast of the spelling: between vowels it voices a
tense initial like the plain one (아끼 and 아기, 동쌩 and 동생 are the same samples), though its
phoneme transcription differs (`-x`: 'aq-i, 'aqi). A mispronunciation the voice does not make is
not in the audio, so the corpus keeps an error only where `sounds_different` (mispronounce.py).
"""

from __future__ import annotations

import functools
import hashlib
import io
import subprocess

import numpy as np
import soundfile as sf

ESPEAK = "espeak-ng"
# The voice and settings two spellings are compared with: a contrast is the phoneme rules' (the same
# for every variant of the voice and any pitch or rate), so one fixed rendering decides.
REFERENCE_VOICE = ("ko", 50, 160)


def espeak(ssml: str, voice: str, pitch: int, rate_wpm: int) -> tuple[np.ndarray, int]:
    """Run espeak-ng on SSML; returns (float32 samples, sample rate)."""
    command = [ESPEAK, "-m", "-v", voice, "-p", str(pitch), "-s", str(rate_wpm), "--stdout", ssml]
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"espeak-ng failed ({done.returncode}): {done.stderr.decode(errors='replace')[:300]}")
    samples, rate = sf.read(io.BytesIO(done.stdout), dtype="float32")
    return samples, rate


@functools.lru_cache(maxsize=1 << 14)
def _reference_digest(spelling: str) -> bytes:
    # A digest, not the samples: a corpus checks thousands of spellings (~90 KB of audio each).
    return hashlib.blake2b(espeak(f"<speak>{spelling}</speak>", *REFERENCE_VOICE)[0].tobytes()).digest()


def sounds_different(spelling: str, other: str) -> bool:
    """Whether espeak-ng speaks the two Hangul spellings as different samples."""
    return spelling != other and _reference_digest(spelling) != _reference_digest(other)
