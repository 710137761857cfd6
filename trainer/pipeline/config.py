"""`PipelineConfig`: the one typed description of a run, shared by `tools/submit.py`, the local
runner, the Jinja2 templates and the Helm chart.

Field names are snake_case here and camelCase in Helm values (`gpus_per_node` <-> `gpusPerNode`);
the mapping is mechanical, so a setting is named once. The chart's `values.yaml` (every value with
its `## @param` line) and `values.schema.json` are generated from these dataclasses
(`python -m trainer.pipeline.schema --write`) and a test keeps the committed files identical.
Validation (trainer.pipeline.values_io.from_values) runs the same JSON schema that Helm runs, then
the cross-field checks (trainer.pipeline.checks; the chart's launcher runs them too, on the
installed values); trainer.pipeline.naming derives the run name.

`train_overrides` keys are `trainer.config.TrainConfig` field names (`learning_rate: 3.0e-4`); they
become `python -m trainer train` flags in sorted order. Fields the plan sets itself (paths, phase,
rank, ...) cannot be overridden.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from trainer import layout as L
from trainer.config import (
    DEFAULT_BASE_MODEL,
    MAX_PATH,
    PHASES,
    PLAN_SET,
    RUNTIME,
    SPEED_RANGE,
    TrainConfig,
    fields_with,
    setting,
)

# Kubernetes limits every object name used here (Jobs, Services, label values, pod hostnames) to a
# DNS-1123 label. The run name is a prefix of all of them, so it gets the room the longest suffix
# leaves: "-r<rank>-p<phase>-verify" plus an Indexed Job's "-<index>" pod hostname suffix.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_NAME = 63
MAX_RUN_NAME = 40
MAX_QUANTITY = 32
RESERVED_RUN_NAMES = ("data", L.MODELS_DIR)  # top-level folders of the storage layout (data.dir's default)
# Resource quantities, as the API server parses them (no sign: negative requests make no sense).
QUANTITY = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"
LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# Image repositories: registry[:port]/path; no spaces, quotes or newlines can get through. The tag
# and the digest are fields of their own.
IMAGE = r"^[a-z0-9]+([._/:-][a-zA-Z0-9_.-]+)*$"
DIGEST = r"^(sha256:[a-f0-9]{64})?$"
S3_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*'()=+-]+)*$"  # no trailing '/'
# The key of storage.s3.secretName's Secret that holds an AWS shared credentials file
# ([default] aws_access_key_id = ..., aws_secret_access_key = ...); pods mount it read-only.
S3_CREDENTIALS_KEY = "credentials"
# Paths below the storage root and preset names: plain relative paths, no "..", no specials.
REL_PATH = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$"
PRESET = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"
# A model: a hub id (org/name), an absolute path (e.g. below /storage) or an s3:// URI.
MODEL = r"^(/|s3://)?[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$"
# Hugging Face names: a Hub dataset id (name or owner/name); a split or configuration name.
HUB_DATASET = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)?$"
HF_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"

# TrainConfig fields that the plan sets for each job; overriding them would break the chain.
PLAN_OWNED_TRAIN_FIELDS = fields_with(TrainConfig, PLAN_SET)
PHASE_CHOICES = tuple(PHASES)


def _v(default: Any, help: str, flag: str = "", metavar: str = "", runtime: bool = False, **schema: Any) -> Any:
    """A field with help text (-> `## @param` in values.yaml), extra JSON-schema keywords and,
    when `flag` is given, the submit command's flag that sets it (trainer.pipeline.submit_cli;
    a list that may not be empty takes one or more values).

    `runtime`: where and how the run is scheduled, not what it computes (trainer.config.RUNTIME):
    left out of the run's settings digest (`settings_hash`), so changing it keeps the run's name."""
    cli: dict[str, Any] = {"flag": flag} if flag else {}
    if flag and metavar:
        cli["metavar"] = metavar
    if flag and schema.get("minItems"):
        cli["nargs"] = "+"
    return setting(default, help, schema=schema, **cli, **({RUNTIME: True} if runtime else {}))


@dataclass
class ImageConfig:
    repository: str = _v("ghcr.io/example/ko-child-asr", "trainer image repository", pattern=IMAGE, maxLength=255)
    tag: str = _v("0.1.0", "image tag", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", maxLength=128)
    digest: str = _v(
        "", "image digest (sha256:...): pins the image (pods run repository:tag@digest)", pattern=DIGEST, maxLength=71
    )
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = _v("IfNotPresent", "imagePullPolicy", runtime=True)
    pull_secrets: list[str] = _v(
        [],
        "names of existing image pull Secrets",
        runtime=True,
        items={"pattern": DNS_LABEL, "maxLength": MAX_NAME},
    )


@dataclass
class DataConfig:
    dir: str = _v(
        "data",
        "prepared data folder below the storage root (manifests, curriculum/, vocab.json)",
        flag="--data-dir",
        pattern=REL_PATH,
        maxLength=MAX_PATH,
    )
    corpus: str = _v(
        "",
        "corpus folder (or Parquet/Arrow file) below the storage root, imported by the prepare job",
        pattern=f"({REL_PATH})|^$",
        maxLength=MAX_PATH,
    )
    format: Literal["aihub", "hf"] = _v(
        "aihub",
        "how the corpus is stored: aihub (AI Hub-layout tree) or hf (Hugging Face dataset: save_to_disk folder, "
        "Parquet/Arrow files, audiofolder, or data.hubDataset)",
    )
    hub_dataset: str = _v(
        "",
        f"format hf: a Hugging Face Hub dataset id imported instead of data.corpus (the cluster must reach the Hub; "
        f"downloads are cached in {L.HF_CACHE_DIR}/ below a PVC storage root)",
        pattern=f"({HUB_DATASET})|^$",
        maxLength=MAX_PATH,
    )
    hf_splits: list[str] = _v(
        [], "format hf: the dataset splits to import ([]: all)", items={"pattern": HF_NAME, "maxLength": MAX_NAME}
    )
    hf_config: str = _v(
        "", "format hf: the dataset's configuration (subset) name", pattern=f"({HF_NAME})|^$", maxLength=MAX_NAME
    )
    prepare: bool = _v(False, "run `trainer data prepare` first (import, split, curriculum, vocab)")
    unit: Literal["syllable", "jamo", "phone"] = _v(
        "syllable", "output units of the vocabulary (jamo suits tiny models; phone: pronounced form, for assessment)"
    )
    fractions: list[float] = _v(
        [],
        "curriculum phase sizes as fractions of the training hours ([]: 30/90/148 h)",
        items={"exclusiveMinimum": 0, "maximum": 1},
    )
    val_fraction: float = _v(0.05, "share of utterances (by speaker) for validation", minimum=0, maximum=0.5)
    test_fraction: float = _v(0.05, "share of utterances (by speaker) for test", minimum=0, maximum=0.5)


@dataclass
class SynthConfig:
    """Sizes of the embedded default's synthetic corpus (`trainer data synth`)."""

    child_speakers: int = _v(40, "synthetic child speakers", minimum=0, maximum=10000)
    adult_speakers: int = _v(20, "synthetic adult speakers (they train the tiny base)", minimum=0, maximum=10000)
    utterances_per_speaker: int = _v(30, "utterances per synthetic speaker", minimum=1, maximum=100000)
    seed: int = _v(0, "seed of the synthetic corpus", minimum=0)
    workers: int = _v(2, "synthesis processes", minimum=1, maximum=64)
    mispronounce_rate: float = _v(
        0.0,
        "children mispronounce each syllable with this probability, recorded as ground truth for assess (0: off)",
        minimum=0,
        maximum=1,
    )


