"""Submit a training run to Kubernetes, render it, or run the same plan locally
(`ko-child-asr-submit`, or `python tools/submit.py` from a checkout).

    ko-child-asr-submit --phase all --rank 32 --local          # embedded default, on this machine
    ko-child-asr-submit --phase all --rank 16 32 --image REGISTRY/ko-child-asr:0.1.0 \\
        --storage-pvc asr-data -n asr                            # or --storage s3://b/p --s3-secret S
    ko-child-asr-submit --rank 32 --render-only out/             # manifests only, no cluster
    ko-child-asr-submit status RUN -n asr | logs RUN -f | cancel RUN

Every run setting is a field of trainer.pipeline.config.PipelineConfig (the Helm chart's values);
the fields that declare a `flag` are the run-setting flags below (generated: name, type, choices
and help come from the field). `--values FILE` takes a values file, the flags override it. A few
flags are shorthands that set several values at once (--phase, --storage, --corpus, --image ...).
The run name defaults to one derived from the settings, so submitting the same command again is a
no-op; a changed spec under an existing name is refused unless --force. Exit codes: 0 ok, 1 a
step failed, 78 bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import sys
import typing
from pathlib import Path
from typing import Any, Iterator

from trainer import exit_codes
from trainer.config import flag_options, load_config, parse_config
from trainer.exit_codes import ConfigError
from trainer.pipeline import config as C
from trainer.pipeline import values_io
from trainer.storage import location_arg, needs_volume

LOCAL_ROOT = Path("runs")
LOCAL_PRESET = "demo"
LOCAL_MAX_PARALLEL = 1  # one step at a time: a laptop has one GPU (or a few CPU cores)
SUBCOMMANDS = ("status", "logs", "cancel")
S = argparse.SUPPRESS


# ----------------------------------------------------------------------------- flags -> values


def _key_value(text: str, flag: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"{flag}: expected KEY=VALUE, got {text!r}")
    return key, value


def _toleration(text: str) -> dict[str, Any]:
    """key[=value][:Effect] -> a toleration (Equal with a value, else Exists)."""
    match = re.fullmatch(r"([^=:]+)(?:=([^:]*))?(?::(\w+))?", text)
    if not match:
        raise ConfigError(f"--toleration: expected key[=value][:Effect], got {text!r}")
    key, value, effect = match.groups()
    tol: dict[str, Any] = {"key": key, "operator": "Equal" if value is not None else "Exists"}
    if value is not None:
        tol["value"] = value
    if effect:
        tol["effect"] = effect
    return tol


def _image(text: str) -> dict[str, str]:
    """REPOSITORY[:TAG][@sha256:DIGEST] -> image values (a ':' may belong to a registry port)."""
    name, at, digest = text.partition("@")
    pinned = {"digest": digest} if at else {}
    repository, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:  # no tag
        return {"repository": name, **pinned}
    return {"repository": repository, "tag": tag, **pinned}


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The values layer given by the command-line flags (only the flags that were given)."""
    given = vars(args)
    values: dict[str, Any] = {}

    def put(path: str, value: Any) -> None:
        *parents, leaf = path.split(".")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value

    for path, _, _ in flagged_fields():
        if path in given:  # a generated flag's dest is the value's path
            put(path, given[path])
    if "phase" in given:
        phase = given["phase"]
        put("phases", sorted(C.PHASE_CHOICES) if phase == "all" else [] if phase == "eval" else [int(phase)])
        put("evaluate", phase in ("all", "eval"))
    if "corpus" in given:
        put("data.corpus", given["corpus"])
        put("data.prepare", True)
    if "image" in given:
        put("image", _image(given["image"]))
    if "node_selector" in given:
        put("nodeSelector", dict(_key_value(kv, "--node-selector") for kv in given["node_selector"]))
    if "toleration" in given:
        put("tolerations", [_toleration(t) for t in given["toleration"]])
    if "set_train" in given:
        put(
            "trainOverrides",
            {
                k: parse_config(f"v: {v}", f"--set-train {k}")["v"]
                for k, v in (_key_value(kv, "--set-train") for kv in given["set_train"])
            },
        )
    storage = given.get("storage")
    if storage and not needs_volume(storage):
        put("storage.type", "s3")
        put("storage.s3.prefix", storage)
    elif storage and not args.local:
        raise ConfigError(
            "--storage DIR is for --local runs; on a cluster use --storage-pvc CLAIM or --storage s3://..."
        )
    return values


