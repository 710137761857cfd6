"""`python -m trainer data ...` end to end through the real CLI: prepare's outputs, vocabulary from
the training split only, idempotency, and exit code 78 with file/line/field on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from trainer.data.manifest import load_manifest
from trainer.data.text import build_vocab, load_unit

REPO = Path(__file__).resolve().parents[2]


def trainer_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainer", *map(str, args)], cwd=REPO, capture_output=True, text=True)


def _ids(path: Path) -> set[str]:
    return {r["utt_id"] for r in load_manifest(path)}


def test_prepare_on_the_synthetic_corpus(tiny_corpus, tmp_path):
    out = tmp_path / "prepared"
    args = [
        "data",
        "prepare",
        "--root",
        tiny_corpus,
        "--out",
        out,
        "--val-fraction",
        "0.2",
        "--test-fraction",
        "0.2",
        "--fractions",
        "0.5",
        "1.0",
        "--unit",
        "jamo",
        "--workers",
        "2",
        "--seed",
        "3",
    ]
    done = trainer_cli(*args)
    assert done.returncode == 0, done.stderr

    everything = _ids(out / "all.jsonl")
    splits = {name: _ids(out / f"{name}.jsonl") for name in ("train", "val", "test")}
    assert len(everything) == 30 and set().union(*splits.values()) == everything
    for name, ids in splits.items():
        groups = [out / f"{name}_{group}.jsonl" for group in ("child", "adult")]
        assert set().union(*(_ids(g) for g in groups if g.exists())) == ids
    assert all(r["age"] < 18 for r in load_manifest(out / "train_child.jsonl"))
    assert all(r["age"] >= 18 for r in load_manifest(out / "train_adult.jsonl"))

    phase1, phase2 = _ids(out / "curriculum" / "phase1.jsonl"), _ids(out / "curriculum" / "phase2.jsonl")
    assert phase1 < phase2 == _ids(out / "train_child.jsonl")
    train_rows = load_manifest(out / "train.jsonl")
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    assert vocab == build_vocab([r["text"] for r in train_rows], "jamo") and load_unit(out) == "jamo"

    report = json.loads((out / "prepare_report.json").read_text(encoding="utf-8"))
    assert report["split"]["shared_speakers"] == 0
    assert all((out / name).exists() for name in report["outputs"])

    # Same inputs: nothing is redone; another option: everything is.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = trainer_cli(*args)
    assert again.returncode == 0 and "up to date" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    changed = trainer_cli(*args[:-1], "4")
    assert changed.returncode == 0 and "up to date" not in changed.stdout
    assert (out / "train.jsonl").stat().st_mtime_ns != before[out / "train.jsonl"]


def test_vocabulary_comes_from_training_speakers_only(tmp_path):
    """Every speaker says one syllable nobody else says: the vocabulary must hold exactly the
    training speakers' syllables, adult and child, and none that only val/test speakers use."""
    rate, lines = 16000, []
    (tmp_path / "audio").mkdir()
    for s in range(40):
        own = chr(0xAC00 + 28 * 21 * (s % 19) + 28 * (s // 19) + 4)  # distinct syllables
        for k in range(3):
            wav = tmp_path / "audio" / f"s{s}_{k}.wav"
            sf.write(wav, 0.1 * np.sin(np.arange(rate) * 0.001 * (3 * s + k + 1)), rate)  # unique audio
            age = None if s % 10 == 0 else (35 if s % 4 == 0 else 6)
            lines.append(
                {"audio_filepath": f"audio/{wav.name}", "text": f"아 {own}", "speaker_id": f"s{s}", "age": age}
            )
    source = tmp_path / "corpus.jsonl"
    source.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    out = tmp_path / "prepared"
    done = trainer_cli(
        "data",
        "prepare",
        "--format",
        "jsonl",
        "--manifest",
        source,
        "--out",
        out,
        "--val-fraction",
        "0.2",
        "--test-fraction",
        "0.2",
        "--fractions",
        "1.0",
        "--curriculum-source",
        "all",
    )
    assert done.returncode == 0, done.stderr

    def syllables(name: str) -> set[str]:
        return {r["text"].split()[1] for r in load_manifest(out / name)}

    vocab = set(json.loads((out / "vocab.json").read_text(encoding="utf-8")))
    assert syllables("train.jsonl") <= vocab
    held_out = (syllables("val.jsonl") | syllables("test.jsonl")) - syllables("train.jsonl")
    assert held_out and not held_out & vocab
    # Unknown age counts as child; adults get their own views.
    unknown = {r["utt_id"] for r in load_manifest(out / "all.jsonl") if r["age"] is None}
    child = set().union(*(_ids(p) for p in out.glob("*_child.jsonl")))
    assert unknown and unknown <= child
    assert (out / "train_adult.jsonl").exists()


def test_cli_errors_exit_78_and_name_file_line_field(tmp_path):
    bad = tmp_path / "all.jsonl"
    good = {
        "utt_id": "a",
        "audio_filepath": "/a.wav",
        "duration": 1.0,
        "text": "가",
        "speaker_id": "s",
        "age": 3,
        "gender": "F",
        "snr_db": None,
    }
    bad.write_text(
        json.dumps(good) + "\n" + json.dumps({**good, "utt_id": "b", "gender": "X"}) + "\n", encoding="utf-8"
    )
    done = trainer_cli("data", "split", "--manifest", bad, "--out", tmp_path / "split")
    assert done.returncode == 78
    assert f"{bad}:2: field 'gender'" in done.stderr
    skipped = trainer_cli("data", "vocab", "--manifest", bad, "--out", tmp_path / "v", "--skip-invalid")
    assert skipped.returncode == 0 and '"invalid_field": 1' in skipped.stdout
    too_much = trainer_cli(
        "data", "curriculum", "--manifest", bad, "--hours", "30", "90", "--out", tmp_path / "c", "--skip-invalid"
    )
    assert too_much.returncode == 78 and "asked for 90 h" in too_much.stderr


def test_synth_and_import_commands(tmp_path):
    done = trainer_cli(
        "data",
        "synth",
        "--out",
        tmp_path / "corpus",
        "--child-speakers",
        "1",
        "--adult-speakers",
        "1",
        "--utterances-per-speaker",
        "2",
        "--workers",
        "1",
    )
    assert done.returncode == 0 and "4 utterances" in done.stdout, done.stderr
    done = trainer_cli(
        "data", "import", "--format", "aihub", "--root", tmp_path / "corpus", "--out", tmp_path / "all.jsonl"
    )
    assert done.returncode == 0 and "kept 4 utterances" in done.stdout, done.stderr
    assert len(load_manifest(tmp_path / "all.jsonl")) == 4
