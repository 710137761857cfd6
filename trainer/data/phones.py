"""Korean phones: the pronounced form of a text (g2pK) as phone-level jamo, and syllables of phones.

A phone string is the conjoining jamo (Unicode NFD) of g2pK's output, which spells a text as it
is pronounced under the standard pronunciation rules (국물 -> 궁물, 같이 -> 가치, 신라 -> 실라),
with the vowels that Seoul Korean merged grouped (ㅐ/ㅔ, ㅒ/ㅖ, ㅙ/ㅚ/ㅞ: g2pK's `group_vowels`),
and without the silent initial ㅇ (U+110B), which is no sound. The initial (U+1100-U+1112),
vowel (U+1161-U+1175) and final (U+11A8-U+11C2) blocks are distinct code points, so 앙's
final ㅇ (/ŋ/) stays a phone. Spaces stay: they are the word delimiter of phone-unit models.

A phone string holds only PHONES (the onsets, the vowels left after grouping and the seven coda
sounds of rule 8 of the Standard Korean Pronunciation) and spaces, and every consonant belongs to
a syllable with a vowel: `text_phones`, the one producer of phone targets, raises PhoneError
(reason "invalid_phones") otherwise, and every caller (import, training, evaluation, assessment)
skips and counts the row. Latin letters are never converted (g2pK would spell English words from
NLTK's cmudict when that happens to be installed, so targets would depend on the machine): a text
with them has no phone target. g2pK 0.9.4 is corrected where it is wrong (`TABLE_CORRECTIONS`:
corrupt cells of its rule table; `PRONUNCIATION_EXCEPTIONS`: words its rules miss); `g2pk_name`
names the corrections, and is what results record as their G2P.

`from_phones` turns phones back into readable Hangul (a silent ㅇ before every vowel without an
initial, then NFC); sequences that form no syllable stay as loose jamo, so the round trip
`to_phones(from_phones(p)) == p` holds for any phone string.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from trainer.exit_codes import ConfigError

SILENT_ONSET = "\u110b"  # conjoining ㅇ as a syllable's initial: no sound
ONSETS = frozenset(map(chr, range(0x1100, 0x1113))) - {SILENT_ONSET}
# g2pK's group_vowels: ㅐ is written ㅔ, ㅒ ㅖ, ㅙ and ㅞ ㅚ.
GROUPED_VOWELS = frozenset("\u1162\u1164\u116b\u1170")
VOWELS = frozenset(map(chr, range(0x1161, 0x1176))) - GROUPED_VOWELS
# A syllable ends in one of seven sounds (Standard Korean Pronunciation, rule 8): ㄱ ㄴ ㄷ ㄹ ㅁ ㅂ ㅇ.
CODAS = frozenset("\u11a8\u11ab\u11ae\u11af\u11b7\u11b8\u11bc")
PHONES = ONSETS | VOWELS | CODAS
INVALID_PHONES = "invalid_phones"  # the skip reason of a text without a valid phone string
# g2pK calls per process that are remembered (a large corpus's distinct sentences).
PRONOUNCE_CACHE = 1 << 17


def is_initial(ch: str) -> bool:
    return "\u1100" <= ch <= "\u1112"


def is_vowel(ch: str) -> bool:
    return "\u1161" <= ch <= "\u1175"


def is_final(ch: str) -> bool:
    return "\u11a8" <= ch <= "\u11c2"


# g2pK applies ~570 distinct regular expressions to every sentence through `re.sub`, and Python
# keeps only 512 compiled ones (`re._MAXCACHE`, oldest dropped first): each sentence recompiled
# nearly all of them, 20 ms of a 21 ms conversion. Room for all of them makes the PER of a test set
# and a phone-unit corpus' targets ~20x cheaper (no public API sets this size).
REGEX_CACHE_FOR_G2PK = 2048


# g2pK 0.9.4's rule table (table.csv: coda x next onset -> replacement) has cells that were cut or
# run together, in the rows of ㄺ ㄼ ㄽ ㄿ ㅄ ㅆ before ㅋ ㅌ ㅍ: they write "1)" and drop the next
# onset and the space (닭 키우기 -> 다1)이우기), write a literal "1" (있 풀 -> 읻1풀), double a
# coda (읊 키 -> 읍 ᆸ 피), turn ㅋ or ㅌ into ㅍ (값 키 -> 갑 피, 흙투성이 -> 흑푸성이) or are
# empty, leaving the cluster unreduced inside a word (없토). ㅀ before a word boundary drops the
# delimiter, and ㅍ before ㄹ becomes ㄴ (앞로 -> 안노). Each pattern below replaces its cell (or
# fills the empty one) with what the rules say: a cluster keeps the consonant of rules 10-11, ㅆ
# becomes ㄷ (rule 9), ㅀ keeps the delimiter as every other coda does, and ㅍ before ㄹ is
# nasalised to ㅁ (rules 18-19) as ㅂ is.
TABLE_CORRECTIONS = {
    "ᆰ( ?)ᄏ": "ᆨ\\1ᄏ",
    "ᆰ( ?)ᄐ": "ᆨ\\1ᄐ",
    "ᆰ( ?)ᄑ": "ᆨ\\1ᄑ",
    "ᆲ( ?)ᄐ": "ᆯ\\1ᄐ",
    "ᆲ( ?)ᄑ": "ᆯ\\1ᄑ",
    "ᆳ( ?)ᄐ": "ᆯ\\1ᄐ",
    "ᆳ( ?)ᄑ": "ᆯ\\1ᄑ",
    "ᆵ( ?)ᄏ": "ᆸ\\1ᄏ",
    "ᆵ( ?)ᄐ": "ᆸ\\1ᄐ",
    "ᆵ( ?)ᄑ": "ᆸ\\1ᄑ",
    "ᆹ( ?)ᄏ": "ᆸ\\1ᄏ",
    "ᆹ( ?)ᄐ": "ᆸ\\1ᄐ",
    "ᆹ( ?)ᄑ": "ᆸ\\1ᄑ",
    "ᆻ( ?)ᄑ": "ᆮ\\1ᄑ",
    "ᆶ(\\W|$)": "ᆯ\\1",
    "ᇁ( ?)ᄅ": "ᆷ\\1ᄂ",
}
# Words whose pronunciation is lexical, which g2pK's rules get wrong: a coda before the vowel of a
# real morpheme takes its representative sound first (rule 15: 겉옷 [거돋], 헛웃음 [허두슴], 맛없다
# [마덥따]), ㄴ is inserted in a compound before 이 야 여 요 유 (rule 29: 한여름 [한녀름], 알약
# [알략], 뒷일 [뒨닐]). Each word is respelled where it starts a word, before g2pK runs, so that
# its rules then give the standard form, suffixes included (겉옷을 [거도슬]); a word whose reading
# depends on its parse (밭이랑: 밭 + 이랑 [바치랑], or furrow [반니랑]) is left to g2pK.
PRONUNCIATION_EXCEPTIONS = {
    # rule 15
    "겉옷": "걷옷",
    "윗옷": "윋옷",
    "웃옷": "욷옷",
    "헛웃음": "헏웃음",
    "첫인상": "처딘상",  # 첟인상 would be palatalised as 첟이 is
    "웃어른": "욷어른",
    "맛없": "맏없",
    "멋없": "먿없",
    # rule 29
    "한여름": "한녀름",
    "늦여름": "늦녀름",
    "첫여름": "첫녀름",
    "알약": "알냑",
    "눈약": "눈냑",
    "옛이야기": "옛니야기",
    "뒷일": "뒷닐",
    "앞일": "앞닐",
    "부엌일": "부엌닐",
    "집안일": "집안닐",
}
_EXCEPTION_WORDS = re.compile(r"(?<!\S)(?:" + "|".join(map(re.escape, PRONUNCIATION_EXCEPTIONS)) + ")")


class PhoneError(ConfigError):
    """A text without a valid phone string (module docstring); `reason` is the skip reason."""

    reason = INVALID_PHONES


@functools.cache
def load_g2pk():
    """g2pK's converter, imported once, with the offline cmudict stand-in in place first (the only
    place g2pk should be imported: its import otherwise goes to the network), without English
    (Latin letters stay as they are) and with TABLE_CORRECTIONS."""
    _ensure_cmudict_for_g2pk()
    import g2pk

    if getattr(re, "_MAXCACHE", REGEX_CACHE_FOR_G2PK) < REGEX_CACHE_FOR_G2PK:
        re._MAXCACHE = REGEX_CACHE_FOR_G2PK
    g2p = g2pk.G2p()
    g2p.cmu = {}  # English words by cmudict: only where NLTK's copy is installed (module docstring)
    g2p.table = corrected_table(g2p.table)
    return g2p


def corrected_table(table: list[tuple[str, str, list[str]]]) -> list[tuple[str, str, list[str]]]:
    """g2pK's parsed rule table (pattern, replacement, rule ids) with TABLE_CORRECTIONS: a
    corrected cell stays where it was; one that was empty joins its coda's row at the end (the
    cells of a row match different onsets, so their order within the row does not matter)."""
    fixed = [(pattern, TABLE_CORRECTIONS.get(pattern, replacement), ids) for pattern, replacement, ids in table]
    for pattern, replacement in TABLE_CORRECTIONS.items():
        if all(entry[0] != pattern for entry in fixed):
            row_end = max(i for i, entry in enumerate(fixed) if entry[0][0] == pattern[0])
            fixed.insert(row_end + 1, (pattern, replacement, []))
    return fixed


def g2pk_name() -> str:
    """g2pK's version and a digest of this module's corrections: results record it as their G2P,
    so phones from different rules are never compared as equal."""
    from importlib.metadata import version

    rules = json.dumps([TABLE_CORRECTIONS, PRONUNCIATION_EXCEPTIONS], ensure_ascii=False)
    return f"g2pk-{version('g2pk')}+fixes-{hashlib.sha256(rules.encode()).hexdigest()[:8]}+latin-unconverted"


@functools.lru_cache(maxsize=PRONOUNCE_CACHE)
def pronounce(text: str) -> str:
    """`text` (normalised Hangul) spelled as pronounced, by g2pK with vowel grouping, after
    PRONUNCIATION_EXCEPTIONS."""
    respelled = _EXCEPTION_WORDS.sub(lambda m: PRONUNCIATION_EXCEPTIONS[m.group()], text)
    return unicodedata.normalize("NFC", load_g2pk()(respelled, group_vowels=True))


def to_phones(pronounced: str) -> str:
    """Phone string of Hangul spelled as pronounced: NFD jamo without silent initials, spaces kept."""
    return "".join(c for c in unicodedata.normalize("NFD", pronounced) if c != SILENT_ONSET)


def text_phones(text: str, pronounced: str | None = None) -> str:
    """Phone string of a normalised transcript (g2pK, then `to_phones`); raises PhoneError when it
    is not one (module docstring). `pronounced`: the text's pronounced form when known."""
    phones = to_phones(pronounced if pronounced is not None else pronounce(text))
    outside = list(dict.fromkeys(c for c in phones if c not in PHONES and c != " "))
    if outside:
        raise PhoneError(f"{text!r} -> {phones!r}: {', '.join(map(repr, outside))} not phones")
    loose = [s.phones for s in syllables(phones) if not s.vowel]
    if loose:
        raise PhoneError(f"{text!r} -> {phones!r}: consonant(s) {', '.join(map(repr, loose))} outside any syllable")
    return phones


