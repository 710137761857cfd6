"""The submit command (`ko-child-asr-submit`, `tools/submit.py`): flags become PipelineConfig
values; --render-only writes the manifests; bad input exits 78 with a message naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trainer import exit_codes
from trainer.pipeline import submit_cli as submit


def config_of(*argv: str):
    return submit.build_config(submit.build_parser().parse_args(list(argv)))


def test_flags_map_onto_the_config() -> None:
    cfg = config_of(
        "--phase",
        "2",
        "--rank",
        "16",
        "32",
        "--image",
        "registry.local:5000/asr/img:1.2",
        "--gpus",
        "2",
        "--storage",
        "s3://bkt/runs",
        "--s3-secret",
        "creds",
        "--node-selector",
        "gpu=a100",
        "--toleration",
        "nvidia.com/gpu:NoSchedule",
        "--toleration",
        "pool=gpu:NoExecute",
        "--set-train",
        "learning_rate=3e-4",
        "--set-train",
        "gradient_checkpointing=true",
        "--no-tensorboard",
    )
    assert cfg.phases == [2] and cfg.evaluate is False and cfg.ranks == [16, 32]
    assert (cfg.image.repository, cfg.image.tag) == ("registry.local:5000/asr/img", "1.2")
    assert (
        cfg.storage.type == "s3" and cfg.storage.s3.prefix == "s3://bkt/runs" and cfg.storage.s3.secret_name == "creds"
    )
    assert cfg.node_selector == {"gpu": "a100"}
    assert cfg.tolerations == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "pool", "operator": "Equal", "value": "gpu", "effect": "NoExecute"},
    ]
    assert cfg.train_overrides == {"learning_rate": 3e-4, "gradient_checkpointing": True}
    assert cfg.tensorboard.enabled is False


def test_values_file_is_a_lower_layer_than_flags(tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    values.write_text("ranks: [16]\ngpusPerNode: 4\n", encoding="utf-8")
    cfg = config_of("--values", str(values), "--gpus", "1")
    assert cfg.ranks == [16] and cfg.gpus_per_node == 1


def test_phase_eval_and_all() -> None:
    assert (config_of("--phase", "eval").phases, config_of("--phase", "eval").evaluate) == ([], True)
    assert config_of("--phase", "all").phases == [1, 2, 3]


def test_local_defaults_to_the_embedded_default() -> None:
    cfg = config_of("--local", "--preset", "smoke")
    assert cfg.embedded_default and cfg.preset == "smoke"
    assert cfg.synthetic.child_speakers == 4  # from the preset's smoke_data section
    assert config_of("--local", "--base-model", "/models/x", "--data-dir", "prepared").embedded_default is False


def test_render_only_writes_parseable_manifests(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert submit.main(["--rank", "16", "32", "--name", "r1", "--render-only", str(tmp_path)]) == exit_codes.OK
    files = sorted(tmp_path.glob("*.yaml"))
    docs = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in files]
    jobs = [d["metadata"]["name"] for d in docs if d["kind"] == "Job"]
    steps = ["r16-p1", "r16-p2", "r16-p3", "r32-p1", "r32-p2", "r32-p3", "eval"]
    assert jobs == ["r1-orchestrator", *(f"r1-{s}{suffix}" for s in steps for suffix in ("", "-check", "-verify"))]
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rank", "0"], "ranks.0"),
        (["--name", "UPPER"], "runName"),
        (["--node-selector", "novalue"], "--node-selector"),
        (["--storage", "/tmp/x"], "--local"),
        (["--set-train", "output=/x"], "output"),
        (["--set-train", "learning_rate=fast"], "learning_rate"),
        (["--values", "/no/such/file.yaml"], "file not found"),
    ],
)
def test_bad_input_exits_78_naming_the_problem(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert submit.main([*argv, "--render-only", str(tmp_path)]) == exit_codes.CONFIG_ERROR
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_preset_the_trainer_does_not_know_is_refused_before_anything_runs(tmp_path: Path, capsys) -> None:
    assert submit.main(["--preset", "nonexistent", "--render-only", str(tmp_path)]) == exit_codes.CONFIG_ERROR
    assert "nonexistent" in capsys.readouterr().err


def test_a_cluster_nobody_answers_is_one_line_and_78(tmp_path, capsys) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    assert submit.main(["status", "run", "--kubeconfig", str(kubeconfig)]) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"error: cluster API https://127.0.0.1:{port} does not answer") and "Traceback" not in err


def test_queue_priority_and_parallelism_flags() -> None:
    cfg = config_of(
        "--queue", "gpu-team", "--cpu-queue", "cpu-team", "--priority-class", "research", "--max-parallel", "2"
    )
    assert (cfg.queue, cfg.cpu_queue, cfg.priority_class) == ("gpu-team", "cpu-team", "research")
    assert cfg.orchestrator.max_parallel == 2
    assert config_of("--rank", "16", "32").orchestrator.max_parallel == 0  # a cluster runs every ready step
    assert config_of("--rank", "16", "32", "--local").orchestrator.max_parallel == 1  # a laptop one at a time
    assert config_of("--rank", "16", "32", "--local", "--max-parallel", "2").orchestrator.max_parallel == 2
    with pytest.raises(Exception, match="queue"):
        config_of("--queue", "Not_A_Name")


def test_image_digest_pins_the_image() -> None:
    digest = "sha256:" + "ab" * 32
    cfg = config_of("--image", f"registry.local:5000/asr/img:1.2@{digest}")
    assert (cfg.image.repository, cfg.image.tag, cfg.image.digest) == ("registry.local:5000/asr/img", "1.2", digest)
    untagged = config_of("--image", f"registry.local:5000/asr/img@{digest}").image
    assert (untagged.repository, untagged.digest) == ("registry.local:5000/asr/img", digest)
    with pytest.raises(Exception, match="digest"):
        config_of("--image", "img@sha256:short")


def test_render_only_writes_a_jobset_run_after_checking_its_steps_arguments(tmp_path: Path) -> None:
    argv = ["--rank", "16", "--name", "js", "--nodes", "2", "--multinode", "jobset", "--access-mode", "ReadWriteMany"]
    assert submit.main([*argv, "--render-only", str(tmp_path)]) == exit_codes.OK  # the check reads JobSets' args too
    docs = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in tmp_path.glob("*.yaml")]
    assert [d["kind"] for d in docs].count("JobSet") == 3  # three phases
    assert not any(d["metadata"]["name"] == "js-ddp" for d in docs)  # JobSet names the pods itself


# The run-setting flags that are PipelineConfig fields: names that README commands and scripts
# use, so they must not change when a field is renamed.
SETTING_FLAGS = {
    "--name": "runName",
    "--rank": "ranks",
    "--gpus": "gpusPerNode",
    "--nodes": "nodes",
    "--multinode": "multinode",
    "--preset": "preset",
    "--embedded-default": "embeddedDefault",
    "--base-model": "baseModel",
    "--data-dir": "data.dir",
    "--assess": "assess",
    "--storage-pvc": "storage.pvc.claimName",
    "--storage-size": "storage.pvc.size",
    "--storage-class": "storage.pvc.storageClass",
    "--access-mode": "storage.pvc.accessMode",
    "--s3-secret": "storage.s3.secretName",
    "--s3-endpoint": "storage.s3.endpoint",
    "--service-account": "storage.s3.serviceAccountName",
    "--tensorboard": "tensorboard.enabled",
    "--chain": "orchestrator.chain",
    "--poll-seconds": "orchestrator.pollSeconds",
    "--max-parallel": "orchestrator.maxParallel",
    "--queue": "queue",
    "--cpu-queue": "cpuQueue",
    "--priority-class": "priorityClass",
}


def test_setting_flags_are_generated_from_the_config_fields() -> None:
    import argparse

    generated = {f.metadata["flag"]: path for path, f, _ in submit.flagged_fields()}
    assert generated == SETTING_FLAGS
    parser = submit.build_parser()
    actions = {a.option_strings[0]: a for a in parser._actions if a.option_strings}
    for flag, path in SETTING_FLAGS.items():
        action = actions[flag]
        if isinstance(action, argparse.BooleanOptionalAction):
            argv, value = [flag], True
        elif action.choices:
            argv, value = [flag, action.choices[-1]], action.choices[-1]
        elif action.nargs == "+":
            argv, value = [flag, "3", "4"], [3, 4]
        elif action.type is int:
            argv, value = [flag, "3"], 3
        else:
            argv, value = [flag, "v"], "v"
        node = submit.flag_values(parser.parse_args(argv))
        for key in path.split("."):
            node = node[key]
        assert node == value, flag


def test_tools_submit_is_the_same_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "tools/submit.py", "--phase", "all", "--rank", "32", "--local", "--dry-run"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "python -m trainer train" in done.stdout and "--rank 32" in done.stdout
