"""Render a run's Kubernetes objects from the Jinja2 templates in `k8s/`: the one description of
every object of a run. `tools/submit.py` creates them from a laptop; the Helm chart's launcher Job
creates them in the cluster (trainer.pipeline.launch).

    objects = render_jinja(cfg, namespace="asr")                # list of dicts, apply order

The trainer Jobs are not top-level objects: they live in the plan ConfigMap, one JSON manifest per
step, and the orchestrator (or `submit.py --chain client`) creates each when its turn comes.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

import yaml

import trainer
from trainer.exit_codes import ConfigError
from trainer.pipeline import config as C
from trainer.pipeline import values_io
from trainer.pipeline.constants import MASTER_PORT, STORAGE_MOUNT, TORCHRUN_EXIT_MARGIN, template_values
from trainer.pipeline.plan import CHECK_SUFFIX, VERIFY_SUFFIX, Plan, PlannedJob, build_plan

# The templates are the checkout's top-level k8s/ and charts/ folders; a built package carries
# copies in trainer/_templates/ (setup.py's build step puts them there).
SHIPPED_DIR = "_templates"


def _shipped(folder: str) -> Path:
    """The installed package's copy of the top-level `folder`, else the source checkout's own (a
    checkout on PYTHONPATH, or an editable install)."""
    packaged = importlib.resources.files(trainer) / SHIPPED_DIR / folder
    return Path(str(packaged)) if packaged.is_dir() else Path(__file__).resolve().parents[2] / folder


K8S_DIR = _shipped("k8s")
CHART_DIR = _shipped("charts") / "ko-child-asr"
RUN_LABEL = "ko-child-asr/run"
SPEC_HASH_ANNOTATION = "ko-child-asr/spec-hash"


def storage_root(cfg: C.PipelineConfig) -> str:
    """Where the storage is, as pods see it: the PVC's mount or the s3:// prefix."""
    return cfg.storage.s3.prefix if cfg.storage.type == "s3" else STORAGE_MOUNT


def claim_name(cfg: C.PipelineConfig, run: str) -> str:
    return cfg.storage.pvc.claim_name or f"{run}-storage"


CLAIM_LABEL = "ko-child-asr/claim"


def shares_a_node(cfg: C.PipelineConfig) -> bool:
    """A ReadWriteOnce claim attaches to one node: the pods using it at the same time must share it."""
    return cfg.storage.type == "pvc" and cfg.storage.pvc.access_mode == "ReadWriteOnce"


TORCHRUN = ["python", "-m", "trainer.torchrun"]  # torchrun that keeps the trainer's exit codes


def runs_as_jobset(cfg: C.PipelineConfig, job: PlannedJob) -> bool:
    """A multi-node step that runs as a JobSet (its Job is the JobSet's replicated Job)."""
    return job.distributed and cfg.nodes > 1 and cfg.multinode == "jobset"


JOBSET_REPLICA = "node"  # the JobSet's one replicated Job; pods are <step>-node-0-<index>.<step>


def launcher(cfg: C.PipelineConfig, job: PlannedJob, run: str) -> list[str]:
    """The container command: the image's entrypoint (empty) or torchrun for several GPUs or nodes."""
    if not job.distributed or (cfg.nodes == 1 and cfg.gpus_per_node <= 1):
        return []
    shutdown = f"--shutdown-timeout={cfg.job.termination_grace_period_seconds - TORCHRUN_EXIT_MARGIN}"
    procs = f"--nproc-per-node={max(cfg.gpus_per_node, 1)}"
    if cfg.nodes == 1:
        return [*TORCHRUN, "--standalone", procs, shutdown, "-m", "trainer"]
    master = f"{job.name}-{JOBSET_REPLICA}-0-0.{job.name}" if runs_as_jobset(cfg, job) else f"{job.name}-0.{run}-ddp"
    return [
        *TORCHRUN,
        f"--nnodes={cfg.nodes}",
        procs,
        "--node-rank=$(NODE_RANK)",
        f"--master-addr={master}",
        f"--master-port={MASTER_PORT}",
        shutdown,
        "-m",
        "trainer",
    ]


