"""Metric values against hand-computed examples (Hangul spacing, substitutions, empty hypothesis)."""

import random
import unicodedata

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


def test_a_hypothesis_spaced_as_the_reference_is_never_charged_more_by_swer():
    # 가방 -> 방가: one word either way. Aligned as 방 inserted, 가 kept, 방 deleted, the kept 가
    # once took the reference's word start and split the hypothesis into two words.
    assert word_edits("가방", "방가") == Edits(1, 1)
    assert respace_like_reference("가방", "방가") == "방가"
    assert space_normalised_word_edits("가방", "방가") == Edits(1, 1)


@pytest.mark.parametrize(
    ("ref", "hyp", "respaced", "swer_errors", "wer_errors"),
    [
        ("가나", "가 다 나", "가다나", 1, 3),  # an inserted syllable inside a word joins the word
        ("가 나", "가다나", "가다 나", 1, 2),  # the reference's boundary is kept next to it
        ("가 나 다", "가다", "가 다", 1, 3),  # a deleted word leaves its boundary
    ],
)
def test_spacing_around_unmatched_characters_follows_the_reference(ref, hyp, respaced, swer_errors, wer_errors):
    assert respace_like_reference(ref, hyp) == respaced
    assert space_normalised_word_edits(ref, hyp).errors == swer_errors
    assert word_edits(ref, hyp).errors == wer_errors


def test_swer_never_exceeds_wer_on_edited_sentences():
    """Random syllable substitutions, deletions, insertions and swaps inside the words of the
    synthetic corpus' child-directed sentences (the hypothesis keeps the reference's spaces):
    sWER <= WER on every pair."""
    import numpy as np

    from trainer.data.synth.lexicon import make_sentence

    sentences = [" ".join(make_sentence(np.random.default_rng(seed))) for seed in range(200)]
    syllables = sorted({c for s in sentences for c in s if not c.isspace()})
    rng = random.Random(7)
    for _ in range(2000):
        ref = rng.choice(sentences)
        words = [list(w) for w in ref.split()]
        for _ in range(rng.randint(1, 4)):
            word = rng.choice(words)
            i = rng.randrange(len(word))
            edit = rng.choice("sdiw")
            if edit == "s":
                word[i] = rng.choice(syllables)
            elif edit == "d" and len(word) > 1:
                del word[i]
            elif edit == "w" and len(word) > 1:
                j = (i + 1) % len(word)
                word[i], word[j] = word[j], word[i]
            else:
                word.insert(i, rng.choice(syllables))
        hyp = " ".join("".join(w) for w in words)
        assert space_normalised_word_edits(ref, hyp).errors <= word_edits(ref, hyp).errors, (ref, hyp)


def test_metrics_read_nfd_text_as_the_same_text():
    nfd = unicodedata.normalize("NFD", "갔다 왔다")
    assert nfd != "갔다 왔다"
    assert cer(["갔다 왔다"], [nfd]) == wer(["갔다 왔다"], [nfd]) == swer(["갔다 왔다"], [nfd]) == 0.0
    assert jer(["갔다 왔다"], [nfd]) == 0.0
    assert text_edits(nfd, "갔다 왔다") == {
        "wer": Edits(0, 2),
        "swer": Edits(0, 2),
        "cer": Edits(0, 4),
        "jer": Edits(0, 10),
    }
