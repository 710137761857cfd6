"""Fixtures for the data layer: a tiny real synthetic corpus and realistic rows without audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainer.data.synth import synthesize_corpus

# 4 child + 2 adult speakers x 5 utterances: every code path of the real corpus in ~2 s.
TINY = {"n_child_speakers": 4, "n_adult_speakers": 2, "utterances_per_speaker": 5, "seed": 0}


@pytest.fixture(scope="session")
def tiny_params() -> dict:
    """The parameters tiny_corpus was made with."""
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic AI Hub-style corpus (treat as read-only)."""
    root = tmp_path_factory.mktemp("tiny_corpus") / "corpus"
    synthesize_corpus(root, workers=2, **TINY)
    return root


def make_rows(n_speakers: int, mean_rows: int, seed: int, adult_share: float = 0.0) -> list[dict]:
    """Manifest rows without audio, spread like a real children's corpus.

    Speakers aged 3-10 (2 % unknown; `adult_share` of them 20-60), each with its own room
    (SNR ~ N(18, 6) dB, +-3 per utterance, 2 % unknown), pace (log-normal durations around 5 s)
    and number of utterances (0.3-1.7 x mean_rows).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_speakers):
        age = (
            None
            if rng.random() < 0.02
            else int(rng.integers(20, 61) if rng.random() < adult_share else rng.integers(3, 11))
        )
        room, pace = rng.normal(18, 6), rng.normal(np.log(4.5), 0.3)
        folder = str(rng.choice(["1.Training", "2.Validation", "3.Test"], p=[0.8, 0.1, 0.1]))
        for k in range(int(mean_rows * rng.uniform(0.3, 1.7)) + 1):
            utt = f"spk{s:05d}_{k:04d}"
            rows.append(
                {
                    "utt_id": utt,
                    "audio_filepath": f"/corpus/{folder}/{utt}.wav",
                    "duration": float(np.clip(np.exp(pace + rng.normal(0, 0.5)), 0.5, 30.0)),
                    "text": "강아지가 귀여워요",
                    "speaker_id": f"spk{s:05d}",
                    "age": age,
                    "gender": "F" if s % 2 else "M",
                    "snr_db": None if rng.random() < 0.02 else float(room + rng.uniform(-3, 3)),
                    "source_split": folder,
                    "audio_fingerprint": f"fp-{utt}",
                }
            )
    return rows


@pytest.fixture(scope="session")
def realistic_rows() -> list[dict]:
    """~60k rows from 1500 speakers: enough speakers that stratification is meaningful (issue 2)."""
    return make_rows(1500, 40, seed=5)


@pytest.fixture(scope="session")
def row_factory():
    """make_rows, for tests that need their own speaker counts or seeds."""
    return make_rows
