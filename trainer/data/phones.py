"""Korean phones: the pronounced form of a text (g2pK) as phone-level jamo, and syllables of phones.

A phone string is the conjoining jamo (Unicode NFD) of g2pK's output, which spells a text as it
is pronounced under the standard pronunciation rules (국물 -> 궁물, 같이 -> 가치, 신라 -> 실라),
with the vowels that Seoul Korean merged grouped (ㅐ/ㅔ, ㅒ/ㅖ, ㅙ/ㅚ/ㅞ: g2pK's `group_vowels`),
and without the silent initial ㅇ (U+110B), which is no sound. The initial (U+1100-U+1112),
vowel (U+1161-U+1175) and final (U+11A8-U+11C2) blocks are distinct code points, so 앙's
final ㅇ (/ŋ/) stays a phone. Spaces stay: they are the word delimiter of phone-unit models.

`from_phones` turns phones back into readable Hangul (a silent ㅇ before every vowel without an
initial, then NFC); sequences that form no syllable stay as loose jamo, so the round trip
`to_phones(from_phones(p)) == p` holds for any phone string.
"""

from __future__ import annotations

import functools
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

SILENT_ONSET = "\u110b"  # conjoining ㅇ as a syllable's initial: no sound
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


@functools.cache
def load_g2pk():
    """g2pK's converter, imported once, with the offline cmudict stand-in in place first (the only
    place g2pk should be imported: its import otherwise goes to the network)."""
    _ensure_cmudict_for_g2pk()
    import g2pk

    if getattr(re, "_MAXCACHE", REGEX_CACHE_FOR_G2PK) < REGEX_CACHE_FOR_G2PK:
        re._MAXCACHE = REGEX_CACHE_FOR_G2PK
    return g2pk.G2p()


def g2pk_name() -> str:
    from importlib.metadata import version

    return f"g2pk-{version('g2pk')}"


@functools.lru_cache(maxsize=PRONOUNCE_CACHE)
def pronounce(text: str) -> str:
    """`text` (normalised Hangul) spelled as pronounced, by g2pK with vowel grouping."""
    return unicodedata.normalize("NFC", load_g2pk()(text, group_vowels=True))


def pronounce_all(texts: list[str], workers: int = 1) -> dict[str, str]:
    """text -> pronounced form for every distinct text, in `workers` processes (g2pK takes ~1 ms
    a sentence here: a 1.7M-utterance corpus is still half an hour of it on one core)."""
    import multiprocessing

    distinct = list(dict.fromkeys(texts))
    if workers <= 1 or len(distinct) < 2:
        return {t: pronounce(t) for t in distinct}
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        chunk = max(1, min(256, len(distinct) // (workers * 8)))
        return dict(zip(distinct, pool.imap(pronounce, distinct, chunksize=chunk)))


def to_phones(pronounced: str) -> str:
    """Phone string of Hangul spelled as pronounced: NFD jamo without silent initials, spaces kept."""
    return "".join(c for c in unicodedata.normalize("NFD", pronounced) if c != SILENT_ONSET)


def text_phones(text: str) -> str:
    """Phone string of a normalised transcript (g2pK, then `to_phones`)."""
    return to_phones(pronounce(text))


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