def gpus(cfg: C.PipelineConfig, job: PlannedJob) -> int:
    """GPUs a step's pod requests: one per torchrun process for training, at most one for the other
    GPU steps (base and evaluation run as a single process)."""
    if not job.uses_gpu:
        return 0
    return cfg.gpus_per_node if job.distributed else min(cfg.gpus_per_node, 1)


def marker_check_jobs(job: PlannedJob) -> list[str]:
    """The step's marker-check Jobs: one before it when it may be done already, one after it."""
    before = [job.name + CHECK_SUFFIX] if job.skippable else []
    return [*before, job.name + VERIFY_SUFFIX]


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(K8S_DIR),
        undefined=jinja2.StrictUndefined,  # a misspelled value is an error, not an empty string
        autoescape=False,
        extensions=["jinja2.ext.do"],
        trim_blocks=False,
        keep_trailing_newline=True,
    )


def _load_all(text: str, source: str) -> list[dict[str, Any]]:
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc]
    except yaml.YAMLError as exc:  # a template bug, not a user error: show the text
        raise RuntimeError(f"{source} rendered invalid YAML: {exc}\n{text}") from None


def render_jinja(cfg: C.PipelineConfig, namespace: str, plan: Plan | None = None) -> list[dict[str, Any]]:
    plan = plan or build_plan(cfg, storage_root(cfg))
    env = _environment()
    context = {
        "values": values_io.to_values(cfg),
        "run": plan.run,
        "namespace": namespace,
        "version": trainer.__version__,
        "managed_by": "ko-child-asr-submit",
        "claim": claim_name(cfg, plan.run),
        "claim_label": CLAIM_LABEL,
        "colocate": shares_a_node(cfg),
        "logdir": plan.logdir,
        "s3_credentials_key": C.S3_CREDENTIALS_KEY,
        **template_values(),
    }

    def render(template: str, **extra: Any) -> list[dict[str, Any]]:
        return _load_all(env.get_template(template).render(**context, **extra), template)

    manifests = {}
    for job in plan.jobs:
        manifests[job.name] = render(
            "job.yaml.j2",
            job=job,
            launcher=launcher(cfg, job, plan.run),
            runs_as_jobset=runs_as_jobset(cfg, job),
            gpus=gpus(cfg, job),
        )[0]
        if runs_as_jobset(cfg, job):
            manifests[job.name] = render("jobset.yaml.j2", job=job, step=manifests[job.name], replica=JOBSET_REPLICA)[0]
        for name in marker_check_jobs(job):
            manifests[name] = render("check-job.yaml.j2", job=job, name=name)[0]
    manifests = {name: json.dumps(manifest, sort_keys=True) for name, manifest in manifests.items()}
    objects: list[dict[str, Any]] = []
    if cfg.storage.type == "pvc" and not cfg.storage.pvc.claim_name:
        objects += render("storage.yaml.j2")
    objects += render(
        "plan-configmap.yaml.j2", plan_json=json.dumps(plan.to_json(), sort_keys=True), job_manifests=manifests
    )
    if cfg.orchestrator.chain == "orchestrator":
        objects += render("orchestrator.yaml.j2")
    if cfg.orchestrator.chain == "argo":
        objects += render(
            "workflow.yaml.j2",
            jobs=plan.jobs,
            job_manifests=manifests,
            check_suffix=CHECK_SUFFIX,
            verify_suffix=VERIFY_SUFFIX,
        )
    if cfg.nodes > 1 and cfg.multinode == "indexed":
        objects += render("ddp-service.yaml.j2")
    if cfg.tensorboard.enabled:
        objects += render("tensorboard.yaml.j2")
    objects += render("network-policy.yaml.j2")
    return objects


# ----------------------------------------------------------------------------- reading objects back