def build_config(args: argparse.Namespace) -> C.PipelineConfig:
    layers: list[dict[str, Any]] = []
    if args.local:
        # The embedded default, unless the run brings its own corpus or base model.
        brings_own = any(k in vars(args) for k in ("corpus", "baseModel", "data.dir"))
        layers.append(
            {
                "embeddedDefault": not brings_own,
                "preset": LOCAL_PRESET if not brings_own else "",
                "orchestrator": {"maxParallel": LOCAL_MAX_PARALLEL},
            }
        )
    for path in args.values or []:
        layers.append(load_config(path))
    layers.append(flag_values(args))
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = values_io.merge(merged, layer)
    if merged.get("embeddedDefault") and merged.get("preset"):
        merged = values_io.merge(preset_data_values(merged["preset"]), merged)
    return values_io.from_values(merged, source="flags", cluster=not args.local)


# The embedded default's data settings a trainer preset may carry in its `smoke_data` section.
PRESET_DATA_KEYS = {
    "child_speakers": "synthetic",
    "adult_speakers": "synthetic",
    "utterances_per_speaker": "synthetic",
    "mispronounce_rate": "synthetic",
    "unit": "data",
    "fractions": "data",
    "val_fraction": "data",
    "test_fraction": "data",
}


def preset_data_values(preset: str) -> dict[str, Any]:
    """Values for the synthetic corpus and its preparation from the preset (the lowest layer)."""
    from trainer.training.configure import load_preset

    spec = load_preset(preset).get("smoke_data") or {}
    values: dict[str, Any] = {}
    for key, section in PRESET_DATA_KEYS.items():
        if key in spec:
            values.setdefault(section, {})[C.camel(key)] = spec[key]
    return values


# ----------------------------------------------------------------------------- actions


def _local(args: argparse.Namespace, cfg: C.PipelineConfig) -> int:
    from trainer.pipeline.local import run_local
    from trainer.pipeline.orchestrator import argv_problems
    from trainer.pipeline.plan import build_plan
    from trainer.storage import expand_user, local_or_cached_dir

    root = getattr(args, "storage", None) or str(LOCAL_ROOT)
    plan = build_plan(cfg, expand_user(root))
    problems = [f"{job.name}: {p}" for job in plan.jobs for p in argv_problems(list(job.argv))]
    if problems:
        raise ConfigError("the trainer would reject the plan:\n  " + "\n  ".join(problems))
    if args.dry_run:  # print the commands the local chain would run, in order, and stop
        for job in plan.jobs:
            print(f"# {job.name}\npython -m trainer {shlex.join(job.argv)}")
        return exit_codes.OK
    logs = local_or_cached_dir(root, "runs") / plan.run / "logs"  # an S3 run's step logs: in the cache
    return run_local(plan, logs)


def _cluster(args: argparse.Namespace, cfg: C.PipelineConfig) -> int:
    from trainer.pipeline import render
    from trainer.pipeline.launch import run_objects

    namespace = getattr(args, "namespace", None)
    cluster = None
    if not args.render_only:
        from trainer.pipeline.cluster import Cluster, connect

        api, default_namespace = connect(args.kubeconfig, args.context)
        namespace = namespace or default_namespace
        cluster = Cluster(api, namespace)
    objects = run_objects(cfg, namespace or "default")
    run = render.plan_configmap(objects)["metadata"]["labels"][render.RUN_LABEL]
    if args.render_only:
        written = render.write_dir(objects, Path(args.render_only))
        print(f"run {run}: wrote {len(written)} manifests to {args.render_only}")
        return exit_codes.OK
    assert cluster is not None
    outcome = cluster.submit(objects, force=args.force, dry_run=args.dry_run)
    if outcome == "dry-run":
        return exit_codes.OK
    if cfg.orchestrator.chain == "client":
        return cluster.run_chain(objects, cfg.orchestrator.poll_seconds)
    print(
        f"run {run}: {outcome}. Follow it with:\n  ko-child-asr-submit status {run} -n {namespace}\n"
        f"  ko-child-asr-submit logs {run} -n {namespace} -f"
    )
    return cluster.follow(run, cfg.orchestrator.poll_seconds) if args.wait else exit_codes.OK


def _subcommand(args: argparse.Namespace) -> int:
    from trainer.pipeline.cluster import Cluster, connect

    api, default_namespace = connect(args.kubeconfig, args.context)
    cluster = Cluster(api, args.namespace or default_namespace)
    if args.command == "status":
        print(cluster.status_text(args.run))
    elif args.command == "cancel":
        count = cluster.cancel(args.run, delete_storage=args.delete_storage)
        print(f"run {args.run}: deleted {count} objects" + ("" if args.delete_storage else " (storage kept)"))
    else:
        step = args.step or cluster.status(args.run)["step"]
        if not step:
            raise ConfigError(f"run {args.run}: no step has started yet")
        for line in cluster.logs(step, follow=args.follow):
            print(line)
    return exit_codes.OK