def from_phones(phones: str) -> str:
    """Readable Hangul of a phone string (inverse of `to_phones`; see the module docstring)."""
    out: list[str] = []
    for ch in phones:
        if is_vowel(ch) and not (out and is_initial(out[-1])):
            out.append(SILENT_ONSET)
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


@dataclass(frozen=True)
class Syllable:
    """One spoken syllable: its phones (`onset` and `coda` may be ""), word index, first phone index."""

    onset: str
    vowel: str
    coda: str
    word: int
    start: int  # index of its first phone in the space-free phone sequence

    @property
    def phones(self) -> str:
        return self.onset + self.vowel + self.coda

    def __len__(self) -> int:
        return len(self.phones)


def syllables(phones: str) -> list[Syllable]:
    """Cut a phone string into syllables (one per vowel: an initial before it, a final after it).

    Loose consonants that belong to no vowel (only in recognised output) get a vowel-less syllable
    of their own, so every phone belongs to exactly one syllable.
    """
    result: list[Syllable] = []
    index = 0
    for word, chunk in enumerate(phones.split()):
        i = 0
        while i < len(chunk):
            onset = vowel = coda = ""
            ch = chunk[i]
            if is_vowel(ch) or (is_initial(ch) and i + 1 < len(chunk) and is_vowel(chunk[i + 1])):
                if is_initial(ch):
                    onset, i = ch, i + 1
                vowel, i = chunk[i], i + 1
                if i < len(chunk) and is_final(chunk[i]):
                    coda, i = chunk[i], i + 1
            elif is_final(ch):
                coda, i = ch, i + 1
            else:
                onset, i = ch, i + 1
            syllable = Syllable(onset, vowel, coda, word, index)
            index += len(syllable)
            result.append(syllable)
    return result