@dataclass
class Resources:
    cpu: str = _v("8", "CPU request", pattern=QUANTITY, maxLength=MAX_QUANTITY)
    memory: str = _v("48Gi", "memory request and limit", pattern=QUANTITY, maxLength=MAX_QUANTITY)


@dataclass
class ResourcesConfig:
    trainer: Resources = _v(Resources(), "train, base and eval Jobs (plus their GPUs, see gpusPerNode)")
    prepare: Resources = _v(Resources("2", "8Gi"), "the CPU-only data prepare Job")
    orchestrator: Resources = _v(Resources("100m", "256Mi"), "the chain orchestrator and marker checks")
    tensorboard: Resources = _v(Resources("250m", "1Gi"), "the TensorBoard Deployment")
    shm_size: str = _v(
        "16Gi", "size limit of the /dev/shm emptyDir (data loader workers)", pattern=QUANTITY, maxLength=MAX_QUANTITY
    )


@dataclass
class JobPolicy:
    backoff_limit: int = _v(3, "pod failures (not preemptions) tolerated per Job", minimum=0, maximum=100)
    active_deadline_seconds: int = _v(259200, "hard wall-clock limit per Job", minimum=60)
    ttl_seconds_after_finished: int = _v(604800, "finished Jobs are deleted after this long", minimum=0)
    termination_grace_period_seconds: int = _v(
        600, "SIGTERM -> SIGKILL; long enough to write a checkpoint", minimum=30, maximum=86400
    )


