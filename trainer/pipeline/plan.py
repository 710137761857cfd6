"""`build_plan(cfg, root)`: the ordered jobs of a run, with each job's `python -m trainer` arguments.

Pure: no I/O. The same plan drives the local runner (`root` a local folder or `s3://` prefix) and
the Jinja2 templates, which `tools/submit.py` and the Helm chart's launcher render (`root` =
`/storage` on a PVC, or the `s3://` prefix). Storage layout below `root`:

    <data.dir>/                       prepared data (embedded default: <data.dir>/synthetic-<preset>)
        train_adult.jsonl ... test_child.jsonl, curriculum/phase{1,2,3}.jsonl, vocab.json
    corpora/synthetic-<preset>/       the embedded default's synthetic corpus (AI Hub layout)
    models/tiny-base-<preset>/        the embedded default's stand-in base model
    <run>/r<rank>/phase<N>/           each phase's checkpoints and TensorBoard events
    <run>/report/                     comparison.md, charts

Every step has completion markers, checked after it succeeds. A phase or evaluation whose markers
already exist is done and skipped (a resumed chain starts where it stopped). The shared steps
(synth, prepare, base) always run: each compares its inputs with what it built before and does
nothing when they match, so a changed setting rebuilds them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from trainer import layout as L
from trainer.config import PHASES, TrainConfig
from trainer.exit_codes import ConfigError
from trainer.pipeline import config as C
from trainer.pipeline import naming
from trainer.storage import needs_volume

JobKind = Literal["synth", "prepare", "base", "train", "eval"]

# What each command writes last, i.e. what proves a step finished (names from trainer.layout):
# `data synth` ends with its summary, `data prepare` with its report; `pretrain-base` publishes the
# base with the COMPLETE marker; `train` writes <output>/metrics.json only when the phase is finished
# (after its final checkpoint), and checkpoint-best/COMPLETE marks the checkpoint the next phase
# starts from; `compare` writes comparison.md last.

# Files `trainer data prepare` writes into the data folder.
PRETRAIN_MANIFESTS = (L.group_file("train", "adult"), L.group_file("val", "adult"))
VAL_MANIFEST = L.group_file("val", "child")
TEST_MANIFEST = L.group_file("test", "child")
ADULT_TEST_MANIFEST = L.group_file("test", "adult")  # exists when the corpus has adult speakers

# Suffixes of generated object names; the longest bounds the run name (config.MAX_RUN_NAME).
VERIFY_SUFFIX = "-verify"
CHECK_SUFFIX = "-check"


def train_flag(field_name: str) -> str:
    """`--curriculum-dir` from `curriculum_dir`; fails loudly if TrainConfig loses the field."""
    if field_name not in _TRAIN_FIELDS:
        raise KeyError(f"TrainConfig has no field {field_name!r}")
    return "--" + field_name.replace("_", "-")


_TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def flag_value(value: Any) -> str:
    """A flag value; numbers in plain decimal digits: 3.0 as '3', 1e-05 as '0.00001' (what `str()`
    would print as '3.0' and '1e-05'; the trainer reads both, the rendered Jobs stay as they were)."""
    if isinstance(value, bool):
        raise TypeError("booleans are flags, not values")
    if not isinstance(value, float):
        return str(value)
    return format(Decimal(repr(value)).normalize(), "f")


def override_flags(overrides: dict[str, Any]) -> list[str]:
    """`trainer train` flags for the overrides, sorted by field name."""
    argv: list[str] = []
    for name in sorted(overrides):
        value = overrides[name]
        if isinstance(value, bool):
            argv.append(train_flag(name) if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, list):
            argv += [train_flag(name), *map(flag_value, value)]
        else:
            argv += [train_flag(name), flag_value(value)]
    return argv


@dataclass(frozen=True)
class PlannedJob:
    """One step of the chain: one Kubernetes Job, or one local process."""

    name: str  # Job name: <run>-<step>
    kind: JobKind
    argv: tuple[str, ...]  # after `python -m trainer`
    output: str
    markers: tuple[str, ...]  # all exist once the job finished successfully
    depends_on: tuple[str, ...] = ()
    phase: int = 0
    rank: int = 0

    @property
    def skippable(self) -> bool:
        """Existing markers mean done; the shared steps instead check their inputs themselves."""
        return self.kind in ("train", "eval")

    @property
    def uses_gpu(self) -> bool:
        return self.kind not in ("synth", "prepare")

    @property
    def distributed(self) -> bool:
        """Training steps may span several nodes; prepare, base and eval run as one process."""
        return self.kind == "train"


@dataclass(frozen=True)
class Plan:
    run: str
    root: str
    jobs: tuple[PlannedJob, ...]
    logdir: str  # what TensorBoard reads
    report_dir: str
    max_parallel: int = 0  # steps run at once, at most (0: all whose dependencies are done)

    def to_json(self) -> dict[str, Any]:
        """What the orchestrator reads from the plan ConfigMap."""
        return {
            "run": self.run,
            "maxParallel": self.max_parallel,
            "jobs": [
                {
                    "name": j.name,
                    "kind": j.kind,
                    "markers": list(j.markers),
                    "skippable": j.skippable,
                    "dependsOn": list(j.depends_on),
                }
                for j in self.jobs
            ],
        }


def slash_join(root: str, *parts: str) -> str:
    """Join below a local folder, `/storage` or an `s3://` prefix (always '/': S3 keys and pods)."""
    return "/".join([root.rstrip("/"), *parts])


def _embedded_name(cfg: C.PipelineConfig) -> str:
    return cfg.preset or "default"


def data_dir(cfg: C.PipelineConfig, root: str) -> str:
    if cfg.embedded_default:
        return slash_join(root, cfg.data.dir, f"synthetic-{_embedded_name(cfg)}")
    return slash_join(root, cfg.data.dir)


def corpus_dir(cfg: C.PipelineConfig, root: str) -> str:
    if cfg.embedded_default:
        return slash_join(root, L.CORPORA_DIR, f"synthetic-{_embedded_name(cfg)}")
    return slash_join(root, cfg.data.corpus)


def base_model(cfg: C.PipelineConfig, root: str) -> str:
    """The embedded default's tiny base on the storage, else `baseModel` verbatim (hub id or URI)."""
    if cfg.embedded_default:
        return slash_join(root, L.MODELS_DIR, f"tiny-base-{_embedded_name(cfg)}")
    return cfg.base_model


