"""Metric values against hand-computed examples (Hangul spacing, substitutions, empty hypothesis)."""

import pytest

from trainer.evaluation.metrics import (
    Edits,
    cer,
    char_edits,
    error_rate,
    jamo_edits,
    jer,
    respace_like_reference,
    space_normalised_word_edits,
    swer,
    text_edits,
    token_edits,
    wer,
    word_edits,
)


def test_spacing_only_difference_costs_words_but_not_swer_or_cer():
    ref, hyp = "나는 학교에 간다", "나는학교에 간다"
    # Words: 나는학교에 replaces 나는 and 학교에 is missing -> 1 substitution + 1 deletion of 3.
    assert word_edits(ref, hyp) == Edits(2, 3)
    assert respace_like_reference(ref, hyp) == ref
    assert space_normalised_word_edits(ref, hyp) == Edits(0, 3)
    assert char_edits(ref, hyp) == Edits(0, 7)  # 7 syllables, spaces not counted
    assert jamo_edits(ref, hyp) == Edits(0, 17)


def test_spacing_moved_inside_words_is_also_normalised():
    # 학교에 간다 written 학교 에간다: two substituted words, identical characters.
    assert word_edits("나는 학교에 간다", "나는 학교 에간다") == Edits(2, 3)
    assert space_normalised_word_edits("나는 학교에 간다", "나는 학교 에간다") == Edits(0, 3)


def test_wrong_syllable_costs_one_word_after_respacing():
    ref, hyp = "나는 학교에", "나는학겨에"
    # 교 -> 겨: the matched 학 takes the reference's word start, so the hypothesis reads 나는 학겨에.
    assert respace_like_reference(ref, hyp) == "나는 학겨에"
    assert space_normalised_word_edits(ref, hyp) == Edits(1, 2)
    assert word_edits(ref, hyp) == Edits(2, 2)
    assert char_edits(ref, hyp) == Edits(1, 5)
    # 나는학교에 = 나 는 학 교 에 = 12 jamo; 교 -> 겨 changes one vowel (ᅭ -> ᅧ).
    assert jamo_edits(ref, hyp) == Edits(1, 12)


def test_empty_hypothesis_deletes_everything():
    ref = "안녕 하세요"
    assert text_edits(ref, "") == {
        "wer": Edits(2, 2),
        "swer": Edits(2, 2),
        "cer": Edits(5, 5),
        "jer": Edits(12, 12),  # 안녕하세요: 3 + 3 + 2 + 2 + 2 jamo
    }
    assert wer([ref], [""]) == cer([ref], [""]) == 1.0


def test_insertions_can_push_rates_above_one():
    assert word_edits("가 나", "가 나 다 라 마") == Edits(3, 2)
    assert wer(["가 나"], ["가 나 다 라 마"]) == 1.5


def test_corpus_rate_sums_edits_not_averages_utterance_rates():
    refs = ["가 나", "다 라 마 바"]
    hyps = ["가 나", ""]
    assert wer(refs, hyps) == pytest.approx(4 / 6)  # not (0 + 1) / 2
    assert swer(refs, hyps) == pytest.approx(4 / 6)
    assert cer(refs, hyps) == pytest.approx(4 / 6)
    assert jer(refs, hyps) == pytest.approx(8 / 12)


def test_token_edits_on_phoneme_like_tokens():
    assert token_edits(["tɕ", "a"], ["tɕ", "a"]) == Edits(0, 2)
    assert token_edits(["tɕ", "a"], ["t", "a", "k"]) == Edits(2, 2)
    assert token_edits([], []) == Edits(0, 0)


def test_error_rate_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        error_rate([Edits(0, 0)])