@dataclass
class PvcConfig:
    claim_name: str = _v(
        "",
        "existing PersistentVolumeClaim; empty: create <run>-storage",
        flag="--storage-pvc",
        metavar="CLAIM",
        pattern=f"({DNS_LABEL})|^$",
        maxLength=MAX_NAME,
    )
    size: str = _v(
        "200Gi", "size of the created claim", flag="--storage-size", pattern=QUANTITY, maxLength=MAX_QUANTITY
    )
    storage_class: str = _v(
        "",
        "storageClassName of the created claim (empty: cluster default)",
        flag="--storage-class",
        pattern=f"({DNS_LABEL})|^$",
        maxLength=MAX_NAME,
    )
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = _v(
        "ReadWriteOnce",
        "ReadWriteOnce: the run's pods that use it at the same time share one node; "
        "ReadWriteMany: nothing pinned (multi-node needs it)",
        flag="--access-mode",
    )


@dataclass
class S3Config:
    prefix: str = _v(
        "", "s3://bucket/prefix holding data, models and runs", pattern=f"({S3_URI})|^$", maxLength=MAX_PATH
    )
    secret_name: str = _v(
        "",
        f"Secret whose key `{S3_CREDENTIALS_KEY}` is an AWS shared credentials file, mounted read-only in the pods",
        flag="--s3-secret",
        pattern=f"({DNS_LABEL})|^$",
        maxLength=MAX_NAME,
    )
    endpoint: str = _v(
        "",
        "S3-compatible endpoint URL (empty: AWS)",
        flag="--s3-endpoint",
        pattern=r"^(https?://[A-Za-z0-9.:-]+/?)?$",
        maxLength=255,
    )
    service_account_name: str = _v(
        "",
        "workload identity: ServiceAccount allowed to reach the bucket",
        flag="--service-account",
        pattern=f"({DNS_LABEL})|^$",
        maxLength=MAX_NAME,
    )


@dataclass
class StorageConfig:
    type: Literal["pvc", "s3"] = _v("pvc", "where data, models, checkpoints and logs live")
    pvc: PvcConfig = _v(PvcConfig(), "PersistentVolumeClaim storage, mounted at /storage")
    s3: S3Config = _v(S3Config(), "S3 storage")


@dataclass
class TensorBoardConfig:
    enabled: bool = _v(True, "TensorBoard Deployment + Service over the run's log directory", flag="--tensorboard")


@dataclass
class OrchestratorConfig:
    chain: Literal["orchestrator", "client", "argo"] = _v(
        "orchestrator",
        "orchestrator: in-cluster CPU Job chains the phases; client: submit.py does; "
        "argo: one Argo Workflow (needs Argo Workflows installed)",
        flag="--chain",
    )
    poll_seconds: int = _v(30, "how often the chain looks at its Jobs", flag="--poll-seconds", minimum=1, maximum=3600)
    max_parallel: int = _v(
        0,
        "steps run at once, at most: the ranks' chains run side by side (0: no bound)",
        flag="--max-parallel",
        metavar="N",
        minimum=0,
        maximum=1000,
    )
    # The Argo executor pods only create and watch the Jobs (each task's outcome stays on the
    # Workflow's nodes); the Jobs keep their own pods and logs until job.ttlSecondsAfterFinished.
    workflow_pod_gc: Literal["OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess"] = _v(
        "OnWorkflowCompletion", "chain: argo: when Argo deletes the Workflow's executor pods (podGC strategy)"
    )
    workflow_ttl_seconds: int = _v(
        604800,
        "chain: argo: a finished Workflow is deleted after this long, with the Jobs it owns (ttlStrategy)",
        minimum=0,
        maximum=2147483647,
    )


