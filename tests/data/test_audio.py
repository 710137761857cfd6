"""Audio loading rules: mono, 16 kHz, peak-safe float32; every unusable case has its reason."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from trainer.data.audio import (
    SAMPLE_RATE,
    AudioError,
    audio_fingerprint,
    estimate_snr_db,
    inspect_audio,
    load_audio,
    probe_audio,
)


def _tone(seconds: float, rate: int, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_44k_is_mixed_down_and_resampled(tmp_path):
    left, right = _tone(1.0, 44100), _tone(1.0, 44100, freq=660.0)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 44100, subtype="PCM_16")
    samples = load_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) == pytest.approx(SAMPLE_RATE, abs=2)
    assert probe_audio(path) == pytest.approx(1.0)
    assert inspect_audio(path).format == "44100Hz/2ch/PCM_16"
    expected = np.interp(np.arange(SAMPLE_RATE) / SAMPLE_RATE, np.arange(44100) / 44100, (left + right) / 2)
    assert np.abs(samples[100:-100] - expected[100:-100]).max() < 0.05


def test_float_audio_above_full_scale_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "loud.wav"
    loud = _tone(1.0, SAMPLE_RATE, amplitude=3.0)
    sf.write(path, loud, SAMPLE_RATE, subtype="FLOAT")
    samples = load_audio(path)
    # Scaled as a whole (clipping would flatten ~78 % of this sine at +-1).
    np.testing.assert_allclose(samples, loud / np.abs(loud).max(), atol=1e-6)


def test_raw_pcm_is_read_as_16k_mono(tmp_path):
    path = tmp_path / "kspon.pcm"
    path.write_bytes((_tone(0.75, SAMPLE_RATE) * 32767).astype("<i2").tobytes())
    assert probe_audio(path) == pytest.approx(0.75)
    assert len(load_audio(path)) == int(0.75 * SAMPLE_RATE)


def _reason(path, **kw) -> str:
    with pytest.raises(AudioError) as caught:
        load_audio(path, **kw)
    with pytest.raises(AudioError) as probed:
        probe_audio(path, kw.get("min_seconds", 0.5), kw.get("max_seconds"))
    assert probed.value.reason == caught.value.reason
    assert caught.value.path == str(path)
    return caught.value.reason


def test_each_unusable_file_has_its_reason(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, _tone(2.0, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    data = good.read_bytes()
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "truncated.wav").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.wav").write_bytes(b"RIFF\x00\x01not really a wave file at all")
    sf.write(tmp_path / "short.wav", _tone(0.05, SAMPLE_RATE), SAMPLE_RATE)
    sf.write(tmp_path / "nan.wav", np.full(SAMPLE_RATE, np.nan, dtype=np.float32), SAMPLE_RATE, subtype="FLOAT")

    assert _reason(tmp_path / "absent.wav") == "missing"
    assert _reason(tmp_path / "empty.wav") == "empty"
    assert _reason(tmp_path / "truncated.wav") == "unreadable"
    assert _reason(tmp_path / "garbage.wav") == "unreadable"
    assert _reason(tmp_path / "short.wav") == "too_short"
    assert _reason(good, max_seconds=1.5) == "too_long"
    with pytest.raises(AudioError, match="NaN"):
        load_audio(tmp_path / "nan.wav")
    assert len(load_audio(good, min_seconds=None)) == 2 * SAMPLE_RATE


def test_fingerprint_tells_copies_from_other_recordings(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, _tone(10.0, SAMPLE_RATE), SAMPLE_RATE)
    sf.write(b, _tone(10.0, SAMPLE_RATE, freq=441.0), SAMPLE_RATE)
    (tmp_path / "copy.wav").write_bytes(a.read_bytes())
    assert audio_fingerprint(a) == audio_fingerprint(tmp_path / "copy.wav") != audio_fingerprint(b)


def test_snr_estimate_ranks_clean_above_noisy():
    rng = np.random.default_rng(0)
    speech = np.concatenate([np.zeros(8000), _tone(1.0, SAMPLE_RATE), np.zeros(8000)])
    clean = estimate_snr_db(speech + 0.001 * rng.standard_normal(len(speech)))
    noisy = estimate_snr_db(speech + 0.1 * rng.standard_normal(len(speech)))
    assert clean > noisy + 20
    assert estimate_snr_db(np.zeros(100)) is None
