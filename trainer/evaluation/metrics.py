"""Error-rate metrics for Korean ASR, as per-utterance edit counts that aggregate over a corpus.

Every metric is an edit distance (substitutions + deletions + insertions, via jiwer) between a
reference and a hypothesis cut into tokens, divided by the number of reference tokens. Corpus
rates sum the edits and the reference lengths over utterances (`error_rate`), so long utterances
weigh more than short ones, as in every ASR toolkit; averaging per-utterance rates would not.

The metrics and their tokens:
- wer:  words as spaced (eojeol). Korean spacing varies between transcribers and writers
        (학교 에 / 학교에), so plain WER mixes recognition errors with spacing conventions.
- swer: space-normalised WER, KsponSpeech's sWER (Bang et al., Appl. Sci. 2020, 10(19), 6936):
        the hypothesis is respaced like the reference, then scored as WER. The two texts are
        aligned character by character ignoring spaces; between two successive hypothesis
        characters that equal their reference characters, and any unmatched ones between them,
        the hypothesis takes the reference's spacing: no space where the reference has none
        between those two (unmatched characters join the word), and where it has one, the
        hypothesis' own spaces there, or one before the second character if it has none. Before
        the first and after the last matched character the hypothesis keeps its own spacing. Of
        the respaced and the hypothesis' own spacing the one with fewer word errors counts (both
        spell the same characters; an alignment that pairs repeated characters oddly can respace
        worse), so sWER <= WER. A hypothesis that differs only in spacing scores 0; one wrong
        syllable costs one word, as it would with the reference's spacing.
- cer:  Hangul syllables (characters) with all spaces removed: spacing is WER's business, so CER
        counts recognition errors only.
- jer:  jamo error rate: characters decomposed into conjoining jamo (Unicode NFD), spaces
        removed. 교 -> 겨 is one jamo error of three, where CER counts the whole syllable.
- per:  phoneme error rate over phoneme sequences from a Korean G2P (see `g2p.py`); this module
        only scores the sequences it is given.

Every per-utterance function reads its texts as Unicode NFC, so a caller's NFD text (decomposed
jamo, as macOS writes it) is the same text, not a different one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

import jiwer

from trainer.data.text import to_units

METRICS = ("wer", "swer", "cer", "jer", "per")


@dataclass(frozen=True)
class Edits:
    """Edit operations needed to turn one hypothesis into its reference, and the reference size."""

    errors: int  # substitutions + deletions + insertions
    ref_len: int  # tokens in the reference


def token_edits(ref: Sequence[str], hyp: Sequence[str]) -> Edits:
    """Levenshtein edits between two token sequences (tokens must not contain whitespace)."""
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return Edits(out.substitutions + out.deletions + out.insertions, len(ref))


def word_edits(ref: str, hyp: str) -> Edits:
    return token_edits(_nfc(ref).split(), _nfc(hyp).split())


def char_edits(ref: str, hyp: str) -> Edits:
    return token_edits(_spaceless(_nfc(ref)), _spaceless(_nfc(hyp)))


def jamo_edits(ref: str, hyp: str) -> Edits:
    return token_edits(to_jamo(ref), to_jamo(hyp))


def space_normalised_word_edits(ref: str, hyp: str) -> Edits:
    return min(word_edits(ref, hyp), word_edits(ref, respace_like_reference(ref, hyp)), key=lambda e: e.errors)


def to_jamo(text: str) -> list[str]:
    """Conjoining jamo of `text` without spaces (the model's jamo units, Unicode NFD)."""
    return _spaceless(to_units(text, "jamo"))


def respace_like_reference(ref: str, hyp: str) -> str:
    """`hyp` with the reference's spacing between its characters that match reference characters
    (module docstring, swer)."""
    ref_chars, ref_starts = _chars_and_word_starts(_nfc(ref))
    hyp_chars, hyp_starts = _chars_and_word_starts(_nfc(hyp))
    if ref_chars and hyp_chars:
        aligned: dict[int, int] = {}  # hypothesis character -> the equal reference character
        for chunk in jiwer.process_characters("".join(ref_chars), "".join(hyp_chars)).alignments[0]:
            if chunk.type == "equal":
                aligned.update(
                    zip(range(chunk.hyp_start_idx, chunk.hyp_end_idx), range(chunk.ref_start_idx, chunk.ref_end_idx))
                )
        order = sorted(aligned)
        for before, after in zip(order, order[1:]):
            gaps = range(before + 1, after + 1)  # hyp_starts[k]: a space before character k
            if not any(ref_starts[aligned[before] + 1 : aligned[after] + 1]):
                hyp_starts[before + 1 : after + 1] = [False] * len(gaps)
            elif not any(hyp_starts[k] for k in gaps):
                hyp_starts[after] = True
    return "".join((" " if start and i else "") + c for i, (c, start) in enumerate(zip(hyp_chars, hyp_starts)))


def correct_words(ref: str, hyp: str) -> list[bool]:
    """For each word of `hyp`, whether the word alignment with `ref` matches it to an equal word."""
    ref, hyp = _nfc(ref), _nfc(hyp)
    words = hyp.split()
    correct = [False] * len(words)
    if words and ref.split():
        for chunk in jiwer.process_words(ref, hyp).alignments[0]:
            if chunk.type == "equal":
                correct[chunk.hyp_start_idx : chunk.hyp_end_idx] = [True] * (chunk.hyp_end_idx - chunk.hyp_start_idx)
    return correct


def error_rate(edits: Iterable[Edits]) -> float:
    """Corpus-level rate: total edits / total reference tokens."""
    errors = ref_len = 0
    for e in edits:
        errors += e.errors
        ref_len += e.ref_len
    if ref_len == 0:
        raise ValueError("error rate of an empty reference set is undefined")
    return errors / ref_len


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    return error_rate(map(word_edits, refs, hyps))


def swer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    return error_rate(map(space_normalised_word_edits, refs, hyps))


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    return error_rate(map(char_edits, refs, hyps))


def jer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    return error_rate(map(jamo_edits, refs, hyps))


TEXT_EDITS = {"wer": word_edits, "swer": space_normalised_word_edits, "cer": char_edits, "jer": jamo_edits}


def text_edits(ref: str, hyp: str, metrics: Iterable[str] = tuple(TEXT_EDITS)) -> dict[str, Edits]:
    """Text-only metrics (all but PER, or those in `metrics`) for one utterance."""
    return {metric: TEXT_EDITS[metric](ref, hyp) for metric in metrics}


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _spaceless(text: str) -> list[str]:
    return [c for c in text if not c.isspace()]


def _chars_and_word_starts(text: str) -> tuple[list[str], list[bool]]:
    chars: list[str] = []
    starts: list[bool] = []
    for word in text.split():
        chars += word
        starts += [True] + [False] * (len(word) - 1)
    return chars, starts