# ----------------------------------------------------------------------------- parser


def flagged_fields(cls: type = C.PipelineConfig, path: str = "") -> Iterator[tuple[str, dataclasses.Field, Any]]:
    """(values path, field, type hint) of every PipelineConfig field, nested ones included, that
    declares its submit flag."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{path}{C.camel(f.name)}"
        if dataclasses.is_dataclass(hints[f.name]):
            yield from flagged_fields(hints[f.name], key + ".")
        elif "flag" in f.metadata:
            yield key, f, hints[f.name]


def _connection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--debug", action="store_true", help=f"tracebacks for anticipated errors too (or {exit_codes.DEBUG_ENV}=1)"
    )
    p.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context")


def build_parser() -> argparse.ArgumentParser:
    p = exit_codes.ArgumentParser(
        prog="ko-child-asr-submit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    run = p.add_argument_group("the run (shorthands for several values)")
    run.add_argument(
        "--phase", choices=["1", "2", "3", "eval", "all"], default=S, help="phases to run (all: 1,2,3 + eval)"
    )
    run.add_argument("--image", default=S, help="trainer image REPOSITORY[:TAG][@sha256:DIGEST]")
    run.add_argument("--corpus", default=S, help="AI Hub corpus folder below the storage root: prepare it first")
    run.add_argument(
        "--storage",
        default=S,
        type=location_arg("--storage"),
        help="s3://bucket/prefix, or (with --local) a folder (default ./runs)",
    )
    run.add_argument("--node-selector", action="append", default=S, metavar="KEY=VALUE")
    run.add_argument("--toleration", action="append", default=S, metavar="KEY[=VALUE][:EFFECT]")
    run.add_argument(
        "--set-train",
        action="append",
        default=S,
        metavar="FIELD=VALUE",
        help="a `trainer train` setting (TrainConfig field), e.g. learning_rate=3e-4",
    )
    run.add_argument("--values", action="append", help="Helm-style values file (repeatable; flags override)")
    settings = p.add_argument_group("run settings (PipelineConfig fields; defaults: charts/ko-child-asr/values.yaml)")
    for path, f, hint in flagged_fields():
        options = flag_options(f, hint)
        if "action" not in options and "choices" not in options:  # e.g. STORAGE_SIZE, not the values path
            options.setdefault("metavar", f.metadata["flag"].lstrip("-").replace("-", "_").upper())
        settings.add_argument(f.metadata["flag"], dest=path, **options)
    act = p.add_argument_group("what to do")
    act.add_argument("--local", action="store_true", help="run the plan here as local processes")
    act.add_argument("--render-only", metavar="DIR", help="write the manifests to DIR; no cluster needed")
    act.add_argument(
        "--dry-run",
        action="store_true",
        help="server-side dry run of every object and step Job; with --local: print the commands",
    )
    act.add_argument("--wait", action="store_true", help="follow the chain and stream each step's logs")
    act.add_argument("--force", action="store_true", help="replace an existing run with a different spec")
    _connection_flags(p)
    return p


def build_subcommand_parser() -> argparse.ArgumentParser:
    p = exit_codes.ArgumentParser(prog="ko-child-asr-submit")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help in (
        ("status", "where the chain is"),
        ("logs", "the current step's logs"),
        ("cancel", "delete the run"),
    ):
        s = sub.add_parser(name, help=help)
        s.add_argument("run", help="run name")
        _connection_flags(s)
        if name == "logs":
            s.add_argument("--step", help="step Job name (default: the current step)")
            s.add_argument("-f", "--follow", action="store_true")
        if name == "cancel":
            s.add_argument("--delete-storage", action="store_true", help="also delete the run's own PVC")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        args = build_subcommand_parser().parse_args(argv)
        return exit_codes.run_main(lambda: _subcommand(args), debug=args.debug)
    # Parsed inside run_main: a path flag's type refuses a URI it cannot take with a ConfigError.
    return exit_codes.run_main(lambda: _act(build_parser().parse_args(argv)), debug="--debug" in argv)


def _act(args: argparse.Namespace) -> int:
    return (_local if args.local else _cluster)(args, build_config(args))


if __name__ == "__main__":
    sys.exit(main())
