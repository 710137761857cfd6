"""build_plan: which steps, in which order, with which trainer arguments."""

from __future__ import annotations

import dataclasses

import pytest

from trainer.exit_codes import ConfigError
from trainer.pipeline import values_io
from trainer.pipeline.plan import build_plan, check_name_lengths, flag_value, object_names, override_flags


def plan_of(values: dict, root: str = "/storage"):
    return build_plan(values_io.from_values({"runName": "run", **values}), root)


def arg(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_embedded_default_two_ranks_order_and_dependencies() -> None:
    plan = plan_of({"embeddedDefault": True, "preset": "demo", "ranks": [16, 32]}, root="runs")
    assert [j.name for j in plan.jobs] == [
        "run-synth",
        "run-prepare",
        "run-base",
        "run-r16-p1",
        "run-r16-p2",
        "run-r16-p3",
        "run-r32-p1",
        "run-r32-p2",
        "run-r32-p3",
        "run-eval",
    ]
    jobs = {j.name: j for j in plan.jobs}
    assert jobs["run-r32-p1"].depends_on == ("run-synth", "run-prepare", "run-base")
    assert jobs["run-r32-p2"].depends_on == ("run-r32-p1",)
    assert jobs["run-eval"].depends_on == ("run-r16-p3", "run-r32-p3")
    assert [j.skippable for j in plan.jobs[:3]] == [False] * 3 and all(j.skippable for j in plan.jobs[3:])
    assert [j.uses_gpu for j in plan.jobs[:3]] == [False, False, True]


def test_phases_warm_start_from_the_previous_best_checkpoint() -> None:
    plan = plan_of({"ranks": [32]})
    p1, p2, p3 = plan.jobs[:3]
    assert "--init-from" not in p1.argv
    assert arg(p2.argv, "--init-from") == "/storage/run/r32/phase1/checkpoint-best"
    assert arg(p3.argv, "--init-from") == "/storage/run/r32/phase2/checkpoint-best"
    assert arg(p3.argv, "--curriculum-dir") == "/storage/data/curriculum"
    assert arg(p3.argv, "--val-manifest") == "/storage/data/val_child.jsonl"
    assert arg(p3.argv, "--model") == "facebook/wav2vec2-xls-r-300m"
    assert p3.markers == ("/storage/run/r32/phase3/metrics.json", "/storage/run/r32/phase3/checkpoint-best/COMPLETE")


def test_eval_compares_base_with_each_rank_and_its_earlier_phases() -> None:
    both = plan_of({"ranks": [16, 32]}).jobs[-1].argv
    assert [a for a in both if "=" in a and not a.startswith("/")] == [
        "base=facebook/wav2vec2-xls-r-300m",
        "r16-p1=/storage/run/r16/phase1/checkpoint-best",
        "r16-p2=/storage/run/r16/phase2/checkpoint-best",
        "r16=/storage/run/r16/phase3/checkpoint-best",
        "r32-p1=/storage/run/r32/phase1/checkpoint-best",
        "r32-p2=/storage/run/r32/phase2/checkpoint-best",
        "r32=/storage/run/r32/phase3/checkpoint-best",
    ]
    single = plan_of({"ranks": [32]}).jobs[-1].argv
    assert [a for a in single if a.startswith(("base=", "r16=", "r32="))] == [
        "base=facebook/wav2vec2-xls-r-300m",
        "r32=/storage/run/r32/phase3/checkpoint-best",
    ]


def test_single_phase_and_eval_only() -> None:
    assert [j.name for j in plan_of({"phases": [2], "evaluate": False}).jobs] == ["run-r32-p2"]
    only_eval = plan_of({"phases": [], "ranks": [16]})
    assert [j.name for j in only_eval.jobs] == ["run-eval"]
    assert "r16=/storage/run/r16/phase3/checkpoint-best" in only_eval.jobs[0].argv


def test_real_corpus_prepare_step() -> None:
    plan = plan_of({"data": {"prepare": True, "corpus": "corpora/aihub", "fractions": [0.2, 1.0]}})
    prepare = plan.jobs[0]
    assert prepare.argv == (
        "data",
        "prepare",
        "--root",
        "/storage/corpora/aihub",
        "--out",
        "/storage/data",
        "--unit",
        "syllable",
        "--val-fraction",
        "0.05",
        "--test-fraction",
        "0.05",
        "--fractions",
        "0.2",
        "1",
    )
    assert plan.jobs[1].depends_on == ("run-prepare",)


def test_hugging_face_dataset_prepare_step() -> None:
    """A dataset below the storage root, or a Hub id whose download is cached on a mounted storage."""
    local = plan_of({"data": {"prepare": True, "format": "hf", "corpus": "corpora/kids.parquet"}}).jobs[0]
    assert local.argv[:7] == (
        "data",
        "prepare",
        "--format",
        "hf",
        "--dataset",
        "/storage/corpora/kids.parquet",
        "--out",
    )
    hub = {
        "prepare": True,
        "format": "hf",
        "hubDataset": "org/kids",
        "hfSplits": ["train", "test"],
        "hfConfig": "clean",
    }
    source = ("--format", "hf", "--dataset", "org/kids", "--split", "train", "--split", "test", "--config", "clean")
    on_pvc = plan_of({"data": hub}).jobs[0].argv
    assert on_pvc[2:16] == (*source, "--hf-cache", "/storage/cache/huggingface", "--out", "/storage/data")
    on_s3 = plan_of({"data": hub}, root="s3://bucket/asr").jobs[0].argv
    assert on_s3[2:14] == (*source, "--out", "s3://bucket/asr/data")  # the pod's own cache


@pytest.mark.parametrize(
    "data",
    [
        {"prepare": True, "hubDataset": "org/kids"},  # a Hub id needs format hf
        {"hfSplits": ["train"]},
        {"prepare": True, "format": "hf", "corpus": "corpora/kids", "hubDataset": "org/kids"},
        {"prepare": True, "format": "hf"},  # nothing to import
    ],
)
def test_hugging_face_values_that_contradict_each_other(data: dict) -> None:
    with pytest.raises(ConfigError, match="data"):
        plan_of({"data": data})


def test_train_overrides_become_sorted_flags() -> None:
    argv = (
        plan_of(
            {
                "trainOverrides": {
                    "warmup_ratio": 0.2,
                    "gradient_checkpointing": True,
                    "ema_decay": 0,
                    "speed_perturb": [],
                    "target_modules": ["q_proj", "v_proj"],
                }
            }
        )
        .jobs[0]
        .argv
    )
    assert argv[argv.index("--ema-decay") :] == (
        "--ema-decay",
        "0",
        "--gradient-checkpointing",
        "--speed-perturb",
        "--target-modules",
        "q_proj",
        "v_proj",
        "--warmup-ratio",
        "0.2",
    )
    assert override_flags({"gradient_checkpointing": False}) == ["--no-gradient-checkpointing"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, "3"),
        (3, "3"),
        (1e-4, "0.0001"),
        (1e-5, "0.00001"),
        (1e-7, "0.0000001"),
        (2.5e-12, "0.0000000000025"),
        (1.5e21, "1500000000000000000000"),
        (123456789.0, "123456789"),
        (0.0, "0"),
        ("x y", "x y"),
    ],
)
def test_flag_values_are_plain_decimals(value: object, text: str) -> None:
    assert flag_value(value) == text


