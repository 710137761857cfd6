"""Overlapping chunks for audio longer than a model should see at once (self-attention cost grows
with the square of the length, and the model never saw recordings longer than its training clips).

Like the transformers ASR pipeline's `chunk_length_s` / `stride_length_s`: chunks of `chunk`
samples overlap their neighbours by 2 x `stride`; of each chunk only the centre is kept (the
`stride` samples at a side shared with a neighbour are dropped), so every kept frame saw at least
`stride` of context on both sides, and the kept centres tile the audio exactly.
"""

from __future__ import annotations

from trainer.exit_codes import ConfigError

# Defaults: above the longest training clips of children's read speech (AI Hub: mostly < 15 s), so
# ordinary utterances run whole; the stride is the pipeline's default, a sixth of the chunk.
CHUNK_SECONDS = 30.0
STRIDE_SECONDS = 5.0


def chunk_bounds(n_samples: int, chunk: int, stride: int) -> list[tuple[int, int, int, int]]:
    """(start, end, drop_left, drop_right) in samples for each chunk of an `n_samples` audio;
    one chunk, nothing dropped, when it fits in `chunk` (or `chunk` is 0: no chunking)."""
    if chunk <= 0 or n_samples <= chunk:
        return [(0, n_samples, 0, 0)]
    if not 0 < 2 * stride < chunk:
        raise ConfigError(f"stride: must be above 0 and below half the chunk ({chunk} samples), got {stride} samples")
    step, start, bounds = chunk - 2 * stride, 0, []
    while True:
        end = min(start + chunk, n_samples)
        # The last chunk holds the rest: more than 2 x stride samples, as the one before it did
        # not reach the end.
        bounds.append((start, end, stride if start else 0, stride if end < n_samples else 0))
        if end == n_samples:
            return bounds
        start += step
