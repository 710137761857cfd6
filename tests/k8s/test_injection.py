"""Values that try to break out of their YAML field or into a template are rejected with a clear
error by both front ends; values that are merely unusual stay literal strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.exit_codes import ConfigError
from trainer.pipeline import config as C
from trainer.pipeline import render, values_io

from .helpers import helm_template, render_by, s3_storage

ATTEMPTS = [
    {"runName": "x\nkind: Secret"},
    {"runName": "{{ .Release.Name }}"},
    {"runName": "a: b"},
    {"image": {"repository": 'repo"\n  command: [sh]'}},
    {"image": {"tag": "1.0\n---\nkind: Pod"}},
    {"nodeSelector": {"gpu": "a100\nprivileged: true"}},
    {"nodeSelector": {"gpu: x\n  y": "z"}},
    {"preset": "{{ exec }}"},
    {"trainOverrides": {"device": "cpu\n- --evil"}},
    {"storage": {"pvc": {"size": "10Gi\n  hostPath: /"}}},
    {"storage": {"type": "s3", "s3": {"prefix": "s3://bkt/p' ; rm -rf", "secretName": "s"}}},
    {"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule\nhostNetwork: true"}]},
]


@pytest.mark.parametrize("values", ATTEMPTS, ids=[str(i) for i in range(len(ATTEMPTS))])
def test_python_front_end_rejects(values: dict) -> None:
    with pytest.raises(ConfigError) as info:
        values_io.from_values(values)
    first_key = next(iter(values))
    assert first_key in str(info.value)  # the error names the field


@pytest.mark.parametrize("values", ATTEMPTS, ids=[str(i) for i in range(len(ATTEMPTS))])
def test_helm_front_end_rejects(values: dict, helm3: Path) -> None:
    raw = values_io.merge(values_io.to_values(C.PipelineConfig(run_name="inj")), values)
    with pytest.raises(ConfigError, match="schema"):
        helm_template(raw, "inj", "asr", helm=str(helm3))


def test_unusual_but_harmless_strings_stay_literal(route: str) -> None:
    """YAML-special characters without newlines are allowed where the field's pattern allows them (an
    S3 key may hold ' * ( ) ! = +), and arrive unchanged in the Job's arguments: they are quoted, never
    interpreted (an alias, a flow mapping, a comment)."""
    prefix = "s3://bkt/it's/*alias/(x)=y+z!"
    values = {"runName": "lit", "storage": s3_storage(prefix, secretName="s3-creds")}
    objects = render_by(route, values_io.from_values(values))
    args = render.job_manifests(objects)["lit-r32-p1"]["spec"]["template"]["spec"]["containers"][0]["args"]
    output = args[args.index("--output") + 1]
    assert output.startswith(prefix + "/"), output
