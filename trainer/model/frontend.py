"""The wav2vec2 convolutional front end's geometry: how many input samples make an output frame.

Stated here once and read by the model factory (the configs it builds), data import (labels_too_long
at XLS-R's frame rate, trainer.data.importers), screening and SpecAugment (a model's own frames,
from its config) and the bucketing sampler (batches padded to whole frames). Pure arithmetic with
no imports, so every layer of the package may read it (tests/test_layers.py).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

# The standard wav2vec2 / XLS-R front end, kept by the tiny models so their frame rates match XLS-R:
# 320x downsampling (20 ms frames at 16 kHz), 400-sample receptive field.
CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)
# The from-scratch base's: five layers reaching 640x (40 ms frames), 1,040-sample receptive field
# (why: trainer.model.factory.SCRATCH_FRONT_END).
SCRATCH_CONV_KERNEL = (10, 8, 4, 4, 4)
SCRATCH_CONV_STRIDE = (5, 4, 4, 2, 4)


def frame_samples(strides: Sequence[int]) -> int:
    """Input samples per output frame (the hop between frames)."""
    return math.prod(strides)


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Input samples one output frame sees."""
    field, hop = 1, 1
    for kernel, stride in zip(kernels, strides):
        field += (kernel - 1) * hop
        hop *= stride
    return field


# XLS-R's frame: the sampler pads batches to whole multiples of it.
FRAME_SAMPLES = frame_samples(CONV_STRIDE)


def conv_frames(kernels: Sequence[int], strides: Sequence[int], samples: int) -> int:
    """Output frames of a wav2vec2 conv front end for `samples` input samples (0 if too short)."""
    for kernel, stride in zip(kernels, strides):
        if samples < kernel:
            return 0
        samples = (samples - kernel) // stride + 1
    return samples


def min_samples_for_frames(config: Any, frames: int) -> int:
    """Fewest input samples for which the conv front end of a Wav2Vec2Config yields `frames` frames."""
    kernels, strides = config.conv_kernel, config.conv_stride
    return receptive_field(kernels, strides) + (frames - 1) * frame_samples(strides)