def plan_configmap(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-plan"))


def job_manifests(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The step Jobs stored in the plan ConfigMap, in plan order."""
    data = plan_configmap(objects)["data"]
    steps = json.loads(data["plan.json"])["jobs"]
    return {step["name"]: json.loads(data[step["name"] + ".json"]) for step in steps}


def plan_jobs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every Job stored in the plan ConfigMap: each step (in plan order) followed by its marker checks."""
    data = plan_configmap(objects)["data"]
    names = [
        step["name"] + suffix
        for step in json.loads(data["plan.json"])["jobs"]
        for suffix in ("", CHECK_SUFFIX, VERIFY_SUFFIX)
    ]
    return [json.loads(data[name + ".json"]) for name in names if name + ".json" in data]


# What says which tool created an object, not what it is: the label, and the spec hash itself.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"


def _strip_tool_marks(metadata: dict[str, Any]) -> None:
    metadata.get("labels", {}).pop(MANAGED_BY_LABEL, None)
    annotations = {k: v for k, v in metadata.get("annotations", {}).items() if k != SPEC_HASH_ANNOTATION}
    metadata.pop("annotations", None)
    if annotations:
        metadata["annotations"] = annotations


def normalise(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Objects keyed by (kind, name), without the marks of the tool, the plan ConfigMap's JSON decoded:
    what the spec hash covers (and the golden files show)."""
    out = {}
    for obj in json.loads(json.dumps(objects)):
        _strip_tool_marks(obj["metadata"])
        for template in _pod_templates(obj):
            _strip_tool_marks(template.setdefault("metadata", {}))
        if obj["kind"] == "Workflow":  # its pods' labels; the Jobs its resource templates create, decoded
            _strip_tool_marks(obj["spec"]["podMetadata"])
            for template in obj["spec"]["templates"]:
                if "resource" in template:
                    template["resource"]["manifest"] = _normalised_one(json.loads(template["resource"]["manifest"]))
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-plan"):
            data = {key: json.loads(value) for key, value in obj["data"].items()}
            obj["data"] = {key: _normalised_one(value) if key != "plan.json" else value for key, value in data.items()}
        out[(obj["kind"], obj["metadata"]["name"])] = obj
    return out


def _normalised_one(obj: dict[str, Any]) -> dict[str, Any]:
    return normalise([obj])[(obj["kind"], obj["metadata"]["name"])]


def _pod_templates(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The templates inside an object that carry labels: a Job's or Deployment's pod template, a
    JobSet's replicated Jobs and their pod templates."""
    spec = obj.get("spec", {})
    templates = [spec["template"]] if "template" in spec else []
    for replicated in spec.get("replicatedJobs", []):
        templates += [replicated["template"], replicated["template"]["spec"]["template"]]
    return templates


# What `kubectl apply -f DIR` reads from a folder.
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def _previous_render(directory: Path, run: str) -> list[Path]:
    """The manifests an earlier render of run `run` left in `directory` (replaced by this one);
    ConfigError when it holds any other manifest: `kubectl apply -f DIR` would submit it too."""
    if not directory.is_dir():
        return []
    ours = []
    for path in sorted(directory.iterdir()):
        if path.suffix not in MANIFEST_SUFFIXES:
            continue
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            docs = []
        owners = {
            (d.get("metadata") or {}).get("labels", {}).get(RUN_LABEL) if isinstance(d, dict) else None for d in docs
        }
        if owners != {run}:
            other = ", ".join(sorted(str(o) for o in owners)) or "none"
            raise ConfigError(
                f"--render-only: {path} is not a manifest of run {run} (run label: {other}); `kubectl apply -f "
                f"{directory}` would submit it too: choose an empty folder or remove it"
            )
        ours.append(path)
    return ours


def write_dir(objects: list[dict[str, Any]], directory: Path) -> list[Path]:
    """`--render-only DIR`: one file per object (plus each Job of the plan, for reading and
    validating). A render of the same run there before is replaced as a whole (a Job it had and
    this one has not must not be submitted); any other manifest there is a ConfigError."""
    run = plan_configmap(objects)["metadata"]["labels"][RUN_LABEL]
    for stale in _previous_render(directory, run):
        stale.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    everything = [*objects, *plan_jobs(objects)]
    for index, obj in enumerate(everything):
        path = directory / f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True), encoding="utf-8")
        written.append(path)
    return written
