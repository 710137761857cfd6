"""A user re-renders into a `--render-only DIR` that already holds manifests: the same run's are
replaced as a whole (a Job the new render no longer has must not be left for `kubectl apply -f
DIR`), another run's are refused with exit 78 and left untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer import exit_codes
from trainer.pipeline import submit_cli as submit


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_rerendering_a_changed_run_leaves_only_the_new_manifests(tmp_path: Path) -> None:
    assert submit.main(["--rank", "16", "32", "--name", "r1", "--render-only", str(tmp_path)]) == exit_codes.OK
    assert any("r32" in name for name in _files(tmp_path))
    assert submit.main(["--rank", "16", "--name", "r1", "--render-only", str(tmp_path)]) == exit_codes.OK
    fresh = tmp_path.parent / "fresh"
    assert submit.main(["--rank", "16", "--name", "r1", "--render-only", str(fresh)]) == exit_codes.OK
    assert _files(tmp_path) == _files(fresh)  # nothing of the rank-32 render is left
    assert not any("r32" in name for name in _files(tmp_path))


def test_rendering_into_a_folder_of_another_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert submit.main(["--rank", "16", "--name", "r1", "--render-only", str(tmp_path)]) == exit_codes.OK
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    capsys.readouterr()
    assert submit.main(["--rank", "16", "--name", "r2", "--render-only", str(tmp_path)]) == exit_codes.CONFIG_ERROR
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "not a manifest of run r2" in error[0] and "run label: r1" in error[0]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
