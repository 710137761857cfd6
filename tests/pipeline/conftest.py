"""Fixtures for the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.pipeline.plan import Plan

from .fake_chain import plan_with


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return plan_with(tmp_path, 1)  # the --local default
