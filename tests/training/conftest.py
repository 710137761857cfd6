"""Fixtures for the trainer tests.

- `smoke_data`: the smoke preset's tiny synthetic corpus (espeak-ng voices, prepared by
  trainer.data) and its randomly initialised 2-layer base, built once per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory) -> Path:
    from trainer.training.configure import load_preset
    from trainer.training.smoke import build_smoke_data

    folder = tmp_path_factory.mktemp("smoke") / "smoke-data"
    build_smoke_data(folder, load_preset("smoke")["smoke_data"], seed=42)
    return folder
