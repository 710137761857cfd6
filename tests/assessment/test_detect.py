"""Mispronunciation detection: every syllable against every single-phone edit of it, the rule's
calibration, and that the calibrated rule beats flagging every syllable free recognition gets
wrong, on synthetic readings whose posteriors come from what was said (with noise that makes
greedy recognition err)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("g2pk", reason="g2pk not installed")

from tests.assessment.test_align import synthetic_posteriors  # noqa: E402
from trainer.assessment.assess import assess_utterance, ground_truth_scores, judge, labelled_syllables  # noqa: E402
from trainer.assessment.detect import (  # noqa: E402
    DEFAULT_RULE,
    Rule,
    calibrate,
    detection,
    false_alarm_threshold,
    sequence_log_likelihoods,
)
from trainer.data.phones import single_edits, text_phones  # noqa: E402
from trainer.data.processes import OTHER, PROCESSES  # noqa: E402
from trainer.data.synth.lexicon import make_sentence  # noqa: E402
from trainer.data.synth.mispronounce import read_prompt  # noqa: E402
from trainer.data.text import build_vocab, save_vocab  # noqa: E402
from trainer.model.processor import TextCodec  # noqa: E402


def test_detection_counts():
    d = detection([True, True, False, False], [True, False, True, False])
    assert (d["tp"], d["fp"], d["fn"]) == (1, 1, 1) and d["precision"] == d["recall"] == d["f1"] == 0.5
    assert detection([False], [True])["f1"] == 0.0


def test_the_threshold_flags_the_false_alarm_budget_of_correct_syllables():
    correct = [float(x) for x in range(100)]  # scores 0..99
    assert false_alarm_threshold(correct, 0.05) == pytest.approx(4.5)  # flags 0..4: five of 100
    assert false_alarm_threshold(correct, 0.001) == 0.0  # not one allowed: flags none
    assert false_alarm_threshold(correct, 1.0) > 99


def test_a_calibration_set_without_errors_still_sets_the_budget_and_one_without_correct_syllables_refuses():
    # The budget needs only the correct syllables: no errors gives the quantile at weight 0, not
    # the uncalibrated default (which would flag every syllable whose best edit beats the prompt).
    correct = [float(x) for x in range(-10, 190)]  # 200 scores, ten of them below 0
    rule = calibrate(correct, [-1.0] * 200, [False] * 200, 0.01)
    assert rule == Rule(false_alarm_threshold(correct, 0.01), 0.0) and rule != DEFAULT_RULE
    assert sum(rule.flags(s, -1.0) for s in correct) == 2
    with pytest.raises(ValueError, match="no correctly said syllable"):
        calibrate([-1.0, 2.0], [0.0, 0.0], [True, True])


def test_the_budget_does_not_move_with_how_many_errors_the_calibration_children_made():
    # The F1-best threshold follows the share of errors; the budget's threshold only the correct
    # syllables' scores: with ten times the errors, the rule is the same.
    rng = np.random.default_rng(0)
    correct = list(rng.normal(3.0, 1.0, 2000))
    errors = list(rng.normal(-2.0, 2.0, 400))
    few, many = correct + errors[:40], correct + errors
    rules = [calibrate(s, [0.0] * len(s), [False] * 2000 + [True] * (len(s) - 2000), 0.01) for s in (few, many)]
    assert rules[0] == rules[1]
    assert np.mean(np.asarray(correct) < rules[0].threshold) == pytest.approx(0.01)


def test_calibration_weighs_gop_in_when_it_finds_more_errors_within_the_budget():
    # llr alone ranks an error above every correct syllable but one; with GOP all errors fall
    # below every correct syllable, so at a budget of one false alarm in 100 GOP is weighed in.
    llrs = [-1.0, 2.0, *np.linspace(1.5, 9.0, 100)]
    gops = [-4.0, -4.0, *[0.0] * 100]
    truth = [True, True, *[False] * 100]
    rule = calibrate(llrs, gops, truth, 0.01)
    assert rule.gop_weight > 0
    assert [rule.flags(llr, gop) for llr, gop in zip(llrs, gops)][:2] == [True, True]
    only_llr = calibrate(llrs, [0.0] * len(llrs), truth, 0.01)
    assert only_llr.gop_weight == 0 and not only_llr.flags(2.0, 0.0)


def test_ctc_likelihood_prefers_what_was_said():
    rng = np.random.default_rng(0)
    log_probs, _ = synthetic_posteriors([3, 5, 7], rng, peak=6.0)
    said, other, too_long = sequence_log_likelihoods(log_probs, [[3, 5, 7], [3, 4, 7], [3] * 40], blank=0)
    assert said > other and too_long == -np.inf


def test_single_edits_substitute_delete_and_insert_one_phone():
    onsets, vowels, finals = ["\u1100", "\u1102", "\u1109"], ["\u1161", "\u1165"], ["\u11a8", "\u11ab"]
    edits = single_edits("\u1109\u1161", onsets + vowels + finals)  # 사
    assert "\u1109\u1161" not in edits and len(edits) == len(set(edits))
    assert {"\u1100\u1161", "\u1102\u1161"} <= set(edits)  # onset substituted
    assert "\u1109\u1165" in edits  # vowel substituted
    assert {"\u1161", "\u1109"} <= set(edits)  # onset, vowel deleted
    assert {"\u1109\u1161\u11a8", "\u1109\u1161\u11ab"} <= set(edits)  # final inserted
    assert len(edits) == 2 + 1 + 1 + 1 + 2  # nothing else: no onset to insert, one vowel, no final
    assert single_edits("\u1161", vowels) == ["", "\u1165"]  # 아: deleted or another vowel


def codec_for(tmp_path, texts):
    save_vocab(build_vocab(texts, "phone"), tmp_path, "phone")
    return TextCodec.from_dir(tmp_path)


@pytest.mark.parametrize(
    ("prompt", "said", "heard"),
    [
        ("사자가 와요", "하자가 와요", "하"),  # an onset no process changes that way
        ("사자가 와요", "사자가 오요", "오"),  # a vowel
        ("곰도 와요", "고도 와요", "고"),  # a final left out (final_dropped: named)
        ("바나나 줘요", "바나난 줘요", "난"),  # a final added
        ("오이 와요", "이 와요", ""),  # a syllable of one phone left out
    ],
)
def test_any_single_phone_error_is_flagged_and_what_was_heard_named(tmp_path, prompt, said, heard):
    codec = codec_for(tmp_path, ["하자가 사자 오이 이 바나난 줘요 오요 곰도 고도 와요 가나다라마바사아자차카타파하"])
    tokenizer = codec.processor.tokenizer
    rng = np.random.default_rng(5)
    log_probs, _ = synthetic_posteriors(
        tokenizer(text_phones(said)).input_ids, rng, 6.0, codec.vocab_size, tokenizer.pad_token_id
    )
    line = assess_utterance(log_probs, codec, prompt, 0.02)
    # A neighbour of an error shares its window of frames, so its score dips a little too (a
    # calibrated threshold lies below): -1, not the default 0.
    judge(line, Rule(-1.0))
    wrong = [e for e in line["syllables"] if e["verdict"] != "correct"]
    assert len(wrong) == 1, [(e["expected"], e["llr"]) for e in line["syllables"]]
    assert wrong[0]["said"] == heard and wrong[0]["llr"] < -3
    named = {"하": OTHER, "오": OTHER, "고": "final_dropped", "난": OTHER, "": OTHER}
    assert wrong[0]["pattern"] == named[heard]


def readings(seed: int, count: int, processes):
    rng = np.random.default_rng(seed)
    return [read_prompt(make_sentence(rng), 0.3, rng, processes) for _ in range(count)]


def assessed(reading, codec, rng, peak):
    tokenizer = codec.processor.tokenizer
    log_probs, _ = synthetic_posteriors(
        tokenizer(reading.spoken_phones).input_ids, rng, peak, codec.vocab_size, tokenizer.pad_token_id
    )
    line = assess_utterance(log_probs, codec, " ".join(reading.prompt), 0.02)
    return {**line, "mispronunciations": reading.errors}


def test_the_rule_calibrated_on_other_processes_beats_flagging_what_recognition_gets_wrong(tmp_path):
    # Calibrated on errors of some processes, scored on errors of the others only.
    validation, test = readings(1, 40, PROCESSES[::2]), readings(2, 40, PROCESSES[1::2])
    seen = {e["pattern"] for r in validation for e in r.errors}
    assert seen and not seen & {e["pattern"] for r in test for e in r.errors}
    texts = [" ".join(r.said) for r in validation + test] + [" ".join(r.prompt) for r in validation + test]
    codec = codec_for(tmp_path, texts)
    rng = np.random.default_rng(3)
    # A weak model: the said phone only 3.5 logits above noise over ~50 classes, so greedy
    # decoding inserts and swaps phones now and then.
    calibration = [assessed(r, codec, rng, peak=3.5) for r in validation]
    lines = [assessed(r, codec, rng, peak=3.5) for r in test]
    entries, truth = labelled_syllables(calibration)
    assert sum(truth) > 10
    rule = calibrate([e["llr"] for e in entries], [e["gop"] for e in entries], truth)
    for line in lines:
        judge(line, rule)
    scores = ground_truth_scores(lines, rule)
    detected, recognition = scores["detection"], scores["recognition_detection"]
    assert recognition["fp"] > 0  # recognition did err: the comparison means something
    assert detected["f1"] > recognition["f1"]
    assert set(scores["recall_per_process"]) == {e["pattern"] for r in test for e in r.errors}
    flagged_entries = [e for line in lines for e in line["syllables"] if e["verdict"] != "correct"]
    assert flagged_entries and all(e["pattern"] and "said" in e for e in flagged_entries)
