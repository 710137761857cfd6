"""SpecAugment's time masks drawn by the loader, applied in the forward without a host wait.

transformers' Wav2Vec2Model draws the masks inside the forward: it reads the feature lengths back
from the device (`.tolist()`), draws the spans with numpy on the host, copies the mask to the
device and writes it with a boolean index (`nonzero`): each of these makes the host wait for the
device. Here the loader's collate draws the same masks (transformers' own `_compute_mask_indices`,
which its docstring says belongs in preprocessing) in its worker processes, seeded by the batch's
utterances and epoch, so a resumed run draws the same masks whichever worker collates the batch;
the forward applies them with `torch.where`.

Only time masks: with feature masks also on (`mask_feature_prob` > 0), transformers draws both in
the forward, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices


@dataclass(frozen=True)
class TimeMasks:
    """The model config's time-mask settings (Wav2Vec2Config mask_time_*)."""

    prob: float
    length: int
    min_masks: int

    @classmethod
    def for_model(cls, config: Any) -> Optional["TimeMasks"]:
        """The settings, or None when the loader does not draw them (no SpecAugment, no time
        masks, or feature masks too)."""
        if not getattr(config, "apply_spec_augment", True) or config.mask_time_prob <= 0:
            return None
        if config.mask_feature_prob > 0:
            return None
        return cls(config.mask_time_prob, config.mask_time_length, config.mask_time_min_masks)

    def draw(self, frames: Sequence[int], padded_frames: int, seed: Sequence[int]) -> torch.Tensor:
        """Bool [B, padded_frames] masks for utterances of `frames` frames each; the same `seed`
        gives the same masks. The global numpy state the draw uses is restored afterwards."""
        lengths = torch.as_tensor(np.asarray(frames, dtype=np.int64))
        valid = torch.arange(padded_frames)[None, :] < lengths[:, None]
        saved = np.random.get_state()
        np.random.seed(np.random.SeedSequence([int(s) for s in seed]).generate_state(4))
        try:
            mask = _compute_mask_indices(
                (len(frames), padded_frames), self.prob, self.length, attention_mask=valid, min_masks=self.min_masks
            )
        finally:
            np.random.set_state(saved)
        return torch.from_numpy(mask)


def apply_given_time_masks(model: torch.nn.Module) -> None:
    """Make `model`'s Wav2Vec2Model apply a `mask_time_indices` it is given with `torch.where`
    (transformers writes it with a boolean index, which waits for the device); without one it
    masks as transformers does."""
    inner = (model.get_base_model() if hasattr(model, "get_base_model") else model).wav2vec2
    original = inner._mask_hidden_states

    def mask_hidden_states(
        hidden_states: torch.Tensor,
        mask_time_indices: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        if mask_time_indices is None:
            return original(hidden_states, attention_mask=attention_mask)
        embed = inner.masked_spec_embed.to(hidden_states.dtype)
        return torch.where(mask_time_indices.unsqueeze(-1), embed, hidden_states)

    inner._mask_hidden_states = mask_hidden_states
