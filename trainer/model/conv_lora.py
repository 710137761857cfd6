"""LoRA on Conv1d layers computed in weight space: one convolution with W + scale * B @ A.

peft's Conv1d LoRA runs the adapter as two extra convolutions over the activations (A: in -> r
channels with the layer's kernel, B: 1x1 back to out), which on a wav2vec2 front end costs as
much as the frozen layer again at every frame (thousands of frames a second of audio). The
weight-space form builds the (out, in, kernel) delta from A and B, a matrix product the size of
the weights, and convolves once. Same function and gradients, same parameters and saved keys
(an adapter trained this way loads into plain peft). Steps whose conv LoRA dominates run faster
(tools/bench/bench_demo_step.py; BENCHMARKS.md).

Only plain LoRA without dropout on an ungrouped convolution takes this form here (dropout masks
activations, DoRA rescales them, a grouped layer such as the positional convolution has a
block-diagonal delta): other adapters, merged or disabled states run peft's own forward.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from peft.tuners.lora.layer import Conv1d as PeftLoraConv1d


class WeightSpaceLoraConv1d(PeftLoraConv1d):
    def _weight_space_adapters(self) -> list[str]:
        active = [a for a in self.active_adapters if a in self.lora_A]
        plain = all(a not in self.lora_variant and isinstance(self.lora_dropout[a], torch.nn.Identity) for a in active)
        return active if plain and self.get_base_layer().groups == 1 else []

    def delta_weight(self, adapter: str) -> torch.Tensor:
        """scale * B @ A as an (out, in, kernel) tensor (B is (out, r, 1), A is (r, in, kernel))."""
        lora_a, lora_b = self.lora_A[adapter].weight, self.lora_B[adapter].weight
        delta = lora_b.flatten(1) @ lora_a.flatten(1)
        return delta.view(lora_b.shape[0], *lora_a.shape[1:]) * self.scaling[adapter]

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        adapters = self._weight_space_adapters()
        if self.disable_adapters or self.merged or kwargs.get("adapter_names") is not None or not adapters:
            return super().forward(x, *args, **kwargs)
        base = self.get_base_layer()
        weight = base.weight + sum(self.delta_weight(a).to(base.weight.dtype) for a in adapters)
        return F.conv1d(x, weight, base.bias, base.stride, base.padding, base.dilation, base.groups)


CUSTOM_LORA_LAYERS = {torch.nn.Conv1d: WeightSpaceLoraConv1d}
