"""Exponential moving average of the trainable weights (LoRA adapters + CTC head, or all weights
when training from scratch). Evaluation and `checkpoint-best` use the averaged weights.

The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so short runs are not
dominated by the random initial weights.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file, save_file


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.shadow = {n: p.detach().float().clone() for n, p in self.params.items()}
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        # One multi-tensor kernel for all weights (a loop of small kernels on CPU).
        torch._foreach_lerp_(
            list(self.shadow.values()), [p.detach().float() for p in self.params.values()], 1.0 - decay
        )

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Temporarily put the averaged weights into the model."""
        backup = {n: p.detach().clone() for n, p in self.params.items()}
        with torch.no_grad():
            for name, param in self.params.items():
                param.copy_(self.shadow[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, param in self.params.items():
                    param.copy_(backup[name])

    def save(self, path: Path) -> None:
        save_file(
            {n: t.contiguous() for n, t in self.shadow.items()}, str(path), metadata={"updates": str(self.updates)}
        )

    def load(self, path: Path) -> None:
        from safetensors import safe_open

        tensors = load_file(str(path))
        if set(tensors) != set(self.shadow):
            raise ValueError(f"{path}: EMA tensors do not match the model's trainable weights")
        for name, tensor in tensors.items():
            self.shadow[name].copy_(tensor)
        with safe_open(str(path), "pt") as fh:
            self.updates = int(fh.metadata()["updates"])
