"""Write a synthetic corpus in the AI Hub layout, in parallel, reproducibly.

    OUT/1.Training/원천데이터/<speaker>/<stem>.wav      16 kHz 16-bit mono
    OUT/1.Training/라벨링데이터/<speaker>/<stem>.json   label (field names as AihubFields defaults)
    OUT/2.Validation/...   OUT/3.Test/...              same layout
    OUT/synth_summary.json                             parameters, speakers, counts, audio digest

Speakers, not utterances, are spread over the three folders (80/10/10, at least one child and
one adult speaker in validation and test when there are three or more), like AI Hub's own split.
File stems look like AI Hub's: `KID_1000000007-1_5_F_00012` (speaker, age, gender, number),
`ADT_...` for adults. Each utterance is a pure function of (seed, speaker, number), so a corpus
is byte-identical for a seed whatever the number of workers. If OUT already holds a complete
corpus made with the same parameters, nothing is redone; a partial one, or one made with other
parameters, is replaced (only a folder holding synth_summary.json is ever cleared).

With `mispronounce_rate` set, every speaker reads its prompt as pronounced and child speakers say
each syllable wrong with that probability, by the phonological processes of trainer.data.processes
that are reported at the child's age or by an edit none of them makes ("other"; `processes`: a
subset of these error kinds by name; default all; trainer.data.synth.mispronounce); labels then record
under 합성정보 the prompt, the expected and spoken phones and every error (`mispronunciations`),
and write a mispronounced word as a dual transcription `(사과를)/(사가를)`.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from trainer.data.audio import SAMPLE_RATE
from trainer.data.manifest import atomic_write, write_json
from trainer.data.processes import select
from trainer.data.synth.lexicon import make_sentence
from trainer.data.synth.mispronounce import Reading, read_prompt
from trainer.data.synth.render import render
from trainer.data.synth.speakers import Speaker, make_speakers
from trainer.exit_codes import ConfigError
from trainer.layout import SYNTH_SUMMARY_FILE as SUMMARY_FILE

SOURCE_SPLITS = ("1.Training", "2.Validation", "3.Test")
AUDIO_DIR = "원천데이터"
LABEL_DIR = "라벨링데이터"
# Bump when rendering or the injected errors change, so an old corpus on disk is not mistaken for a
# current one (2: "other" errors, and errors espeak does not voice dropped).
SYNTH_VERSION = 2


@dataclass(frozen=True)
class SynthParams:
    n_child_speakers: int
    n_adult_speakers: int
    utterances_per_speaker: int
    seed: int
    mispronounce_rate: float | None = None
    processes: list[str] | None = None  # the phonological processes children make, by name
    version: int = SYNTH_VERSION


def assign_source_splits(speakers: list[Speaker], seed: int) -> dict[str, str]:
    """speaker_id -> source folder: per group 80/10/10, validation and test never empty if >= 3."""
    rng = np.random.default_rng([seed, 11])
    folders: dict[str, str] = {}
    for group in ("child", "adult"):
        members = [s.speaker_id for s in speakers if s.group == group]
        order = [members[i] for i in rng.permutation(len(members))]
        n_held = max(1, round(0.1 * len(order))) if len(order) >= 3 else 0
        for k, speaker_id in enumerate(order):
            folders[speaker_id] = (
                SOURCE_SPLITS[2] if k < n_held else SOURCE_SPLITS[1] if k < 2 * n_held else SOURCE_SPLITS[0]
            )
    return folders


def utterance_stem(speaker: Speaker, number: int) -> str:
    prefix = "KID" if speaker.group == "child" else "ADT"
    return f"{prefix}_{speaker.speaker_id}_{speaker.age}_{speaker.gender}_{number:05d}"


def label_for(
    speaker: Speaker,
    stem: str,
    raw_text: str,
    text: str,
    duration: float,
    snr_db: float,
    reading: Reading | None = None,
) -> dict:
    """An AI Hub-style label (free-talk field names) plus the synthesis facts under 합성정보."""
    truth = (
        {}
        if reading is None
        else {
            "prompt": " ".join(reading.prompt),
            "expectedPhones": reading.expected_phones,
            "spokenPhones": reading.spoken_phones,
            "mispronunciations": reading.errors,
        }
    )
    return {
        "발화정보": {
            "stt": raw_text,
            "fileNm": f"{stem}.wav",
            "recrdTime": f"{duration:.3f}",
            "recrdQuality": "16K",
            "scriptId": stem,
        },
        "대화정보": {"recrdEnvrn": "synthetic", "convrsThema": "child-directed", "recrdUnit": "espeak-ng"},
        "녹음자정보": {
            "gender": "남" if speaker.gender == "M" else "여",
            "recorderId": speaker.speaker_id,
            "age": speaker.age,
        },
        "합성정보": {
            "snrDb": snr_db,
            "text": text,
            "group": speaker.group,
            "voice": speaker.voice,
            "pitch": speaker.pitch,
            "rateWpm": speaker.rate_wpm,
            "formantScale": speaker.formant_scale,
            **truth,
        },
    }


def _synthesize_one(task: tuple[Path, Speaker, str, int, int, float | None, tuple[str, ...]]) -> dict:
    """Render and write one utterance; returns its facts for the summary."""
    out_dir, speaker, folder, number, seed, mispronounce_rate, processes = task
    rng = np.random.default_rng([seed, speaker.index, number])
    words = make_sentence(rng)
    reading = None
    if mispronounce_rate is not None:
        # Its own stream: the sentence and voice are the same whatever the rate.
        rate = mispronounce_rate if speaker.group == "child" else 0.0
        at_age = tuple(p for p in select(processes) if p.at_age(speaker.age))
        reading = read_prompt(words, rate, np.random.default_rng([seed, speaker.index, number, 1]), at_age)
    utterance = render(speaker, words, rng, reading)
    stem = utterance_stem(speaker, number)
    duration = len(utterance.samples) / SAMPLE_RATE
    wav = out_dir / folder / AUDIO_DIR / speaker.speaker_id / f"{stem}.wav"
    label = out_dir / folder / LABEL_DIR / speaker.speaker_id / f"{stem}.json"
    wav.parent.mkdir(parents=True, exist_ok=True)
    label.parent.mkdir(parents=True, exist_ok=True)
    sf.write(wav, utterance.samples, SAMPLE_RATE, subtype="PCM_16")
    with atomic_write(label) as handle:
        label = label_for(speaker, stem, utterance.raw_text, utterance.text, duration, utterance.snr_db, reading)
        json.dump(label, handle, ensure_ascii=False, indent=1)
    errors = len(reading.errors) if reading is not None else 0
    return {
        "stem": stem,
        "group": speaker.group,
        "folder": folder,
        "duration": duration,
        "mispronounced_syllables": errors,
        "wav_sha256": hashlib.sha256(wav.read_bytes()).hexdigest(),
    }


def audio_fingerprint(facts: list[dict]) -> str:
    """One digest of every utterance's audio: two corpora print the same one iff their wavs match."""
    digest = hashlib.sha256()
    for fact in sorted(facts, key=lambda f: f["stem"]):
        digest.update(f"{fact['stem']} {fact['wav_sha256']}\n".encode())
    return digest.hexdigest()


