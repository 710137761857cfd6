"""Long recordings: overlapping chunks whose centres tile the audio, stitched before decoding."""

import numpy as np
import pytest

from trainer.data.audio import SAMPLE_RATE, load_audio
from trainer.data.manifest import load_manifest
from trainer.evaluation.evaluate import load_model
from trainer.exit_codes import ConfigError
from trainer.model.chunking import chunk_bounds
from trainer.model.processor import TextCodec
from trainer.model.transcriber import CtcTranscriber

FRAME = 320  # samples per logit frame of the standard wav2vec2 front end


@pytest.mark.parametrize("n", [1, 999, 1000, 1001, 1600, 1601, 5000, 12345])
def test_chunk_centres_tile_the_audio(n):
    bounds = chunk_bounds(n, chunk=1000, stride=200)
    kept = [(start + left, end - right) for start, end, left, right in bounds]
    assert kept[0][0] == 0 and kept[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(kept, kept[1:]))  # no gap, no overlap
    assert all(end - start <= 1000 for start, end, _, _ in bounds)
    # Every chunk but a lone one keeps context on its shared sides, and the last is not a sliver.
    assert all(end - start > 400 for start, end, _, _ in bounds[1:])
    assert len(bounds) == 1 if n <= 1000 else all(r == 200 for _, _, _, r in bounds[:-1])


def test_no_chunking_and_bad_strides():
    assert chunk_bounds(5000, chunk=0, stride=0) == [(0, 5000, 0, 0)]
    for stride in (0, 500, 600):
        with pytest.raises(ConfigError, match="stride"):
            chunk_bounds(5000, chunk=1000, stride=stride)


class LocalModel:
    """A CTC 'model' without context: each 320-sample frame's class is where its largest sample
    lies (unchanged by the feature extractor's per-input normalisation). Its chunked output must
    equal its whole-audio output frame for frame: what chunking adds is only the stitching."""

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def __call__(self, input_values, attention_mask):
        frames = attention_mask.sum(-1) // FRAME
        n = input_values.shape[1] // FRAME
        windows = input_values[:, : n * FRAME].reshape(len(input_values), n, FRAME)
        classes = windows.argmax(-1) % self.vocab_size
        return np.eye(self.vocab_size, dtype=np.float32)[classes] * 5.0, frames


@pytest.fixture(scope="module")
def clips(eval_corpus) -> list[np.ndarray]:
    """The test set's speech, each clip cut to whole 320-sample frames."""
    rows = [r for r in load_manifest(eval_corpus["test"]) if r["utt_id"] != "broken"]
    return [a[: len(a) // FRAME * FRAME] for a in (load_audio(r["audio_filepath"]) for r in rows)]


def test_a_60_s_concatenation_transcribes_like_its_parts(eval_models, clips):
    """With a context-free model, a minute of clips back to back, transcribed in 10 s chunks, gives
    exactly the frames of the clips transcribed one by one: the chunks' centres tile the audio
    frame for frame. (A random-weight wav2vec2 cannot show this: its near-uniform posteriors
    flip with any change of context, 70-80% CER between a concatenation and its parts even
    unchunked.)"""
    codec = TextCodec.from_dir(eval_models["base"])
    model = LocalModel(codec.vocab_size)
    parts = []
    while sum(len(p) for p in parts) < 60 * SAMPLE_RATE:
        parts += clips
    long = np.concatenate(parts)
    part_logits, frames = zip(*(model(p[None], np.ones((1, len(p)), dtype=np.int64)) for p in parts))
    expected = codec.decode(np.concatenate([logits[0, : n[0]] for logits, n in zip(part_logits, frames)]))
    chunked = CtcTranscriber(model, codec, chunk_seconds=10.0, stride_seconds=2.0).decode([long])[0]
    assert len(expected.words) > 20 and chunked.text == expected.text
    assert [(w.start_frame, w.end_frame) for w in chunked.words] == [
        (w.start_frame, w.end_frame) for w in expected.words
    ]


def test_chunked_batches_with_a_real_model(eval_models, clips):
    """A long recording batched with a short one: its chunks share the padded batch, and each
    transcript is what it is alone; the short one is not chunked at all."""
    loaded = load_model(eval_models["adapter"])
    long = np.concatenate(clips * 3)
    chunked = CtcTranscriber(loaded.model, loaded.codec, chunk_seconds=10.0, stride_seconds=2.0)
    whole = CtcTranscriber(loaded.model, loaded.codec)
    assert len(long) > 30 * SAMPLE_RATE
    together = chunked([long, clips[0]])
    assert together == [chunked([long])[0], whole([clips[0]])[0]]
    assert together[0] != whole([long])[0]  # chunking did happen
