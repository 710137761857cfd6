"""Builders of small Hugging Face datasets for the hf importer tests, made with `datasets` itself
(no network). Rows are the tiny synthetic corpus's utterances: `corpus_rows` gives their audio
file, text, speaker, age and gender, which every builder lays out the way one source kind does.

`datasets` needs torchcodec to *encode* audio from Python objects, so the builders write the Audio
column's storage ({bytes, path}) and cast it to `Audio()`: the layout a real dataset has on disk.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from trainer.data.importers import import_aihub
from trainer.data.manifest import load_manifest

SPLIT_OF_SPEAKER = ("train", "train", "train", "test")  # speaker index % 4 -> split name


def corpus_rows(tiny_corpus: Path, scratch: Path) -> list[dict]:
    """The tiny corpus's usable utterances: utt_id, wav path, normalised text, speaker, age,
    gender and an hf split name (whole speakers per split)."""
    rows = load_manifest(import_aihub(tiny_corpus, scratch / "all.jsonl").output)
    speakers = sorted({r["speaker_id"] for r in rows})
    return [
        {
            "utt_id": r["utt_id"],
            "wav": r["audio_filepath"],
            "text": r["text"],
            "speaker_id": r["speaker_id"],
            "age": r["age"],
            "gender": r["gender"],
            "split": SPLIT_OF_SPEAKER[speakers.index(r["speaker_id"]) % len(SPLIT_OF_SPEAKER)],
        }
        for r in rows
    ]


def write_jsonl(rows: list[dict], path: Path) -> Path:
    """The same utterances as a JSONL manifest for `--format jsonl` (the route hf must equal)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for r in rows:
            record = {
                "utt_id": r["utt_id"],
                "audio_filepath": r["wav"],
                "text": r["text"],
                "speaker_id": r["speaker_id"],
                "age": r["age"],
                "gender": r["gender"],
                "source_split": r["split"],
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def stereo_22k(wav: str) -> bytes:
    """The wav's audio as a 22.05 kHz stereo WAV file's bytes (second channel a little quieter)."""
    import soxr

    samples, rate = sf.read(wav, dtype="float32")
    up = soxr.resample(samples, rate, 22050)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([up, 0.8 * up], axis=1), 22050, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _table(columns: dict[str, list], audio: str | None = "audio"):
    """A datasets.Dataset with `audio` cast to the Audio feature (its storage given as {bytes, path})."""
    from datasets import Audio, Dataset

    dataset = Dataset.from_dict(columns)
    return dataset.cast_column(audio, Audio()) if audio else dataset


def hf_columns(rows: list[dict], audio_bytes=None) -> dict[str, list]:
    """Common-Voice-like column names; `audio_bytes(row)` overrides a row's audio bytes."""
    return {
        "audio": [
            {"bytes": audio_bytes(r) if audio_bytes else Path(r["wav"]).read_bytes(), "path": Path(r["wav"]).name}
            for r in rows
        ],
        "sentence": [r["text"] for r in rows],
        "client_id": [r["speaker_id"] for r in rows],
        "age": [None if r["age"] is None else str(r["age"]) for r in rows],
        "gender": [{"M": "male", "F": "female"}.get(r["gender"] or "", "") for r in rows],
        "id": [r["utt_id"] for r in rows],
    }


def by_split(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["split"], []).append(r)
    return out


def save_to_disk_folder(rows: list[dict], folder: Path, audio_bytes=None, extra: dict | None = None) -> Path:
    """A DatasetDict saved with save_to_disk; `extra`: split -> more rows' columns (hf_columns names)."""
    from datasets import DatasetDict

    splits = {}
    for name, part in by_split(rows).items():
        columns = hf_columns(part, audio_bytes)
        for key, values in (extra or {}).get(name, {}).items():
            columns[key] = columns[key] + values
        splits[name] = _table(columns)
    DatasetDict(splits).save_to_disk(str(folder))
    return folder


def parquet_shards(rows: list[dict], folder: Path, shards: int = 2) -> Path:
    """`{split}-0000i-of-0000n.parquet` files, as the Hub's Parquet conversion names them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in by_split(rows).items():
        count = min(shards, len(part))
        for i in range(count):
            _table(hf_columns(part[i::count])).to_parquet(str(folder / f"{name}-{i:05d}-of-{count:05d}.parquet"))
    return folder


def audiofolder(rows: list[dict], folder: Path) -> Path:
    """`{split}/{utt_id}.wav` files with a metadata.csv per split (file_name, transcription, ...)."""
    for name, part in by_split(rows).items():
        target = folder / name
        target.mkdir(parents=True, exist_ok=True)
        lines = ["file_name,transcription,speaker_id,age,gender"]
        for r in part:
            shutil.copyfile(r["wav"], target / f"{r['utt_id']}.wav")
            age = "" if r["age"] is None else str(r["age"])
            lines.append(f"{r['utt_id']}.wav,{r['text']},{r['speaker_id']},{age},{r['gender'] or ''}")
        (target / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def odd_parquet(rows: list[dict], path: Path) -> Path:
    """One Parquet file with names no default covers and audio as a plain binary column."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {
        "wave": [Path(r["wav"]).read_bytes() for r in rows],
        "utterance": [r["text"] for r in rows],
        "who": [r["speaker_id"] for r in rows],
        "years": [r["age"] for r in rows],
        "key": [r["utt_id"] for r in rows],
    }
    _table(columns, audio=None).to_parquet(str(path))
    return path