def synthesize_corpus(
    out_dir: str | Path,
    n_child_speakers: int = 8,
    n_adult_speakers: int = 4,
    utterances_per_speaker: int = 10,
    seed: int = 0,
    workers: int = 1,
    mispronounce_rate: float | None = None,
    processes: tuple[str, ...] | None = None,
) -> dict:
    """Write the corpus (layout in the module docstring) and return its summary dict.

    `processes`: the names of the error kinds children make (default: all of
    trainer.data.processes.select: its processes and "other").

    Also the function other areas' tests call for a small real corpus, e.g.
    `synthesize_corpus(tmp_path / "corpus", 4, 2, 6, seed=0)`.
    """
    if min(n_child_speakers, n_adult_speakers) < 0 or n_child_speakers + n_adult_speakers == 0:
        raise ConfigError("synth: need at least one speaker (--child-speakers/--adult-speakers >= 0)")
    if utterances_per_speaker <= 0:
        raise ConfigError(f"synth: --utterances-per-speaker must be positive, got {utterances_per_speaker}")
    if mispronounce_rate is not None and not 0 <= mispronounce_rate <= 1:
        raise ConfigError(f"synth: --mispronounce-rate must be within [0, 1], got {mispronounce_rate}")
    if processes is not None and mispronounce_rate is None:
        raise ConfigError("synth: --processes picks the errors of --mispronounce-rate; give that too")
    try:
        chosen = select(processes)
    except ValueError as exc:
        raise ConfigError(f"synth: {exc}") from None
    out_dir = Path(out_dir)
    names = [p.name for p in chosen] if mispronounce_rate is not None else None
    params = SynthParams(n_child_speakers, n_adult_speakers, utterances_per_speaker, seed, mispronounce_rate, names)
    summary_path = out_dir / SUMMARY_FILE
    if summary_path.exists():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if summary.get("complete") and summary.get("params") == asdict(params):
            print(f"synth: {out_dir} already holds this corpus (same parameters); nothing to do")
            return summary
        # Ours but partial or made with other parameters: start clean so no stale utterance stays.
        for folder in SOURCE_SPLITS:
            shutil.rmtree(out_dir / folder, ignore_errors=True)
    elif out_dir.exists():
        # A run killed while writing its first summary leaves only atomic_write's temp file.
        for leftover in out_dir.glob(f".{SUMMARY_FILE}.*.tmp"):
            leftover.unlink()
        if any(out_dir.iterdir()):
            raise ConfigError(f"synth: --out {out_dir} is not empty and holds no {SUMMARY_FILE}; choose a new folder")
    write_json({"params": asdict(params), "complete": False}, summary_path)
    speakers = make_speakers(n_child_speakers, n_adult_speakers, seed)
    folders = assign_source_splits(speakers, seed)
    tasks = [
        (out_dir, s, folders[s.speaker_id], n, seed, mispronounce_rate, tuple(p.name for p in chosen))
        for s in speakers
        for n in range(utterances_per_speaker)
    ]
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            facts = list(
                tqdm(
                    pool.imap(_synthesize_one, tasks, chunksize=8),
                    total=len(tasks),
                    desc="synth",
                    unit="utt",
                    mininterval=1.0,
                )
            )
    else:
        facts = [_synthesize_one(task) for task in tqdm(tasks, desc="synth", unit="utt", mininterval=1.0)]
    counts: dict[str, dict[str, float]] = {}
    for fact in facts:
        entry = counts.setdefault(f"{fact['folder']}/{fact['group']}", {"utterances": 0, "hours": 0.0})
        entry["utterances"] += 1
        entry["hours"] += fact["duration"] / 3600
    summary = {
        "params": asdict(params),
        "complete": True,
        "utterances": len(facts),
        "hours": round(sum(f["duration"] for f in facts) / 3600, 4),
        "audio_sha256": audio_fingerprint(facts),
        "mispronounced_syllables": sum(f["mispronounced_syllables"] for f in facts),
        "by_folder_and_group": {k: {**v, "hours": round(v["hours"], 4)} for k, v in sorted(counts.items())},
        "speakers": [{**s.to_dict(), "source_split": folders[s.speaker_id]} for s in speakers],
    }
    write_json(summary, summary_path)
    return summary
