"""Mispronunciation detection: the threshold calibration, and that the calibrated rule beats
flagging every syllable free recognition gets wrong, on synthetic readings whose posteriors come
from what was said (with noise that makes greedy recognition err)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("g2pk", reason="g2pk not installed")

from tests.assessment.test_align import synthetic_posteriors  # noqa: E402
from trainer.assessment.assess import assess_utterance, ground_truth_scores, judge, labelled_syllables  # noqa: E402
from trainer.assessment.detect import (  # noqa: E402
    DEFAULT_THRESHOLD,
    calibrate_threshold,
    detection,
    flagged,
    sequence_log_likelihoods,
)
from trainer.data.synth.lexicon import make_sentence  # noqa: E402
from trainer.data.synth.mispronounce import read_prompt  # noqa: E402
from trainer.data.text import build_vocab, save_vocab  # noqa: E402
from trainer.model.processor import TextCodec  # noqa: E402


def test_detection_counts():
    d = detection([True, True, False, False], [True, False, True, False])
    assert (d["tp"], d["fp"], d["fn"]) == (1, 1, 1) and d["precision"] == d["recall"] == d["f1"] == 0.5
    assert detection([False], [True])["f1"] == 0.0


def test_calibration_picks_the_threshold_with_the_best_f1():
    scores = [-9.0, -5.0, -2.0, 1.0, 3.0, None]
    truth = [True, True, False, False, True, False]
    threshold = calibrate_threshold(scores, truth)
    # Flagging the two lowest (F1 0.8) beats every other cut (all five scored: 0.75); a syllable
    # without a score is never flagged.
    assert threshold == pytest.approx(-3.5)
    assert [flagged(s, threshold) for s in scores] == [True, True, False, False, False, False]
    assert calibrate_threshold([-1.0, 2.0], [False, False]) == DEFAULT_THRESHOLD


def test_ctc_likelihood_prefers_what_was_said():
    rng = np.random.default_rng(0)
    log_probs, _ = synthetic_posteriors([3, 5, 7], rng, peak=6.0)
    said, other, too_long = sequence_log_likelihoods(log_probs, [[3, 5, 7], [3, 4, 7], [3] * 40], blank=0)
    assert said > other and too_long == -np.inf


def readings(seed: int, count: int):
    rng = np.random.default_rng(seed)
    return [read_prompt(make_sentence(rng), 0.3, rng) for _ in range(count)]


def assessed(reading, codec, rng, peak):
    tokenizer = codec.processor.tokenizer
    log_probs, _ = synthetic_posteriors(
        tokenizer(reading.spoken_phones).input_ids, rng, peak, codec.vocab_size, tokenizer.pad_token_id
    )
    line = assess_utterance(log_probs, codec, " ".join(reading.prompt), 0.02)
    return {**line, "mispronunciations": reading.errors}


def test_the_calibrated_rule_beats_flagging_what_recognition_gets_wrong(tmp_path):
    validation, test = readings(1, 40), readings(2, 40)
    texts = [" ".join(r.said) for r in validation + test] + [" ".join(r.prompt) for r in validation + test]
    save_vocab(build_vocab(texts, "phone"), tmp_path, "phone")
    codec = TextCodec.from_dir(tmp_path)
    rng = np.random.default_rng(3)
    # A weak model: the said phone only 3.5 logits above noise over ~50 classes, so greedy
    # decoding inserts and swaps phones now and then.
    calibration = [assessed(r, codec, rng, peak=3.5) for r in validation]
    lines = [assessed(r, codec, rng, peak=3.5) for r in test]
    entries, truth = labelled_syllables(calibration)
    assert sum(truth) > 10
    threshold = calibrate_threshold([e["llr"] for e in entries], truth)
    for line in lines:
        judge(line, threshold)
    scores = ground_truth_scores(lines)
    rule, recognition = scores["detection"], scores["recognition_detection"]
    assert recognition["fp"] > 0  # recognition did err: the comparison means something
    assert rule["f1"] > recognition["f1"]
    flagged_entries = [e for line in lines for e in line["syllables"] if e["verdict"] != "correct"]
    assert flagged_entries and all(e["pattern"] and e["said"] for e in flagged_entries)
