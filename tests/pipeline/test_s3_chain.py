"""The pipeline on S3 storage (`--storage s3://...`) against the tests' real S3 server (SeaweedFS):
every step reads its inputs from and writes its outputs to the bucket, nothing lands in the
working directory, a rerun skips what is done, and the exact container command of a rendered S3
Job runs as it is."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.pipeline import markers, render, values_io
from trainer.pipeline.plan import build_plan
from trainer.runtime_env import with_cpu_env

REPO = Path(__file__).resolve().parents[2]


def _env(server, cache: Path) -> dict[str, str]:
    """This checkout's trainer, the server's endpoint and keys; no Secret, no kubeconfig."""
    return {**with_cpu_env(os.environ), **server.env(), "PYTHONPATH": str(REPO), "TRAINER_CACHE_DIR": str(cache)}


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _keys(server, bucket: str, prefix: str) -> dict[str, str]:
    """{key: ETag} of every object under `prefix` (a changed ETag or a new key means a new upload)."""
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def _colon_folders(*roots: Path) -> list[Path]:
    """Anything named like an URI collapsed by pathlib (`s3:`) below `roots`."""
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.name.endswith(":")]


@pytest.mark.slow
@pytest.mark.timeout(600 + 600 + 300)  # above the two runs' own limits, so theirs fire first, with the log
def test_demo_chain_on_s3_storage_writes_only_the_bucket_and_resumes(s3_server, tmp_path):
    """The smoke preset's chain (every step of the demo's, at its size: that it learns is
    test_demo_chain's; what is checked here is where each step reads and writes)."""
    from trainer.training.configure import load_preset

    sizes = load_preset("smoke")["smoke_data"]
    bucket = s3_server.new_bucket()
    root = f"s3://{bucket}/runs"
    workdir, cache = tmp_path / "work", tmp_path / "cache"
    workdir.mkdir()
    env = _env(s3_server, cache)
    args = ("--phase", "all", "--rank", "32", "--local", "--preset", "smoke", "--storage", root)
    cmd = [sys.executable, str(REPO / "tools" / "submit.py"), *args]
    first = _run(cmd, workdir, env, timeout=600)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]

    keys = _keys(s3_server, bucket, "runs/")
    names = {k.removeprefix("runs/") for k in keys}
    corpus, data = "corpora/synthetic-smoke", "data/synthetic-smoke"
    assert f"{corpus}/synth_summary.json" in names and f"{corpus}/COMPLETE" in names
    speakers = sizes["child_speakers"] + sizes["adult_speakers"]
    assert sum(n.startswith(corpus) and n.endswith(".wav") for n in names) == speakers * sizes["utterances_per_speaker"]
    for name in ("prepare_report.json", "vocab.json", "val_child.jsonl", "curriculum/phase3.jsonl", "COMPLETE"):
        assert f"{data}/{name}" in names, name
    # The prepared manifests name the audio in the bucket, so any pod (any cache) can read them.
    row = json.loads(
        s3_server.client().get_object(Bucket=bucket, Key=f"runs/{data}/val_child.jsonl")["Body"].read().splitlines()[0]
    )
    assert row["audio_filepath"].startswith(f"s3://{bucket}/runs/{corpus}/"), row["audio_filepath"]
    assert "models/tiny-base-smoke/COMPLETE" in names
    [run] = {n.split("/")[0] for n in names if n.endswith("/report/comparison.md")}
    for phase in (1, 2, 3):
        assert f"{run}/r32/phase{phase}/checkpoint-best/COMPLETE" in names
        assert f"{run}/r32/phase{phase}/metrics.json" in names
    for name in ("comparison.md", "summary.json", "metrics_per_model.png"):
        assert f"{run}/report/{name}" in names, name
    assert "| base |" in first.stdout and "| r32 |" in first.stdout

    assert list(workdir.iterdir()) == [], "the chain wrote into the working directory"
    assert not _colon_folders(workdir, cache), "a URI was taken for a local path"
    assert not [p for p in REPO.iterdir() if p.name.endswith(":")]

    # The same command again: every finished step is skipped, nothing is uploaded again.
    again = _run(cmd, workdir, env, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert again.stdout.count("done earlier (completion markers exist), skipped") == 4, again.stdout
    for step in ("synth", "prepare", "base"):
        log = next((cache / "runs" / run / "logs").glob(f"*-{step}.log")).read_text(encoding="utf-8")
        assert "nothing to do" in log.split("\n$ ")[-1], f"{step} did its work again:\n{log[-2000:]}"
    assert _keys(s3_server, bucket, "runs/") == keys, "the rerun rewrote objects"
    assert list(workdir.iterdir()) == []


def _entrypoint() -> list[str]:
    """The image's ENTRYPOINT (what runs when a container sets no `command`)."""
    dockerfile = (REPO / "docker" / "Dockerfile").read_text(encoding="utf-8")
    return json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.MULTILINE).group(1))


