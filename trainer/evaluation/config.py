"""Options shared by `evaluate` and `compare` (flags generated from the fields, like TrainConfig).

RUNTIME fields (trainer.config) change how fast, not what is computed: a pipeline run's name
does not depend on them (trainer.pipeline.naming.settings_hash)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from trainer.config import setting
from trainer.exit_codes import ConfigError
from trainer.model.chunking import CHUNK_SECONDS, STRIDE_SECONDS


@dataclass
class EvalConfig:
    batch_seconds: float = setting(
        0.0, "padded audio seconds per length-sorted inference batch (0: 10 on CPU, 100 on GPU)", runtime=True
    )
    device: str = setting("auto", "auto|cpu|cuda|cuda:N", runtime=True)
    g2p: Literal["auto", "g2pk", "espeak"] = setting("auto", "Korean G2P for PER (auto: g2pk if installed)")
    num_workers: int = setting(2, "audio loading worker processes (0: load in the main process)", runtime=True)
    bootstrap: int = setting(1000, "bootstrap resamples for the 95 percent confidence intervals")
    seed: int = setting(0, "bootstrap random seed")
    chunk_seconds: float = setting(
        CHUNK_SECONDS, "longer recordings are transcribed in overlapping chunks of this many seconds (0: whole)"
    )
    stride_seconds: float = setting(STRIDE_SECONDS, "overlap dropped at each shared side of a chunk, in seconds")

    def __post_init__(self) -> None:
        if self.batch_seconds < 0:
            raise ConfigError(f"batch_seconds: must be >= 0 (0: per device), got {self.batch_seconds}")
        if self.bootstrap < 1:
            raise ConfigError(f"bootstrap: must be >= 1, got {self.bootstrap}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"device: must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.chunk_seconds < 0 or (self.chunk_seconds and not 0 < 2 * self.stride_seconds < self.chunk_seconds):
            raise ConfigError(
                f"chunk_seconds/stride_seconds: need chunk >= 0 and, when chunking, 0 < stride < chunk / 2; "
                f"got {self.chunk_seconds} / {self.stride_seconds}"
            )
        if self.num_workers < 0:
            raise ConfigError(f"num_workers: must be >= 0, got {self.num_workers}")
