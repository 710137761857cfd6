"""The shared row rules (trainer.data.screening) and the filesystem errors they turn into skips."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import soundfile as sf

from trainer.data import audio as audio_module
from trainer.data.audio import AudioError, inspect_audio, load_audio
from trainer.data.screening import (
    SKIP_REASONS,
    SkipTally,
    ctc_frames_needed,
    row_problem,
    screen_rows,
)
from trainer.exit_codes import ConfigError

RATE = 16000


def _wav(path, seconds: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.random.default_rng(0).standard_normal(int(seconds * RATE))).astype(np.float32), RATE)
    return path


def test_ctc_needs_a_blank_between_repeated_labels():
    assert ctc_frames_needed([1, 2, 3]) == 3
    assert ctc_frames_needed([1, 1, 2, 2, 2]) == 8
    assert ctc_frames_needed([]) == 0


@pytest.mark.parametrize(
    ("labels", "frames", "claimed", "measured", "expected"),
    [
        ([5, 6, 7], 10, 2.0, 2.0, None),
        ([], 10, 2.0, 2.0, "empty_transcript"),
        ([2, 2], 10, None, 2.0, "empty_transcript"),  # only word delimiters
        ([1, 2, 1], 10, None, 2.0, "all_unknown"),
        ([1, 2, 5], 10, None, 2.0, None),  # one known unit is something to learn
        ([5, 6, 7], 2, None, 2.0, "labels_too_long"),
        ([5, 5, 5], 4, None, 2.0, "labels_too_long"),  # 3 labels, but 5 frames with the blanks
        ([5, 6], 10, 0.2, 2.0, "duration_mismatch"),  # the manifest 10x too small
        ([5, 6], 10, 2.4, 2.0, None),  # within 0.5 s
        ([5, 6], 10, 22.0, 20.0, None),  # within 10 %
        ([5, 6], 10, 23.0, 20.0, "duration_mismatch"),
    ],
)
def test_row_problem(labels, frames, claimed, measured, expected):
    assert row_problem(labels, frames, claimed, measured, unknown=1, delimiter=2) == expected
    assert expected is None or expected in SKIP_REASONS


def test_filesystem_errors_are_audio_errors_with_reasons(tmp_path, monkeypatch):
    folder = tmp_path / "clip.wav"
    folder.mkdir()
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    good = _wav(tmp_path / "good.wav", 1.0)
    for path, reason in ((folder, "not_a_file"), (fifo, "not_a_file"), (tmp_path / "none.wav", "missing")):
        with pytest.raises(AudioError) as caught:
            load_audio(path)
        assert caught.value.reason == reason

    def failing_open(error):
        def fake(*args, **kw):
            raise error

        return fake

    # Root ignores file modes, so the errors are injected where the module opens files.
    for error, reason in (
        (PermissionError(errno.EACCES, "Permission denied"), "denied"),
        (OSError(errno.EIO, "Input/output error"), "io_error"),
    ):
        monkeypatch.setattr(audio_module, "open", failing_open(error), raising=False)
        with pytest.raises(AudioError) as caught:
            inspect_audio(good)
        assert caught.value.reason == reason and caught.value.path == str(good)
        if reason == "io_error":
            assert "EIO" in str(caught.value)


def test_screen_rows_measures_durations_and_counts_by_reason(tmp_path):
    rows = []
    for name, seconds, claimed, text in (
        ("ok", 2.0, 2.0, "abc"),
        ("ten_x_small", 3.0, 0.3, "abc"),  # kept duration would be 10x off: skipped
        ("slightly_off", 2.0, 2.3, "abc"),  # kept, with the measured 2.0 s
        ("too_long", 0.6, 0.6, "ab" * 40),
        ("unknown", 1.0, 1.0, "zzz"),
        ("empty", 1.0, 1.0, "!!!"),
    ):
        rows.append(
            {
                "utt_id": name,
                "audio_filepath": str(_wav(tmp_path / f"{name}.wav", seconds)),
                "duration": claimed,
                "text": text,
            }
        )
    (tmp_path / "dir.wav").mkdir()
    rows.append({"utt_id": "dir", "audio_filepath": str(tmp_path / "dir.wav"), "duration": 1.0, "text": "abc"})
    vocab = {"a": 5, "b": 6, "c": 7}

    def encode(row):
        return [vocab.get(ch, 1) for ch in row["text"] if ch.isalpha()]

    frames = lambda seconds: int(seconds * 50)  # noqa: E731 - 20 ms frames
    kept, tally = screen_rows(rows, "val_manifest", encode, frames, unknown=1, delimiter=2, invalid={"bad_json": 1})
    assert [r["utt_id"] for r in kept] == ["ok", "slightly_off"]
    assert [r["duration"] for r in kept] == pytest.approx([2.0, 2.0])
    assert dict(tally.counts) == {
        "duration_mismatch": 1,
        "labels_too_long": 1,
        "all_unknown": 1,
        "empty_transcript": 1,
        "not_a_file": 1,
        "bad_json": 1,
    }
    assert tally.total == 8 and tally.skipped == 6
    assert "val_manifest: skipped 6 of 8 rows" in tally.summary()
    with pytest.raises(ConfigError, match=r"max_skipped_val_share=0.05 allows; first: ten_x_small: duration_mismatch"):
        tally.check_share(0.05, "max_skipped_val_share")
    tally.check_share(0.75, "max_skipped_val_share")


def test_an_empty_or_wholly_skipped_source_fails_whatever_the_bound(tmp_path):
    with pytest.raises(ConfigError, match="skipped 0 of 0 rows"):
        SkipTally("val_manifest").check_share(1.0, "max_skipped_val_share")
    tally = SkipTally("val_manifest", total=2)
    tally.add("missing_audio", "u1", "/x/a.wav")
    tally.add("missing_audio", "u2", "/x/b.wav")
    with pytest.raises(
        ConfigError,
        match=r"first: u1: missing_audio: /x/a.wav \(relative audio_filepath values are read from the manifest's own folder\)",
    ):
        tally.check_share(1.0, "max_skipped_val_share")


def test_test_rows_keep_what_only_some_models_cannot_write(tmp_path):
    from trainer.data.screening import model_limit, screen_test_rows

    rows = [
        {"utt_id": name, "audio_filepath": str(_wav(tmp_path / f"{name}.wav", 1.0)), "duration": claimed, "text": text}
        for name, claimed, text in (
            ("unknown", 1.0, "zzz"),
            ("long", 1.0, "ab" * 100),
            ("empty", 1.0, "!!!"),
            ("mismatch", 3.0, "abc"),
        )
    ]
    kept, tally = screen_test_rows(rows, "test")
    assert [r["utt_id"] for r in kept] == ["unknown", "long"]
    assert dict(tally.counts) == {"empty_transcript": 1, "duration_mismatch": 1}
    # Scored, but counted against the model: unknown = 1, delimiter = 2.
    assert model_limit([1, 1, 2, 1], 49, 1, 2) == "all_unknown"
    assert model_limit([5, 1, 6], 49, 1, 2) == "out_of_vocabulary"
    assert model_limit([5, 6] * 30, 49, 1, 2) == "labels_too_long"
    assert model_limit([5, 6, 7], 49, 1, 2) is None


def test_rows_without_phones_are_skipped_where_phones_are_scored(tmp_path):
    pytest.importorskip("g2pk", reason="g2pk not installed")
    from trainer.data.screening import screen_test_rows
    from trainer.data.text import to_units

    rows = [
        {"utt_id": name, "audio_filepath": str(_wav(tmp_path / f"{name}.wav", 1.0)), "duration": 1.0, "text": text}
        for name, text in (("latin", "TV를 봤다"), ("hangul", "우리 같이 놀자"))
    ]
    kept, tally = screen_test_rows(rows, "test", phones=True)
    assert [r["utt_id"] for r in kept] == ["hangul"] and dict(tally.counts) == {"invalid_phones": 1}
    assert "'T', 'V' not phones" in tally.examples[0]["detail"]
    kept, tally = screen_test_rows(rows, "test")  # a grapheme model scored without g2pK's phones
    assert len(kept) == 2 and tally.skipped == 0
    # Training: the codec's phone labels raise for the row, which is counted, not fatal.
    kept, tally = screen_rows(rows, "train", lambda row: to_units(row["text"], "phone"), lambda s: 50 * int(s))
    assert [r["utt_id"] for r in kept] == ["hangul"] and dict(tally.counts) == {"invalid_phones": 1}


def test_screening_in_shares_reads_each_header_once_and_equals_one_screening(tmp_path, monkeypatch):
    """DDP: each process screens its share of the rows; the joined shares are the whole screening."""
    from trainer.data import screening
    from trainer.data.screening import join_shares, share

    rows = [
        {
            "utt_id": f"u{i}",
            "audio_filepath": str(_wav(tmp_path / f"u{i}.wav", 1.0)),
            "duration": 1.0 if i % 3 else 5.0,  # every third row's duration is wrong: skipped
            "text": "abc",
        }
        for i in range(7)
    ]
    encode = lambda row: [5, 6, 7]  # noqa: E731
    frames = lambda seconds: 50  # noqa: E731
    whole, whole_tally = screen_rows(rows, "train_manifest", encode, frames, invalid={"bad_json": 2})
    read = []
    inspect = screening.inspect_audio
    monkeypatch.setattr(screening, "inspect_audio", lambda path: read.append(path) or inspect(path))
    world = 3
    shares = [
        screen_rows(
            share(rows, r, world), "train_manifest", encode, frames, invalid={"bad_json": 2} if r == 0 else None
        )
        for r in range(world)
    ]
    joined, tally = join_shares(shares, "train_manifest")
    assert sorted(read) == sorted(r["audio_filepath"] for r in rows)  # each header once, over all processes
    assert joined == whole and len(joined) == 4
    assert (tally.total, dict(tally.counts), tally.utt_ids) == (9, dict(whole_tally.counts), whole_tally.utt_ids)
    assert [len(share(rows, r, world)) for r in range(world)] == [3, 2, 2]
