"""Golden files: what both routes (submit.py, the chart's launcher) create for a few configurations, every Job of the plan
included, so that a change to any object shows up in review as a diff of tests/k8s/golden/.

    python -m tests.k8s.test_golden --write      # after an intended change: regenerate, review the diff
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from trainer.pipeline import config as C  # noqa: E402
from trainer.pipeline import render, values_io  # noqa: E402

from .helpers import SAMPLES, render_by  # noqa: E402

GOLDEN = Path(__file__).with_name("golden")
CASES = ("defaults", "multinode-s3", "kueue-side-by-side")


def golden_text(objects: list[dict[str, Any]]) -> str:
    """The objects without the marks of the tool, the plan ConfigMap's Jobs decoded, in a stable order."""
    normal = render.normalise(objects)
    return yaml.safe_dump([normal[key] for key in sorted(normal)], sort_keys=True, allow_unicode=True)


def _config(case: str) -> C.PipelineConfig:
    return values_io.from_values(SAMPLES[case], source=case)


@pytest.mark.parametrize("case", CASES)
def test_rendered_objects_match_the_golden_file(case: str, route: str) -> None:
    objects = render_by(route, _config(case))
    expected = (GOLDEN / f"{case}.yaml").read_text(encoding="utf-8")
    assert golden_text(objects) == expected, (
        f"{case}: run `python -m tests.k8s.test_golden --write` and review the diff"
    )


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.mkdir(exist_ok=True)
    for case in CASES:
        (GOLDEN / f"{case}.yaml").write_text(golden_text(render.render_jinja(_config(case), "asr")), encoding="utf-8")
        print(f"wrote {GOLDEN / case}.yaml")
