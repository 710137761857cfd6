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
used the same G2P, so the name is recorded with every result. Phone-unit models need no G2P of
their output (`ModelPhones`, `g2p_for_unit`); the g2pk path here and their targets share
trainer.data.phones, so both PERs count the same phones.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Iterable, Sequence

from trainer.exit_codes import ConfigError

Phonemes = tuple[str, ...]

ESPEAK_BATCH_LINES = 500  # texts per espeak-ng process (one process costs ~10 ms)
IPA_STRESS_MARKS = str.maketrans("", "", "ˈˌ")


class G2P:
    """Base class: converts texts to phoneme tuples, converting each distinct text once."""

    name = "g2p"
    # Whether the references' phones are the project's phone targets (trainer.data.phones): then a
    # test row without valid ones cannot be scored (screening.screen_test_rows).
    reads_phone_targets = False

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
    reads_phone_targets = True

    def __init__(self) -> None:
        super().__init__()
        from trainer.data.phones import g2pk_name, load_g2pk

        load_g2pk()  # ImportError here when g2pk is missing or broken: make_g2p's "auto" falls back
        self.name = g2pk_name()

    def _convert(self, texts: list[str]) -> Iterable[Phonemes]:
        # Hypotheses too: what a model wrote is scored as it is (Latin letters, if its vocabulary
        # has them, are phonemes no reference has); the references were screened for valid
        # phones (reads_phone_targets).
        from trainer.data.phones import pronounce, to_phones

        for text in texts:
            yield tuple(c for c in to_phones(pronounce(text)) if not c.isspace())


class ModelPhones(G2P):
    """A phone-unit model's own output (pronounced Hangul) read back as its phones: no G2P of the
    hypothesis. The tokens are g2pK's (the references were pronounced by it), so PER is comparable
    with that of grapheme models scored through G2pkG2P."""

    reads_phone_targets = True

    def __init__(self) -> None:
        super().__init__()
        from trainer.data.phones import g2pk_name

        self.name = f"model-phones ({g2pk_name()} references)"

    def _convert(self, texts: list[str]) -> Iterable[Phonemes]:
        from trainer.data.phones import to_phones

        for text in texts:
            yield tuple(c for c in to_phones(text) if not c.isspace())


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


def g2p_for_unit(unit: str, g2p: G2P) -> G2P:
    """The G2P that scores a model with this output unit: its own phones for phone models."""
    return ModelPhones() if unit == "phone" else g2p


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
