"""Korean transcripts: normalisation, output units (syllables or jamo) and the CTC vocabulary.

Normalisation (`normalize_transcript`) turns an AI Hub / KsponSpeech label into what the model
should write, in this order:

1. Unicode NFC (labels saved on macOS arrive as NFD: decomposed jamo), and invisible format
   characters (category Cf: zero-width space, ZWJ/ZWNJ, soft hyphen, BOM) removed: they sit inside
   words, so a space in their place would split one.
2. Dual transcriptions `(철자)/(발음)` (orthographic / spoken, e.g. `(3월)/(삼 월)`) keep one side,
   `dual="spoken"` (default: what was said) or `"orthographic"`.
3. Event tags `(XX:...)` such as `(SP:...)`, `(NO:...)`, `(SN:...)`, `(FP:...)` are removed with
   their content: they mark non-lexical sound (fillers, part-word repetitions, noise), which the
   model should learn to skip.
4. KsponSpeech noise marks `b/ l/ o/ n/ u/` (breath, laughter, other speaker, noise,
   unintelligible) are removed; the filler mark `/` (`어/`), repetition mark `+` and unclear mark
   `*` are removed and their word kept, as in the usual KsponSpeech recipes.
5. Punctuation and symbols are removed (letters, digits and spaces stay), whitespace collapsed.

Units: the CTC tokenizer reads `to_units(text, unit)` one character at a time and turns spaces
into WORD_DELIMITER itself (`Wav2Vec2CTCTokenizer(word_delimiter_token="|")`). With
`unit="syllable"` a unit is a Hangul syllable (about 1,000 in a large corpus); with `"jamo"` each
syllable is decomposed into conjoining jamo (U+1100-U+11FF, under 70 units, which tiny models learn
faster); `from_units` recomposes jamo into syllables (NFC). With `"phone"` the units are the
phones of the pronounced form (trainer.data.phones: 국물 -> 궁물 -> ㄱㅜㅇㅁㅜㄹ), so the model
writes what was said rather than how it is spelled; `from_units` shows them as pronounced Hangul.
A text whose pronounced form is no valid phone string (Latin letters, g2pK garbage) raises
trainer.data.phones.PhoneError, which every caller counts as a skipped row ("invalid_phones").
Rows prepared for phone units carry their pronounced form (`pronounced`, from g2pK, which takes
~35 ms a sentence); `to_units` takes it when given instead of running g2pK again.

The vocabulary is built from the training split only (`build_vocab`), so val/test characters
never leak into the model's output layer, and saved as the HF tokenizer's `vocab.json` plus
`text_units.json` recording the unit.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from trainer.exit_codes import ConfigError
from trainer.layout import UNITS_FILE, VOCAB_FILE

Unit = Literal["syllable", "jamo", "phone"]
UNITS: tuple[str, ...] = ("syllable", "jamo", "phone")
WORD_DELIMITER = "|"
PAD = "[PAD]"
UNK = "[UNK]"

_DUAL = re.compile(r"\(([^()]*)\)\s*/\s*\(([^()]*)\)")
_EVENT_TAG = re.compile(r"\([A-Z]{1,4}:[^()]*\)")
_NOISE_MARK = re.compile(r"(?<![^\s(])[bloun]/")
_WORD_MARKS = re.compile(r"[/+*]")
_SPACES = re.compile(r"\s+")


def _keep(ch: str) -> bool:
    """Letters, digits and spaces stay; punctuation (P*), symbols (S*) and controls go."""
    return ch.isspace() or unicodedata.category(ch)[0] in "LN"


def normalize_transcript(text: str, dual: Literal["spoken", "orthographic"] = "spoken") -> str:
    """The transcript the model should learn (steps in the module docstring); may return ""."""
    if dual not in ("spoken", "orthographic"):
        raise ConfigError(f"dual: must be 'spoken' or 'orthographic', got {dual!r}")
    text = "".join(ch for ch in unicodedata.normalize("NFC", text) if unicodedata.category(ch) != "Cf")
    side = 2 if dual == "spoken" else 1
    text = _DUAL.sub(lambda m: m.group(side), text)
    text = _EVENT_TAG.sub(" ", text)
    text = _NOISE_MARK.sub(" ", text)
    text = _WORD_MARKS.sub("", text)
    text = "".join(ch if _keep(ch) else " " for ch in text)
    return _SPACES.sub(" ", text).strip()


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise ConfigError(f"unit: must be one of {', '.join(UNITS)}, got {unit!r}")


def to_units(text: str, unit: Unit, pronounced: str | None = None) -> str:
    """The string the CTC tokenizer sees char by char (spaces stay spaces; see module docstring).

    `pronounced`: the text's pronounced form when known (phone units only; g2pK otherwise).
    Phone units raise trainer.data.phones.PhoneError for a text without a valid phone string.
    """
    _check_unit(unit)
    if unit == "phone":
        from trainer.data.phones import text_phones

        return text_phones(text, pronounced)
    return unicodedata.normalize("NFD" if unit == "jamo" else "NFC", text)


def from_units(units: str, unit: Unit) -> str:
    """Inverse of to_units on a decoded string: jamo recomposed to syllables, NFC (phones: as
    pronounced Hangul)."""
    _check_unit(unit)
    if unit == "phone":
        from trainer.data.phones import from_phones

        return from_phones(units)
    return unicodedata.normalize("NFC", units)


def build_vocab(texts: Iterable[str], unit: Unit, pronounced: Mapping[str, str] | None = None) -> dict[str, int]:
    """Vocabulary for Wav2Vec2CTCTokenizer: [PAD]=0 (the CTC blank), [UNK], "|", then sorted units.

    Pass the training split's texts only (and, for phone units, their pronounced forms where
    known: text -> pronounced). Characters that occur once in a large corpus are kept: pruning is
    the caller's choice, made before calling.
    """
    _check_unit(unit)
    chars: set[str] = set()
    for text in texts:
        chars.update(to_units(text, unit, (pronounced or {}).get(text)))
    chars.discard(" ")
    chars.discard(WORD_DELIMITER)
    if not chars:
        raise ConfigError("vocabulary: no characters in the training texts")
    vocab = {PAD: 0, UNK: 1, WORD_DELIMITER: 2}
    for ch in sorted(chars):
        vocab[ch] = len(vocab)
    return vocab


def save_vocab(vocab: dict[str, int], directory: str | Path, unit: Unit) -> Path:
    """Write DIR/vocab.json (HF Wav2Vec2CTCTokenizer format) and DIR/text_units.json; returns vocab path."""
    from trainer.data.manifest import write_json

    _check_unit(unit)
    directory = Path(directory)
    write_json(vocab, directory / VOCAB_FILE)
    write_json({"unit": unit}, directory / UNITS_FILE)
    return directory / VOCAB_FILE


def load_unit(directory: str | Path) -> Unit:
    """The unit recorded next to a vocab.json by save_vocab."""
    path = Path(directory) / UNITS_FILE
    try:
        unit = json.loads(path.read_text(encoding="utf-8"))["unit"]
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (write it with `python -m trainer data vocab`)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: field 'unit': unreadable ({exc})") from None
    _check_unit(unit)
    return unit
