"""Synthetic corpus: reproducible, AI Hub layout, and child voices measurably unlike adult ones."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from trainer.data.synth import synthesize_corpus
from trainer.data.synth.corpus import audio_fingerprint
from trainer.data.synth.speakers import CHILD_AGES, make_speakers
from trainer.data.text import normalize_transcript
from trainer.exit_codes import ConfigError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _labels(root: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(root.rglob("라벨링데이터/*/*.json"))]


def test_layout_and_labels(tiny_corpus):
    summary = json.loads((tiny_corpus / "synth_summary.json").read_text(encoding="utf-8"))
    assert summary["complete"] and summary["utterances"] == 30
    folders = {s["source_split"] for s in summary["speakers"]}
    assert folders == {"1.Training", "2.Validation", "3.Test"}
    wavs = sorted(tiny_corpus.rglob("원천데이터/*/*.wav"))
    assert len(wavs) == len(_labels(tiny_corpus)) == 30
    info = sf.info(wavs[0])
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    for label in _labels(tiny_corpus):
        raw, meta = label["발화정보"]["stt"], label["합성정보"]
        assert normalize_transcript(raw) == meta["text"]
        assert float(label["발화정보"]["recrdTime"]) > 0.5
    tagged = {lab["합성정보"]["group"] for lab in _labels(tiny_corpus) if "(" in lab["발화정보"]["stt"]}
    assert tagged == {"child"}  # disfluencies are a child trait


def _fingerprint(root: Path) -> str:
    return json.loads((root / "synth_summary.json").read_text(encoding="utf-8"))["audio_sha256"]


def _digest_of_files(root: Path) -> str:
    wavs = root.rglob("원천데이터/*/*.wav")
    return audio_fingerprint([{"stem": p.stem, "wav_sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in wavs])


def test_deterministic_whatever_the_workers(tiny_corpus, tiny_params, tmp_path):
    again = tmp_path / "again"
    synthesize_corpus(again, workers=1, **tiny_params)
    assert _files(again) == _files(tiny_corpus)
    other = tmp_path / "other"
    synthesize_corpus(other, workers=1, **{**tiny_params, "seed": 1})
    assert _files(other) != _files(tiny_corpus)
    # The summary's audio digest tells two runs' corpora apart without the files at hand.
    assert _fingerprint(again) == _fingerprint(tiny_corpus) != _fingerprint(other)
    assert _digest_of_files(other) == _fingerprint(other)  # it is the files' digest...
    one_wav = next(other.rglob("*.wav"))
    samples = bytearray(one_wav.read_bytes())
    samples[-2] ^= 1
    one_wav.write_bytes(samples)
    assert _digest_of_files(other) != _fingerprint(other)  # ... and one changed sample changes it


def test_rerun_is_a_no_op_and_new_parameters_replace_the_corpus(tmp_path, capsys):
    root = tmp_path / "corpus"
    synthesize_corpus(root, 1, 1, 2, seed=0)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*.wav")}
    synthesize_corpus(root, 1, 1, 2, seed=0)
    assert "nothing to do" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.wav")} == mtimes
    synthesize_corpus(root, 1, 1, 1, seed=0)
    assert len(list(root.rglob("*.wav"))) == 2  # no stale utterance of the bigger corpus is left

    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ConfigError, match="not empty"):
        synthesize_corpus(tmp_path / "foreign", 1, 1, 1, seed=0)


def test_speakers_cover_ages_and_sexes():
    speakers = make_speakers(16, 4, seed=3)
    children = [s for s in speakers if s.group == "child"]
    assert sorted({s.age for s in children}) == list(CHILD_AGES)
    assert {s.gender for s in speakers if s.group == "adult"} == {"M", "F"}
    assert min(s.formant_scale for s in children) > max(s.formant_scale for s in speakers if s.group == "adult")
    assert len({s.speaker_id for s in speakers}) == 20


def _median_f0(samples: np.ndarray, rate: int = 16000) -> float:
    """Median autocorrelation pitch over voiced 40 ms frames (60-600 Hz)."""
    frame, found = int(0.04 * rate), []
    threshold = 0.1 * np.max([np.mean(samples[i : i + frame] ** 2) for i in range(0, len(samples) - frame, frame)])
    for start in range(0, len(samples) - frame, frame // 2):
        chunk = samples[start : start + frame] * np.hanning(frame)
        if np.mean(chunk**2) < threshold:
            continue
        corr = np.correlate(chunk, chunk, "full")[frame - 1 :]
        low, high = rate // 600, rate // 60
        lag = low + int(np.argmax(corr[low:high]))
        if corr[lag] > 0.5 * corr[0]:
            found.append(rate / lag)
    return float(np.median(found))


def _centroid(samples: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = (freqs > 100) & (freqs < 6000)
    return float((spectrum[band] * freqs[band]).sum() / spectrum[band].sum())


def test_child_voices_are_higher_in_pitch_and_formants(tiny_corpus):
    f0: dict[str, list[float]] = {"child": [], "adult": []}
    centroid: dict[str, list[float]] = {"child": [], "adult": []}
    for wav in sorted(tiny_corpus.rglob("원천데이터/*/*.wav")):
        group = "child" if wav.name.startswith("KID") else "adult"
        samples, _ = sf.read(wav, dtype="float32")
        f0[group].append(_median_f0(samples))
        centroid[group].append(_centroid(samples))
    child_f0, adult_f0 = np.median(f0["child"]), np.median(f0["adult"])
    assert 230 < child_f0 < 450 and 80 < adult_f0 < 220
    assert child_f0 > 1.4 * adult_f0
    assert np.mean(centroid["child"]) > 1.15 * np.mean(centroid["adult"])