def test_longest_names_fit_and_longer_ones_are_refused() -> None:
    """A 40-character run name leaves room for every suffix; the check guards the derived names."""
    cfg = values_io.from_values(
        {"runName": "r" * 40, "ranks": [1024], "nodes": 64, "storage": {"pvc": {"accessMode": "ReadWriteMany"}}}
    )
    plan = build_plan(cfg, "/storage")
    assert max(len(n) for n in object_names(plan, cfg)) <= 63
    longer = dataclasses.replace(plan, jobs=(dataclasses.replace(plan.jobs[0], name="r" * 50 + "-r1024-p1"),))
    with pytest.raises(ConfigError, match="longer than 63"):
        check_name_lengths(longer, cfg)


def test_plan_json_is_what_the_orchestrator_reads() -> None:
    data = plan_of({"ranks": [16]}).to_json()
    assert data["run"] == "run"
    assert data["jobs"][0] == {
        "name": "run-r16-p1",
        "kind": "train",
        "skippable": True,
        "dependsOn": [],
        "markers": ["/storage/run/r16/phase1/metrics.json", "/storage/run/r16/phase1/checkpoint-best/COMPLETE"],
    }


def test_pronunciation_assessment_flows_into_synth_prepare_and_compare() -> None:
    jobs = {
        j.kind: j
        for j in plan_of(
            {
                "embeddedDefault": True,
                "assess": True,
                "data": {"unit": "phone"},
                "synthetic": {"mispronounceRate": 0.15},
            }
        ).jobs
    }
    assert arg(jobs["synth"].argv, "--mispronounce-rate") == "0.15"
    assert arg(jobs["prepare"].argv, "--unit") == "phone"
    assert "--assess" in jobs["eval"].argv
    # Calibrated on the children's validation set, which carries the injected errors too.
    assert arg(jobs["eval"].argv, "--assess-calibration") == arg(jobs["train"].argv, "--val-manifest")
    plain = {j.kind: j for j in plan_of({"embeddedDefault": True}).jobs}
    assert "--mispronounce-rate" not in plain["synth"].argv and "--assess" not in plain["eval"].argv
    unlabelled = {j.kind: j for j in plan_of({"embeddedDefault": True, "assess": True, "data": {"unit": "phone"}}).jobs}
    assert "--assess" in unlabelled["eval"].argv and "--assess-calibration" not in unlabelled["eval"].argv
    assert "--assess-speed" not in jobs["eval"].argv  # speed 1: the recordings as they are
    slowed = plan_of({"embeddedDefault": True, "assess": True, "assessSpeed": 0.9, "data": {"unit": "phone"}})
    assert arg(next(j for j in slowed.jobs if j.kind == "eval").argv, "--assess-speed") == "0.9"