def _rendered_command(job: dict) -> list[str]:
    """What the Job's container runs, exactly as rendered, with this interpreter for `python`."""
    [container] = job["spec"]["template"]["spec"]["containers"]
    command = [*container.get("command", _entrypoint()), *container["args"]]
    assert command[0] == "python", command
    return [sys.executable, *command[1:]]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_rendered_s3_jobs_run_as_rendered_against_the_server(s3_env, tmp_path):
    """The synth, prepare, phase-1 and evaluation Jobs of a rendered S3 run, each running its
    container's own command: the data steps fill the bucket, the phase reads curriculum,
    validation manifest, vocabulary, audio and base model from it and publishes its checkpoint
    there, the evaluation reads models and test sets from it and publishes the report there."""
    from trainer import storage
    from trainer.training.smoke import make_random_base

    bucket = s3_env.new_bucket()
    root = f"s3://{bucket}/runs"
    cfg = values_io.from_values(
        {
            "runName": "s3jobs",
            "embeddedDefault": True,
            "ranks": [4],
            "phases": [1],
            "preset": "smoke",
            "synthetic": {"childSpeakers": 4, "adultSpeakers": 4, "utterancesPerSpeaker": 10, "workers": 1},
            "data": {"unit": "jamo", "valFraction": 0.2, "testFraction": 0.2, "fractions": [0.5, 0.75, 1.0]},
            "storage": {"type": "s3", "s3": {"prefix": root, "secretName": "s3-creds"}},
        }
    )
    plan = build_plan(cfg, root)
    jobs = render.job_manifests(render.render_jinja(cfg, "asr"))
    workdir, cache = tmp_path / "work", tmp_path / "cache"
    workdir.mkdir()
    env = _env(s3_env, cache)
    steps = {job.kind: job for job in plan.jobs}

    for kind in ("synth", "prepare"):
        done = _run(_rendered_command(jobs[steps[kind].name]), workdir, env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert not markers.missing(steps[kind].markers)

    # The base step trains for minutes; a random tiny base built from the bucket's vocabulary
    # stands in for it, published where the plan's base step would publish it.
    vocab = steps["train"].argv[steps["train"].argv.index("--vocab") + 1]
    storage.publish_dir(steps["base"].output, lambda staged: make_random_base(vocab, staged, seed=0))

    command = _rendered_command(jobs[steps["train"].name])
    assert f"--curriculum-dir {root}/data/synthetic-smoke/curriculum" in " ".join(command)
    for kind in ("train", "eval"):
        done = _run(_rendered_command(jobs[steps[kind].name]), workdir, env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert not markers.missing(steps[kind].markers)
    assert list(workdir.iterdir()) == []
    assert not _colon_folders(workdir, cache)

    # The data steps again, in a new pod (an empty cache): they find their outputs up to date.
    published = _keys(s3_env, bucket, "runs/")
    new_pod = {**env, "TRAINER_CACHE_DIR": str(tmp_path / "new-pod-cache")}
    for kind in ("synth", "prepare"):
        done = _run(_rendered_command(jobs[steps[kind].name]), workdir, new_pod, timeout=300)
        assert done.returncode == 0 and "nothing to do" in done.stdout, done.stdout + done.stderr[-3000:]
    assert _keys(s3_env, bucket, "runs/") == published


def _one_error(capsys) -> str:
    """The run's `error:` line; there is exactly one and no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_locations_are_one_line_errors_and_nothing_is_written(s3_env, tmp_path, monkeypatch, capsys):
    from trainer.cli import main

    bucket = s3_env.new_bucket()
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    cases = {
        ("data", "split", "--manifest", "all.jsonl", "--out", f"s3://{bucket}/split"): (
            f"--out: s3://{bucket}/split: a local path is needed here"
        ),
        ("data", "synth", "--out", "gs://elsewhere/corpus"): "--out: gs://elsewhere/corpus: only local paths and s3://",
        ("train", "--max-steps", "1", "--vocab", "https://example.com/vocab"): "vocab: https://example.com/vocab: only",
        ("data", "prepare", "--root", f"s3://{bucket}/nothing", "--out", f"s3://{bucket}/data"): (
            f"s3://{bucket}/nothing: no objects under this prefix"
        ),
    }
    for argv, message in cases.items():
        assert main(list(argv)) == 78, argv
        assert message in _one_error(capsys)
    assert _keys(s3_env, bucket, "") == {}
    assert list(workdir.iterdir()) == []


def test_local_runs_use_this_machines_credentials_cluster_runs_need_a_secret(s3_env, tmp_path, monkeypatch, capsys):
    from trainer.pipeline.submit_cli import main

    monkeypatch.chdir(tmp_path)
    storage = ("--storage", f"s3://{s3_env.new_bucket()}/runs")
    assert main(["--phase", "all", "--rank", "32", "--local", "--preset", "demo-small", *storage, "--dry-run"]) == 0
    assert "python -m trainer data synth --out s3://" in capsys.readouterr().out
    assert main(["--rank", "32", *storage, "--render-only", str(tmp_path / "out")]) == 78
    assert "storage.s3: set secretName (credentials Secret) or serviceAccountName" in capsys.readouterr().err
    assert main(["--rank", "32", "--local", "--storage", "gs://b/runs", "--dry-run"]) == 78
    assert "--storage: gs://b/runs: only local paths and s3:// URIs are supported" in _one_error(capsys)
    assert list(tmp_path.iterdir()) == []
