"""Korean G2P for PER: real pronunciation rules, identical text scores 0, batching is transparent."""

import os
import shutil
import subprocess
import sys

import pytest

from trainer.evaluation.g2p import EspeakG2P, make_g2p
from trainer.evaluation.metrics import char_edits, token_edits

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
SENTENCES = ["국물이 맛있어요", "신라 시대", "나는 학교에 간다", "먹었어요"]


@pytest.fixture(scope="module")
def g2pk():
    pytest.importorskip("g2pk", reason="g2pk not installed")
    return make_g2p("g2pk")


def test_g2pk_applies_pronunciation_rules(g2pk):
    # 국물이 is pronounced 궁무리 (nasalisation + liaison), 신라 as 실라 (lateralisation):
    # spelled differently (CER > 0), pronounced the same (PER = 0).
    for written, spoken in [("국물이", "궁무리"), ("신라", "실라"), ("먹었어요", "머거써요")]:
        assert char_edits(written, spoken).errors > 0
        a, b = g2pk.phonemes([written, spoken])
        assert a == b and len(a) > 0
        assert token_edits(a, b).errors == 0


def test_g2pk_scores_a_hypothesis_without_valid_phones_as_written(g2pk):
    # A reference like this is screened out (invalid_phones); a model's output is scored as it is.
    (latin,) = g2pk.phonemes(["TV를 봤다"])
    assert latin[:2] == ("T", "V")


def test_g2pk_phonemes_drop_silent_initial(g2pk):
    # 아이 = ㅇ+ㅏ ㅇ+ㅣ: the initial ㅇ is silent, two phonemes remain.
    assert g2pk.phonemes(["아이"]) == [("\u1161", "\u1175")]


@pytest.mark.parametrize("backend", ["g2pk", pytest.param("espeak", marks=needs_espeak)])
def test_per_of_identical_text_is_zero(backend):
    if backend == "g2pk":
        pytest.importorskip("g2pk", reason="g2pk not installed")
    g2p = make_g2p(backend)
    for text in SENTENCES:
        ref, hyp = g2p.phonemes([text, text])
        assert len(ref) > 0
        assert token_edits(ref, hyp).errors == 0


@needs_espeak
def test_espeak_batch_matches_one_text_per_process():
    batched = EspeakG2P().phonemes(SENTENCES)
    single = [EspeakG2P().phonemes([s])[0] for s in SENTENCES]
    assert batched == single
    assert all(p and not any(c in "ˈˌ" for token in p for c in token) for p in batched)


@needs_espeak
def test_espeak_falls_back_when_lines_do_not_map():
    # A comma makes espeak start a new output line: the batch is redone text by text.
    texts = ["사과, 배", "나는 학교에 간다"]
    assert EspeakG2P().phonemes(texts) == [EspeakG2P().phonemes([t])[0] for t in texts]


def test_choosing_g2pk_never_sends_nltk_to_the_network(tmp_path):
    # Importing g2pk downloads NLTK's cmudict unless trainer.data.phones has put its offline
    # stand-in in place first; picking the backend must not import it behind that step's back.
    pytest.importorskip("g2pk", reason="g2pk not installed")
    script = "from trainer.evaluation.g2p import make_g2p; print(make_g2p('auto').phonemes(['국물이']))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "NLTK_DATA": str(tmp_path), "TRAINER_CACHE_DIR": str(tmp_path / "cache")},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[nltk_data]" not in done.stdout + done.stderr
