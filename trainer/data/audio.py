"""Audio loading for import, training and evaluation: one set of rules for what counts as usable.

`load_audio` reads with soundfile (wav/flac/ogg/mp3 via libsndfile; KsponSpeech-style headerless
`.pcm` as 16 kHz 16-bit mono), mixes down to mono, resamples with soxr to 16 kHz and returns
peak-safe float32 (|x| <= 1); `decode_audio` does the same for a file's bytes held in memory.
`probe_audio` gives the duration from the header only. All raise AudioError with a `.reason`
(trainer.data.screening names the skip it counts):

    missing     no such file
    not_a_file  a directory (or other non-file) where the audio file should be
    denied      no permission to read it (EACCES)
    io_error    any other operating-system error while reading it (EIO, ...)
    empty       0 bytes, or a header with no samples
    unreadable  libsndfile cannot open or decode it, the samples are not finite, or a WAV's header
                promises more audio than the file holds (a truncated copy)
    too_short   shorter than min_seconds (0.5 s by default)
    too_long    longer than max_seconds (when given)
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import struct
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np
import soundfile as sf
import soxr

from trainer import storage

SAMPLE_RATE = 16000
AUDIO_ERROR_REASONS = ("missing", "not_a_file", "denied", "io_error", "empty", "unreadable", "too_short", "too_long")
# Shortest clip load_audio accepts by default (training and evaluation read with it).
MIN_SECONDS = 0.5
# Sample formats that can hold NaN or infinity (integer PCM cannot): import decodes these to check.
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
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


def _os_error(exc: OSError, path: Path) -> AudioError:
    """The AudioError for a filesystem failure: a counted skip, never a crash."""
    if isinstance(exc, FileNotFoundError):
        return AudioError("missing", path)
    if isinstance(exc, (IsADirectoryError, NotADirectoryError)):
        return AudioError("not_a_file", path, exc.strerror or "")
    if isinstance(exc, PermissionError):
        return AudioError("denied", path, exc.strerror or "permission denied")
    return AudioError("io_error", path, f"{errno.errorcode.get(exc.errno or 0, 'OSError')}: {exc.strerror or exc}")


def _open_kwargs(path: Path) -> dict:
    return dict(_RAW_PCM) if path.suffix.lower() == ".pcm" else {}


def _wav_shortfall(handle: IO[bytes], size: int) -> int:
    """Bytes a RIFF/WAVE file's `data` chunk declares beyond the end of the file (0 if whole).

    libsndfile quietly reads what is there, so a half-copied file would otherwise pass as a
    shorter utterance whose transcript no longer matches. Streaming headers that leave the size
    unset (0 or 0xFFFFFFFF) are not judged.
    """
    handle.seek(0)
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
    """Header facts of a usable file; AudioError (missing, not_a_file, denied, io_error, empty,
    unreadable) otherwise. No decoding. An s3:// path is read from the pod's cache (trainer.storage)."""
    path = storage.cached_file(path)
    try:
        status = path.stat()
        # Checked before opening: opening a FIFO would block until something writes to it.
        if not stat.S_ISREG(status.st_mode):
            raise AudioError(
                "not_a_file", path, "a directory" if stat.S_ISDIR(status.st_mode) else "not a regular file"
            )
        if status.st_size == 0:
            raise AudioError("empty", path, "0 bytes")
        # Opened here, not by libsndfile, so that filesystem errors keep their errno.
        with open(path, "rb") as raw:
            try:
                with sf.SoundFile(raw, **_open_kwargs(path)) as handle:
                    frames, rate, channels, subtype = handle.frames, handle.samplerate, handle.channels, handle.subtype
            except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
                raise AudioError("unreadable", path, str(exc).replace(f"'{path}'", "").strip()) from None
            if frames <= 0:
                raise AudioError("empty", path, "no samples")
            if path.suffix.lower() == ".wav":
                missing = _wav_shortfall(raw, status.st_size)
                if missing:
                    raise AudioError(
                        "unreadable", path, f"truncated: header declares {missing} more bytes than the file holds"
                    )
    except OSError as exc:
        raise _os_error(exc, path) from None
    except ValueError:  # the name itself is impossible (an embedded NUL byte)
        raise AudioError("missing", path, "not a valid file name") from None
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
    min_seconds: float | None = MIN_SECONDS,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Mono float32 samples at `sample_rate`, peak-scaled into [-1, 1]; AudioError when unusable."""
    path = storage.cached_file(path)
    inspect_audio(path)
    try:
        with open(path, "rb") as raw:
            data, rate = sf.read(raw, dtype="float32", always_2d=True, **_open_kwargs(path))
    except OSError as exc:
        raise _os_error(exc, path) from None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError("unreadable", path, str(exc)) from None
    return _mono_at_rate(data, rate, sample_rate, path, min_seconds, max_seconds)


def change_speed(audio: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Play `factor` times faster: read the samples as if recorded at rate*factor, resample (tempo,
    pitch and formants all scale by `factor`)."""
    if factor == 1.0:
        return audio
    return soxr.resample(audio, sample_rate * factor, sample_rate).astype(np.float32)


def decode_audio(
    data: bytes,
    name: str,
    sample_rate: int = SAMPLE_RATE,
    min_seconds: float | None = MIN_SECONDS,
    max_seconds: float | None = None,
) -> np.ndarray:
    """`load_audio` for an encoded file held in memory (a dataset's audio bytes); `name` stands for
    the path in AudioError (a `.pcm` name reads as headerless 16 kHz PCM, as on disk)."""
    if not data:
        raise AudioError("empty", name, "0 bytes")
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True, **_open_kwargs(Path(name)))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError("unreadable", name, str(exc)) from None
    return _mono_at_rate(samples, rate, sample_rate, name, min_seconds, max_seconds)


def _mono_at_rate(
    data: np.ndarray,
    rate: int,
    sample_rate: int,
    path: str | Path,
    min_seconds: float | None,
    max_seconds: float | None,
) -> np.ndarray:
    """Decoded (frames, channels) samples -> checked, peak-safe mono float32 at `sample_rate`."""
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
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            digest = hashlib.blake2b(str(size).encode(), digest_size=12)
            digest.update(handle.read(size_bytes))
            if size > 2 * size_bytes:
                handle.seek(size - size_bytes)
                digest.update(handle.read(size_bytes))
    except OSError as exc:
        raise _os_error(exc, path) from None
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
