"""Word and utterance confidences from the CTC posteriors, and their calibration summary."""

import json

import numpy as np
import pytest

from trainer.data.audio import load_audio
from trainer.data.manifest import load_manifest, write_manifest
from trainer.evaluation.confidence import calibration
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.evaluate import PREDICTIONS_FILE, evaluate, load_model
from trainer.evaluation.metrics import correct_words
from trainer.model.processor import TextCodec
from trainer.model.transcriber import CtcTranscriber


def _logits(codec: TextCodec, frames: list[tuple[str, float]]) -> np.ndarray:
    """Logits whose argmax per frame is the given token, with that posterior."""
    vocab = codec.processor.tokenizer.get_vocab()
    out = np.zeros((len(frames), len(vocab)), dtype=np.float32)
    for t, (token, p) in enumerate(frames):
        # softmax: p for the token, the rest shared equally by the others.
        out[t, vocab[token]] = np.log(p * (len(vocab) - 1) / (1 - p))
    return out


def test_word_confidence_is_the_least_sure_emitting_frame(eval_models):
    codec = TextCodec.from_dir(eval_models["base"])
    a, b, c = [t for t in codec.processor.tokenizer.get_vocab() if len(t) == 1 and "가" <= t <= "힣"][:3]
    frames = [(a, 0.9), (a, 0.6), ("[PAD]", 0.2), (b, 0.8), ("|", 0.99), ("[PAD]", 0.3), (c, 0.7)]
    decoded = codec.decode(_logits(codec, frames))
    assert decoded.text == f"{a}{b} {c}" == codec.decode_logits(_logits(codec, frames)[None], [len(frames)])[0]
    assert [w.text for w in decoded.words] == [f"{a}{b}", c]
    # Blank frames inside a word do not count; repeated frames of one unit do.
    assert [round(w.confidence, 4) for w in decoded.words] == [0.6, 0.7]
    assert decoded.confidence == pytest.approx(0.65)
    assert codec.decode(_logits(codec, [("[PAD]", 0.9)] * 3)).confidence is None


def test_correct_words_follow_the_alignment():
    assert correct_words("나는 학교에 간다", "나는 학교 간다 요") == [True, False, True, False]
    assert correct_words("나는", "") == []
    assert correct_words("", "하나") == [False]


def test_calibration_table():
    words = [
        {"confidence": c, "correct": ok}
        for c, ok in [(0.95, True), (0.91, True), (0.15, False), (0.12, True), (0.5, False)]
    ]
    cal = calibration(words)
    assert cal["words"] == 5 and cal["accuracy"] == pytest.approx(0.6)
    assert cal["mean_confidence_correct"] == pytest.approx((0.95 + 0.91 + 0.12) / 3)
    assert cal["mean_confidence_wrong"] == pytest.approx((0.15 + 0.5) / 2)
    bins = {round(b["low"], 1): b for b in cal["bins"] if b["words"]}
    assert {k: (b["words"], b["accuracy"]) for k, b in bins.items()} == {0.1: (2, 0.5), 0.5: (1, 0.0), 0.9: (2, 1.0)}
    expected_ece = (2 * abs(0.5 - 0.135) + 1 * 0.5 + 2 * abs(1.0 - 0.93)) / 5
    assert cal["ece"] == pytest.approx(expected_ece)
    assert calibration([])["ece"] is None


def test_confidence_is_higher_on_correct_than_on_wrong_words(eval_models, eval_corpus, tmp_path):
    """Held-out set: the test clips with noise added, scored against what the model says on the
    clean clips (a random-weight model reads no Korean, so its clean output stands in for the
    truth). Words the noise left unchanged must carry higher confidence than the ones it changed."""
    import soundfile as sf

    loaded = load_model(eval_models["adapter"])
    rows = [r for r in load_manifest(eval_corpus["test"]) if r["utt_id"] != "broken"]
    clean = CtcTranscriber(loaded.model, loaded.codec)([load_audio(r["audio_filepath"]) for r in rows])
    rng = np.random.default_rng(0)
    noisy_rows = []
    for row, text in zip(rows, clean):
        audio = load_audio(row["audio_filepath"])
        noisy = audio + rng.normal(0, 0.01 * audio.std(), len(audio)).astype(np.float32)  # 40 dB SNR
        path = tmp_path / f"{row['utt_id']}.wav"
        sf.write(path, noisy, 16000)
        noisy_rows.append({**row, "audio_filepath": str(path), "text": text})
    write_manifest(noisy_rows, tmp_path / "noisy.jsonl")
    out = tmp_path / "eval"
    report = evaluate(
        eval_models["adapter"],
        tmp_path / "noisy.jsonl",
        str(out),
        EvalConfig(num_workers=0, bootstrap=20),
        progress=False,
    )

    predictions = [json.loads(line) for line in (out / PREDICTIONS_FILE).read_text(encoding="utf-8").splitlines()]
    words = [w for p in predictions for w in p["words"]]
    assert all(" ".join(w["word"] for w in p["words"]) == p["hypothesis"] for p in predictions)
    assert all(p["confidence"] == pytest.approx(np.mean([w["confidence"] for w in p["words"]])) for p in predictions)
    right = [w["confidence"] for w in words if w["correct"]]
    wrong = [w["confidence"] for w in words if not w["correct"]]
    assert len(right) >= 5 and len(wrong) >= 5, (len(right), len(wrong))
    cal = report["confidence"]
    assert cal["mean_confidence_correct"] == pytest.approx(np.mean(right))
    assert np.mean(right) > np.mean(wrong)
