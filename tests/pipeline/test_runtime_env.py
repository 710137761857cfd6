"""Every launcher gives trainer processes the same CPU settings (trainer/runtime_env.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trainer.runtime_env import CPU_ENV

from .fake_chain import Fake, run

REPO = Path(__file__).resolve().parents[2]


def test_makefile_and_image_set_the_same_values() -> None:
    makefile = dict(re.findall(r"^export (\w+) := (\S+)$", (REPO / "Makefile").read_text(encoding="utf-8"), re.M))
    runtime = (REPO / "docker" / "Dockerfile").read_text(encoding="utf-8").split("runtime")[-1]
    image = dict(re.findall(r"^\s+(\w+)=(\S+?)(?: \\)?$", runtime, re.M))
    for name, value in CPU_ENV.items():
        assert makefile.get(name) == value, f"Makefile: export {name} := {value}"
        assert image.get(name) == value, f"docker/Dockerfile runtime ENV: {name}={value}"


@pytest.mark.parametrize("user_value", [None, "glibc.malloc.arena_max=2"])
def test_local_runner_gives_steps_the_cpu_env_unless_the_user_set_one(user_value, plan, tmp_path, monkeypatch) -> None:  # noqa: F811
    if user_value is None:
        monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    else:
        monkeypatch.setenv("GLIBC_TUNABLES", user_value)
    Fake(tmp_path, plan, monkeypatch)
    run(plan, tmp_path, [])
    log = (tmp_path / "logs" / "loc-r16-p1.log").read_text(encoding="utf-8")
    assert f"fake trainer: GLIBC_TUNABLES={user_value or CPU_ENV['GLIBC_TUNABLES']}" in log