def _prepare_source(cfg: C.PipelineConfig, root: str, corpus: str) -> list[str]:
    """`data prepare`'s source flags: an AI Hub tree, or a Hugging Face dataset (a path or a Hub id,
    whose download is cached on the storage when that is a mounted folder)."""
    d = cfg.data
    if d.format != "hf":
        return ["--root", corpus]
    flags = ["--format", "hf", "--dataset", d.hub_dataset or corpus]
    for split in d.hf_splits:
        flags += ["--split", split]
    if d.hf_config:
        flags += ["--config", d.hf_config]
    if d.hub_dataset and needs_volume(root):
        flags += ["--hf-cache", slash_join(root, L.HF_CACHE_DIR)]
    return flags


def _preset(cfg: C.PipelineConfig) -> list[str]:
    return ["--preset", cfg.preset] if cfg.preset else []


def build_plan(cfg: C.PipelineConfig, root: str) -> Plan:
    """The run's jobs in execution order; every name is checked against Kubernetes' 63-character limit."""
    run = naming.run_name(cfg)
    data = data_dir(cfg, root)
    base = base_model(cfg, root)
    run_dir = slash_join(root, run)
    jobs: list[PlannedJob] = []

    corpus = corpus_dir(cfg, root)
    if cfg.embedded_default:
        syn = cfg.synthetic
        jobs.append(
            PlannedJob(
                name=f"{run}-synth",
                kind="synth",
                argv=(
                    "data",
                    "synth",
                    "--out",
                    corpus,
                    "--child-speakers",
                    str(syn.child_speakers),
                    "--adult-speakers",
                    str(syn.adult_speakers),
                    "--utterances-per-speaker",
                    str(syn.utterances_per_speaker),
                    "--seed",
                    str(syn.seed),
                    "--workers",
                    str(syn.workers),
                    *(["--mispronounce-rate", flag_value(syn.mispronounce_rate)] if syn.mispronounce_rate else []),
                ),
                output=corpus,
                markers=(slash_join(corpus, L.SYNTH_SUMMARY_FILE),),
            )
        )
    if cfg.data.prepare or cfg.embedded_default:
        d = cfg.data
        fractions = ["--fractions", *map(flag_value, d.fractions)] if d.fractions else []
        jobs.append(
            PlannedJob(
                name=f"{run}-prepare",
                kind="prepare",
                argv=(
                    "data",
                    "prepare",
                    *_prepare_source(cfg, root, corpus),
                    "--out",
                    data,
                    "--unit",
                    d.unit,
                    "--val-fraction",
                    flag_value(d.val_fraction),
                    "--test-fraction",
                    flag_value(d.test_fraction),
                    *fractions,
                ),
                output=data,
                markers=(slash_join(data, L.PREPARE_REPORT_FILE),),
                depends_on=_names(jobs),
            )
        )
    if cfg.embedded_default:
        train_manifest, val_manifest = (slash_join(data, m) for m in PRETRAIN_MANIFESTS)
        jobs.append(
            PlannedJob(
                name=f"{run}-base",
                kind="base",
                argv=(
                    "pretrain-base",
                    train_flag("train_manifest"),
                    train_manifest,
                    train_flag("val_manifest"),
                    val_manifest,
                    train_flag("vocab"),
                    data,
                    train_flag("output"),
                    base,
                    *_preset(cfg),
                ),
                output=base,
                markers=(slash_join(base, L.COMPLETE_MARKER),),
                depends_on=_names(jobs),
            )
        )

    setup = _names(jobs)
    for rank in cfg.ranks:
        previous: tuple[str, ...] = setup
        for phase in cfg.phases:
            out = phase_dir(run_dir, rank, phase)
            argv = ["train", train_flag("phase"), str(phase), train_flag("rank"), str(rank), train_flag("output"), out]
            if phase > 1:
                argv += [train_flag("init_from"), slash_join(phase_dir(run_dir, rank, phase - 1), L.CHECKPOINT_BEST)]
            argv += [
                train_flag("model"),
                base,
                train_flag("curriculum_dir"),
                slash_join(data, L.CURRICULUM_DIR),
                train_flag("val_manifest"),
                slash_join(data, VAL_MANIFEST),
                train_flag("vocab"),
                data,
                *_preset(cfg),
                *override_flags(cfg.train_overrides),
            ]
            job = PlannedJob(
                name=f"{run}-r{rank}-p{phase}",
                kind="train",
                argv=tuple(argv),
                output=out,
                markers=(slash_join(out, L.METRICS_FILE), slash_join(out, L.CHECKPOINT_BEST, L.COMPLETE_MARKER)),
                depends_on=previous,
                phase=phase,
                rank=rank,
            )
            jobs.append(job)
            previous = (job.name,)

    report = slash_join(run_dir, L.REPORT_DIR)
    if cfg.evaluate:
        # Each rank's last phase (the one this run ends with, or phase 3 of an earlier run with
        # --phase eval) as `r<rank>`, and the phases before it that this run trains as
        # `r<rank>-p<N>`, so the report shows the curriculum phase by phase.
        final = cfg.phases[-1] if cfg.phases else max(PHASES)
        models = ["--model", f"base={base}"]
        for rank in cfg.ranks:
            for phase in cfg.phases[:-1]:
                models += [
                    "--model",
                    f"r{rank}-p{phase}={slash_join(phase_dir(run_dir, rank, phase), L.CHECKPOINT_BEST)}",
                ]
            models += ["--model", f"r{rank}={slash_join(phase_dir(run_dir, rank, final), L.CHECKPOINT_BEST)}"]
        extra = ["--manifest-extra", f"adult={slash_join(data, ADULT_TEST_MANIFEST)}"] if cfg.embedded_default else []
        assess = ["--assess"] if cfg.assess else []
        if cfg.assess and cfg.embedded_default and cfg.synthetic.mispronounce_rate:
            # The synthetic children's validation set knows what they said: calibrate on it.
            assess += ["--assess-calibration", slash_join(data, VAL_MANIFEST)]
        if cfg.assess_speed != 1.0:
            assess += ["--assess-speed", str(cfg.assess_speed)]
        jobs.append(
            PlannedJob(
                name=f"{run}-eval",
                kind="eval",
                argv=(
                    "compare",
                    *models,
                    "--manifest",
                    slash_join(data, TEST_MANIFEST),
                    *extra,
                    "--output",
                    report,
                    *assess,
                ),
                output=report,
                markers=(slash_join(report, L.COMPARISON_FILE),),
                depends_on=tuple(j.name for j in jobs if j.kind == "train" and j.phase == final) or setup,
            )
        )

    plan = Plan(
        run=run,
        root=root,
        jobs=tuple(jobs),
        logdir=run_dir,
        report_dir=report,
        max_parallel=cfg.orchestrator.max_parallel,
    )
    check_name_lengths(plan, cfg)
    return plan


