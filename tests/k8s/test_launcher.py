"""Training Jobs with several GPUs or nodes start `python -m trainer.torchrun` (torchrun that keeps the
trainer's exit codes for the podFailurePolicy); single-GPU Jobs run the image's entrypoint."""

from __future__ import annotations

from trainer.pipeline import render, values_io

from .helpers import SAMPLES

LAUNCHER = ["python", "-m", "trainer.torchrun"]


def containers(sample: str) -> dict[str, dict]:
    objects = render.render_jinja(values_io.from_values(SAMPLES[sample]), "asr")
    return {
        name: job["spec"]["template"]["spec"]["containers"][0] for name, job in render.job_manifests(objects).items()
    }


def test_single_node_multi_gpu_jobs_use_the_exit_code_keeping_torchrun() -> None:
    trainer = containers("single-node-multi-gpu")["wide-r32-p2"]
    assert trainer["command"][:5] == [*LAUNCHER, "--standalone", "--nproc-per-node=8"]
    assert trainer["command"][-2:] == ["-m", "trainer"] and trainer["args"][0] == "train"


def test_multi_node_jobs_use_it_with_a_rendezvous() -> None:
    command = containers("multinode-s3")["big-r16-p1"]["command"]
    assert command[:3] == LAUNCHER and "--nnodes=2" in command and "--nproc-per-node=4" in command


def test_single_gpu_and_evaluation_jobs_run_the_entrypoint() -> None:
    by_name = containers("defaults")
    assert all("command" not in c for c in by_name.values()), sorted(by_name)
