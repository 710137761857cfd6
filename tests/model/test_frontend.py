"""The conv front end's geometry (trainer.model.frontend) and the configs built with it."""

from __future__ import annotations

from trainer.model.factory import SCRATCH_FRONT_END, tiny_wav2vec2_config, xlsr_300m_config
from trainer.model.frontend import (
    CONV_KERNEL,
    CONV_STRIDE,
    FRAME_SAMPLES,
    SCRATCH_CONV_KERNEL,
    SCRATCH_CONV_STRIDE,
    conv_frames,
    frame_samples,
    min_samples_for_frames,
    receptive_field,
)

RATE = 16000


class _Config:
    """What the front-end arithmetic reads of a wav2vec2 config."""

    def __init__(self, kernels, strides):
        self.conv_kernel, self.conv_stride = kernels, strides


def test_conv_frames_is_the_inverse_of_min_samples_for_frames():
    for kernels, strides in ((CONV_KERNEL, CONV_STRIDE), (SCRATCH_CONV_KERNEL, SCRATCH_CONV_STRIDE)):
        config = _Config(kernels, strides)
        for frames in (1, 2, 49, 500):
            samples = min_samples_for_frames(config, frames)
            assert conv_frames(kernels, strides, samples) == frames
            assert conv_frames(kernels, strides, samples - 1) == frames - 1
    # XLS-R: 20 ms frames, so one second is 49 frames; the scratch front end's 40 ms halves that.
    assert conv_frames(CONV_KERNEL, CONV_STRIDE, RATE) == 49
    assert conv_frames(SCRATCH_CONV_KERNEL, SCRATCH_CONV_STRIDE, RATE) == 24


def test_frame_size_and_receptive_field():
    assert FRAME_SAMPLES == frame_samples(CONV_STRIDE) == 320
    assert receptive_field(CONV_KERNEL, CONV_STRIDE) == 400
    assert frame_samples(SCRATCH_CONV_STRIDE) == 640
    assert receptive_field(SCRATCH_CONV_KERNEL, SCRATCH_CONV_STRIDE) == 825


def test_the_factory_builds_models_with_the_stated_front_ends():
    for config in (tiny_wav2vec2_config(8), xlsr_300m_config(8)):
        assert (tuple(config.conv_kernel), tuple(config.conv_stride)) == (CONV_KERNEL, CONV_STRIDE)
    scratch = tiny_wav2vec2_config(8, **SCRATCH_FRONT_END)
    assert (tuple(scratch.conv_kernel), tuple(scratch.conv_stride)) == (SCRATCH_CONV_KERNEL, SCRATCH_CONV_STRIDE)