@dataclass
class PipelineConfig:
    run_name: str = _v(
        "",
        "run name (DNS-1123 label); empty: derived from the config",
        flag="--name",
        runtime=True,
        pattern=f"({DNS_LABEL})|^$",
        maxLength=MAX_RUN_NAME,
    )
    image: ImageConfig = _v(ImageConfig(), "the trainer image (entrypoint `python -m trainer`)")
    phases: list[int] = _v(
        [1, 2, 3],
        "curriculum phases to run, in order ([]: evaluation only)",
        items={"enum": list(PHASE_CHOICES)},
        uniqueItems=True,
    )
    ranks: list[int] = _v(
        [32],
        "LoRA ranks; each gets its own phase chain",
        flag="--rank",
        items={"minimum": 1, "maximum": 1024},
        minItems=1,
        uniqueItems=True,
    )
    evaluate: bool = _v(True, "finish with the comparison Job: base vs each rank's last phase")
    assess: bool = _v(
        False,
        "the comparison Job also assesses pronunciation with the phone-unit models (data.unit: phone)",
        flag="--assess",
    )
    assess_speed: float = _v(
        1.0,
        "with assess: each recording played this many times faster before the phone models, the calibration's "
        "too (0.9 lowers a child's voice by 10%: the demo's phone model, BENCHMARKS.md)",
        minimum=SPEED_RANGE[0],
        maximum=SPEED_RANGE[1],
    )
    preset: str = _v(
        "",
        "trainer preset (e.g. demo, demo-small) passed to every job",
        flag="--preset",
        pattern=PRESET,
        maxLength=MAX_NAME,
    )
    base_model: str = _v(
        DEFAULT_BASE_MODEL,
        "hub id, absolute path (PVC: below /storage) or s3:// URI",
        flag="--base-model",
        pattern=MODEL,
        maxLength=MAX_PATH,
    )
    embedded_default: bool = _v(
        False,
        "synthetic corpus + tiny base trained from scratch instead of data.corpus / baseModel",
        flag="--embedded-default",
    )
    data: DataConfig = _v(DataConfig(), "data locations on the storage and how they are prepared")
    synthetic: SynthConfig = _v(
        SynthConfig(), "the embedded default's synthetic corpus (submit.py takes it from the preset)"
    )
    train_overrides: dict[str, Any] = _v({}, "`trainer train` settings: TrainConfig field -> value")
    gpus_per_node: int = _v(
        1,
        "nvidia.com/gpu per training pod, one torchrun process each; base and evaluation (one process) use one "
        "(0: CPU only)",
        flag="--gpus",
        minimum=0,
        maximum=16,
    )
    nodes: int = _v(
        1, "pods per training Job; >1: Indexed Job + torchrun rendezvous", flag="--nodes", minimum=1, maximum=64
    )
    multinode: Literal["indexed", "jobset"] = _v(
        "indexed",
        "nodes > 1: an Indexed Job + headless Service, or a JobSet (gang: a failed node restarts "
        "the whole group; needs JobSet installed)",
        flag="--multinode",
        runtime=True,
    )
    node_selector: dict[str, str] = _v({}, "nodeSelector for trainer pods (e.g. GPU product labels)", runtime=True)
    tolerations: list[dict[str, Any]] = _v([], "tolerations for trainer pods", runtime=True)
    affinity: dict[str, Any] = _v({}, "affinity for trainer pods", runtime=True)
    queue: str = _v(
        "",
        "Kueue LocalQueue of the GPU steps (label kueue.x-k8s.io/queue-name); empty: not queued",
        flag="--queue",
        metavar="NAME",
        runtime=True,
        pattern=f"({DNS_LABEL})|^$",
        maxLength=MAX_NAME,
    )
    cpu_queue: str = _v(
        "",
        "Kueue LocalQueue of the CPU-only Jobs (orchestrator, marker checks, data steps), apart "
        "from GPU work; set it when Kueue manages Jobs without a queue name",
        flag="--cpu-queue",
        metavar="NAME",
        runtime=True,
        pattern=f"({DNS_LABEL})|^$",
        maxLength=MAX_NAME,
    )
    priority_class: str = _v(
        "",
        "PriorityClass of the GPU steps' pods, and Kueue WorkloadPriorityClass of the same name",
        flag="--priority-class",
        metavar="NAME",
        runtime=True,
        pattern=f"({DNS_LABEL})|^$",
        maxLength=MAX_NAME,
    )
    resources: ResourcesConfig = _v(ResourcesConfig(), "requests per kind of pod (quantities as strings)", runtime=True)
    job: JobPolicy = _v(JobPolicy(), "Job retry and lifetime policy", runtime=True)
    # Where outputs live: a run of the same settings elsewhere computes the same thing.
    storage: StorageConfig = _v(StorageConfig(), "storage backend", runtime=True)
    tensorboard: TensorBoardConfig = _v(TensorBoardConfig(), "TensorBoard", runtime=True)
    orchestrator: OrchestratorConfig = _v(OrchestratorConfig(), "how the phases are chained", runtime=True)

    def __post_init__(self) -> None:
        self.phases = sorted(self.phases)


def camel(name: str) -> str:
    """A field name as a Helm values key: `gpus_per_node` -> `gpusPerNode`."""
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def train_override_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(TrainConfig) if f.name not in PLAN_OWNED_TRAIN_FIELDS]
