"""A user prepares a JSONL list of recordings while 3 of its 24 audio files are missing, restores
them and reruns prepare: the rerun imports all 24 (it used to say "up to date, nothing to do" and
keep 21), and a recording replaced in place is picked up too."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from trainer.data.manifest import load_manifest

from .test_prepare import trainer_cli

RATE = 16000


def _recordings(folder: Path) -> Path:
    """24 one-second recordings of 8 speakers and the JSONL list that names them."""
    (folder / "audio").mkdir(parents=True)
    lines = []
    for s in range(8):
        for k in range(3):
            wav = folder / "audio" / f"s{s}_{k}.wav"
            sf.write(wav, 0.1 * np.sin(np.arange(RATE) * 0.001 * (3 * s + k + 1)), RATE)
            lines.append(
                {"audio_filepath": f"audio/{wav.name}", "text": "아기 고양이", "speaker_id": f"s{s}", "age": 6}
            )
    source = folder / "corpus.jsonl"
    source.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    return source


def _prepare(source: Path, out: Path):
    done = trainer_cli(
        "data", "prepare", "--format", "jsonl", "--manifest", source, "--out", out,
        "--val-fraction", "0.25", "--test-fraction", "0.25", "--fractions", "1.0", "--curriculum-source", "all",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def test_rerun_after_restoring_missing_audio_imports_it(tmp_path):
    source = _recordings(tmp_path / "corpus")
    aside = tmp_path / "aside"
    aside.mkdir()
    missing = sorted((tmp_path / "corpus" / "audio").glob("s1_*.wav"))
    for wav in missing:
        wav.rename(aside / wav.name)
    out = tmp_path / "prepared"
    _prepare(source, out)
    assert len(load_manifest(out / "all.jsonl")) == 21

    for wav in missing:
        (aside / wav.name).rename(wav)
    rerun = _prepare(source, out)
    assert "up to date" not in rerun.stderr + rerun.stdout
    assert len(load_manifest(out / "all.jsonl")) == 24

    unchanged = _prepare(source, out)
    assert "up to date" in unchanged.stderr + unchanged.stdout  # nothing changed: nothing redone


def test_rerun_after_replacing_a_recording_in_place_imports_it(tmp_path):
    source = _recordings(tmp_path / "corpus")
    out = tmp_path / "prepared"
    _prepare(source, out)
    before = {r["utt_id"]: r["duration"] for r in load_manifest(out / "all.jsonl")}
    wav = tmp_path / "corpus" / "audio" / "s2_1.wav"
    sf.write(wav, 0.1 * np.sin(np.arange(2 * RATE) * 0.003), RATE)  # now two seconds long
    os.utime(wav, ns=(wav.stat().st_atime_ns, wav.stat().st_mtime_ns + 10**9))
    _prepare(source, out)
    after = {r["utt_id"]: r["duration"] for r in load_manifest(out / "all.jsonl")}
    assert after["s2_1"] == 2.0 and before["s2_1"] == 1.0