def single_edits(phones: str, inventory: Sequence[str]) -> list[str]:
    """Every phone string one edit away from the syllable `phones`, in a fixed order, without
    duplicates and without `phones` itself: each of its phones replaced by another phone of
    `inventory` in the same role (onset by onset, vowel by vowel, final by final) or left out, and
    an onset or a final added where it has none."""
    parts = syllables(phones)
    if len(parts) != 1 or not parts[0].vowel:
        # Not one syllable (an edit left a consonant alone): only deletions remain meaningful.
        found = [phones[:i] + phones[i + 1 :] for i in range(len(phones))]
    else:
        (syllable,) = parts
        onset, vowel, coda = syllable.onset, syllable.vowel, syllable.coda
        onsets = [p for p in inventory if is_initial(p)]
        vowels = [p for p in inventory if is_vowel(p)]
        finals = [p for p in inventory if is_final(p)]
        found = [o + vowel + coda for o in ["", *onsets]]
        found += [onset + v + coda for v in ["", *vowels]]
        found += [onset + vowel + c for c in ["", *finals]]
    return [p for p in dict.fromkeys(found) if p != phones]


def _ensure_cmudict_for_g2pk() -> None:
    """g2pK downloads NLTK's cmudict at import (for English words). Texts here are normalised
    Hangul, so on offline machines an empty stand-in dictionary is enough."""
    import nltk

    from trainer.storage import cache_dir

    try:
        nltk.data.find("corpora/cmudict.zip")
        return
    except LookupError:
        pass
    try:
        root = _write_cmudict_stub(cache_dir() / "nltk-stub")
    except OSError:  # read-only home in a locked-down container
        root = _write_cmudict_stub(Path(tempfile.mkdtemp(prefix="nltk-stub-")))
    nltk.data.path.insert(0, str(root))


def _write_cmudict_stub(root: Path) -> Path:
    from trainer.data.manifest import atomic_write

    target = root / "corpora" / "cmudict.zip"
    if not target.exists():
        with atomic_write(target, binary=True) as handle, zipfile.ZipFile(handle, "w") as zf:
            zf.writestr("cmudict/cmudict", "")
    return root
