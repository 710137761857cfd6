"""Korean grapheme-to-phoneme conversion for the phoneme error rate (PER), cached per text.

Two real G2Ps, picked by name (`make_g2p`):
- "g2pk": the rule-based g2pK package (mecab-ko morphology + the standard pronunciation rules:
  국물이 -> 궁무리, 신라 -> 실라, 먹었어요 -> 머거써요). Its output is Hangul spelled as
  pronounced; the phonemes are its conjoining jamo (NFD) without the silent initial ㅇ, with the
  vowels that contemporary Seoul Korean merged grouped (ㅐ/ㅔ, ㅒ/ㅖ, ㅙ/ㅚ/ㅞ: g2pK's
  `group_vowels`). Preferred: it applies the rules that a child's pronunciation is judged by.
- "espeak": `espeak-ng -v ko --ipa` phonemes (IPA, stress marks dropped). Applies fewer Korean
  sound rules (국물 stays unassimilated) but needs no Python packages.
"auto" takes g2pk when it imports, else espeak. PER values are comparable only between runs that
used the same G2P, so the name is recorded with every result.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import unicodedata
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

from trainer.data.manifest import atomic_write
from trainer.exit_codes import ConfigError
from trainer.storage import cache_dir

Phonemes = tuple[str, ...]

SILENT_ONSET = "\u110b"  # conjoining ㅇ as a syllable's initial: no sound
ESPEAK_BATCH_LINES = 500  # texts per espeak-ng process (one process costs ~10 ms)
IPA_STRESS_MARKS = str.maketrans("", "", "ˈˌ")


class G2P:
    """Base class: converts texts to phoneme tuples, converting each distinct text once."""

    name = "g2p"

    def __init__(self) -> None:
        self._cache: dict[str, Phonemes] = {}

    def phonemes(self, texts: Sequence[str]) -> list[Phonemes]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self._convert(missing)))
        return [self._cache[t] for t in texts]

    def _convert(self, texts: list[str]) -> Iterable[Phonemes]:
        raise NotImplementedError


class G2pkG2P(G2P):
    def __init__(self) -> None:
        super().__init__()
        _ensure_cmudict_for_g2pk()
        from importlib.metadata import version

        import g2pk

        self._g2p = g2pk.G2p()
        self.name = f"g2pk-{version('g2pk')}"

    def _convert(self, texts: list[str]) -> Iterable[Phonemes]:
        for text in texts:
            spoken = self._g2p(text, group_vowels=True)
            yield tuple(c for c in unicodedata.normalize("NFD", spoken) if not c.isspace() and c != SILENT_ONSET)


class EspeakG2P(G2P):
    def __init__(self, executable: str = "espeak-ng") -> None:
        super().__init__()
        path = shutil.which(executable)
        if path is None:
            raise ConfigError(f"g2p: {executable} not found on PATH (apt-get install espeak-ng)")
        self._argv = [path, "-v", "ko", "-q", "--ipa", "--sep= "]
        version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.split()
        self.name = "espeak-ng-" + next((v for v in version if v[:1].isdigit()), "unknown")

    def _convert(self, texts: list[str]) -> Iterable[Phonemes]:
        for start in range(0, len(texts), ESPEAK_BATCH_LINES):
            chunk = texts[start : start + ESPEAK_BATCH_LINES]
            lines = self._run(chunk)
            # espeak starts a new output line at punctuation; texts are normalised without it,
            # but when a chunk does not map line to line, convert its texts one by one.
            if len(lines) != len(chunk):
                lines = [" ".join(self._run([t])) for t in chunk]
            yield from map(_ipa_tokens, lines)

    def _run(self, texts: list[str]) -> list[str]:
        flat = [" ".join(t.split()) for t in texts]
        out = subprocess.run(self._argv, input="\n".join(flat) + "\n", capture_output=True, text=True, check=True)
        return out.stdout.splitlines()


def _ipa_tokens(line: str) -> Phonemes:
    # "(en)"/"(ko)" mark espeak's language switches for Latin letters; they are not phonemes.
    tokens = line.translate(IPA_STRESS_MARKS).split()
    return tuple(t for t in tokens if not (t.startswith("(") and t.endswith(")")))


def make_g2p(backend: str = "auto") -> G2P:
    """A G2P by name: "g2pk", "espeak" or "auto" (g2pk when it imports, else espeak)."""
    if backend == "espeak":
        return EspeakG2P()
    if backend in ("g2pk", "auto"):
        try:
            return G2pkG2P()
        except ImportError as exc:
            if backend == "g2pk":
                raise ConfigError(f"g2p: g2pk is not installed ({exc}); pip install g2pk") from None
            return EspeakG2P()
    raise ConfigError(f"g2p: unknown backend {backend!r} (auto, g2pk, espeak)")


def _ensure_cmudict_for_g2pk() -> None:
    """g2pK downloads NLTK's cmudict at import (for English words). Texts here are normalised
    Hangul, so on offline machines an empty stand-in dictionary is enough."""
    import nltk

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
    target = root / "corpora" / "cmudict.zip"
    if not target.exists():
        with atomic_write(target, binary=True) as handle, zipfile.ZipFile(handle, "w") as zf:
            zf.writestr("cmudict/cmudict", "")
    return root