def phase_dir(run_dir: str, rank: int, phase: int) -> str:
    return slash_join(run_dir, f"r{rank}", f"phase{phase}")


def _names(jobs: list[PlannedJob]) -> tuple[str, ...]:
    return tuple(j.name for j in jobs)


def object_names(plan: Plan, cfg: C.PipelineConfig) -> list[str]:
    """Every name the renderers derive from the run name (Jobs, check Jobs, pod hostnames, Services)."""
    names = [
        f"{plan.run}-{s}"
        for s in (
            "plan",
            "status",
            "orchestrator",
            "workflow",
            "storage",
            "tensorboard",
            "ddp",
            "deny-ingress",
            "rendezvous",
        )
    ]
    for job in plan.jobs:
        names += [job.name, job.name + VERIFY_SUFFIX, job.name + CHECK_SUFFIX]
        if job.distributed and cfg.nodes > 1:
            names.append(f"{job.name}-{cfg.nodes - 1}")  # Indexed Job pod hostname
            names.append(f"{job.name}-node-0-{cfg.nodes - 1}")  # JobSet pod hostname
    return names


def check_name_lengths(plan: Plan, cfg: C.PipelineConfig) -> None:
    too_long = [n for n in object_names(plan, cfg) if len(n) > C.MAX_NAME]
    if too_long:
        raise ConfigError(
            f"runName: '{plan.run}' makes names longer than {C.MAX_NAME} characters "
            f"({', '.join(too_long)}); use a shorter run name"
        )
