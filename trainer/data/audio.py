"""Audio loading for import, training and evaluation: one set of rules for what counts as usable.

`load_audio` reads with soundfile (wav/flac/ogg/mp3 via libsndfile; KsponSpeech-style headerless
`.pcm` as 16 kHz 16-bit mono), mixes down to mono, resamples with soxr to 16 kHz and returns
peak-safe float32 (|x| <= 1). `probe_audio` gives the duration from the header only. Both raise
AudioError with a `.reason` the importer counts:

    missing     no such file
    empty       0 bytes, or a header with no samples
    unreadable  libsndfile cannot open or decode it, the samples are not finite, or a WAV's header
                promises more audio than the file holds (a truncated copy)
    too_short   shorter than min_seconds (0.5 s by default)
    too_long    longer than max_seconds (when given)
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
AUDIO_ERROR_REASONS = ("missing", "empty", "unreadable", "too_short", "too_long")
# KsponSpeech ships raw 16-bit little-endian 16 kHz mono samples without a header.
_RAW_PCM = {"samplerate": 16000, "channels": 1, "subtype": "PCM_16", "format": "RAW", "endian": "LITTLE"}


class AudioError(Exception):
    """Audio that cannot be used; `.reason` is one of AUDIO_ERROR_REASONS, `.path` the file."""

    def __init__(self, reason: str, path: str | Path, detail: str = "") -> None:
        assert reason in AUDIO_ERROR_REASONS, reason
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.path = str(path)
        self.detail = detail


def _open_kwargs(path: Path) -> dict:
    return dict(_RAW_PCM) if path.suffix.lower() == ".pcm" else {}


def _wav_shortfall(path: Path, size: int) -> int:
    """Bytes a RIFF/WAVE file's `data` chunk declares beyond the end of the file (0 if whole).

    libsndfile quietly reads what is there, so a half-copied file would otherwise pass as a
    shorter utterance whose transcript no longer matches. Streaming headers that leave the size
    unset (0 or 0xFFFFFFFF) are not judged.
    """
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        offset = 12
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return 0
            chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                if chunk_size in (0, 0xFFFFFFFF):
                    return 0
                return max(0, offset + 8 + chunk_size - size)
            offset += 8 + chunk_size + (chunk_size & 1)
            handle.seek(offset)


class AudioInfo(NamedTuple):
    """What the header says: enough to probe 1.7M files without decoding them."""

    duration: float
    sample_rate: int
    channels: int
    subtype: str

    @property
    def format(self) -> str:
        """`16000Hz/1ch/PCM_16`: the import report's format tally key."""
        return f"{self.sample_rate}Hz/{self.channels}ch/{self.subtype}"


def inspect_audio(path: str | Path) -> AudioInfo:
    """Header facts of a usable file; AudioError missing/empty/unreadable otherwise (no decoding)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AudioError("missing", path) from None
    if size == 0:
        raise AudioError("empty", path, "0 bytes")
    try:
        with sf.SoundFile(str(path), **_open_kwargs(path)) as handle:
            frames, rate, channels, subtype = handle.frames, handle.samplerate, handle.channels, handle.subtype
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError("unreadable", path, str(exc).replace(f"'{path}'", "").strip()) from None
    if frames <= 0:
        raise AudioError("empty", path, "no samples")
    if path.suffix.lower() == ".wav":
        missing = _wav_shortfall(path, size)
        if missing:
            raise AudioError("unreadable", path, f"truncated: header declares {missing} more bytes than the file holds")
    return AudioInfo(frames / rate, rate, channels, subtype)


def check_duration(seconds: float, path: str | Path, min_seconds: float | None, max_seconds: float | None) -> float:
    """Raise too_short / too_long by the importer's limits; returns `seconds`."""
    if min_seconds is not None and seconds < min_seconds:
        raise AudioError("too_short", path, f"{seconds:.3f} s < {min_seconds} s")
    if max_seconds is not None and seconds > max_seconds:
        raise AudioError("too_long", path, f"{seconds:.3f} s > {max_seconds} s")
    return seconds


def probe_audio(path: str | Path, min_seconds: float | None = None, max_seconds: float | None = None) -> float:
    """Duration in seconds from the header (no decoding), with the same checks as load_audio."""
    return check_duration(inspect_audio(path).duration, path, min_seconds, max_seconds)


def load_audio(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    min_seconds: float | None = 0.5,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Mono float32 samples at `sample_rate`, peak-scaled into [-1, 1]; AudioError when unusable."""
    path = Path(path)
    inspect_audio(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True, **_open_kwargs(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError("unreadable", path, str(exc)) from None
    if data.shape[0] == 0:
        raise AudioError("empty", path, "no samples")
    samples = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(samples).all():
        raise AudioError("unreadable", path, "samples are NaN or infinite")
    if rate != sample_rate:
        samples = soxr.resample(samples, rate, sample_rate)
    check_duration(len(samples) / sample_rate, path, min_seconds, max_seconds)
    # Float files and resampling overshoot can exceed 1; scale down rather than clip the peaks.
    peak = float(np.abs(samples).max())
    if peak > 1.0:
        samples = samples / peak
    return np.ascontiguousarray(samples, dtype=np.float32)


def audio_fingerprint(path: str | Path, size_bytes: int = 1 << 16) -> str:
    """A cheap content fingerprint: BLAKE2b of the file size plus its first and last 64 KiB.

    Two different recordings almost never share both ends byte for byte, and reading 128 KiB per
    file keeps a 1.7M-file import I/O-light; the split's leakage audit compares these.
    """
    path = Path(path)
    size = os.path.getsize(path)
    digest = hashlib.blake2b(str(size).encode(), digest_size=12)
    with open(path, "rb") as handle:
        digest.update(handle.read(size_bytes))
        if size > 2 * size_bytes:
            handle.seek(size - size_bytes)
            digest.update(handle.read(size_bytes))
    return digest.hexdigest()


def estimate_snr_db(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, frame_seconds: float = 0.02) -> float | None:
    """Rough SNR of an utterance: loud-frame energy (90th percentile) over quiet-frame energy (10th).

    For corpora whose labels carry no SNR; good enough to bin utterances (<10, 10-20, 20-30,
    >=30 dB) for stratified splits, not a measurement. None when the clip is too short to judge.
    """
    frame = int(sample_rate * frame_seconds)
    count = len(samples) // frame
    if count < 10:
        return None
    energy = np.square(samples[: count * frame].reshape(count, frame), dtype=np.float64).mean(axis=1)
    loud, quiet = np.percentile(energy, [90, 10])
    return float(10 * np.log10((loud + 1e-12) / (quiet + 1e-12)))
