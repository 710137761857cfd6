"""Typed configuration shared by the CLI, the local runner and the Kubernetes templates.

Every command-line flag of `python -m trainer train` is a field of `TrainConfig`; the flag name is
the field name with dashes (`max_batch_seconds` -> `--max-batch-seconds`) and its help text is the
field's `metadata["help"]`, so a flag is named exactly once. A YAML file (`--config FILE`) sets any
field; flags given on the command line override the file; presets (`--preset NAME`) are the
lowest layer above the defaults.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from trainer.exit_codes import ConfigError
from trainer.storage import check_location


@dataclass(frozen=True)
class PhaseSpec:
    """One curriculum phase: how much training audio, how many epochs, which WER it should reach."""

    hours: float
    epochs: int
    wer_target: float


# The seed project's curriculum: 30 h -> 90 h -> 148 h, each phase warm-started from the one before.
PHASES: dict[int, PhaseSpec] = {
    1: PhaseSpec(hours=30.0, epochs=10, wer_target=0.25),
    2: PhaseSpec(hours=90.0, epochs=8, wer_target=0.18),
    3: PhaseSpec(hours=148.0, epochs=5, wer_target=0.15),
}

DEFAULT_BASE_MODEL = "facebook/wav2vec2-xls-r-300m"
DEVICES = ("auto", "cpu", "cuda")


# Free-form strings (see check_bounds): paths and URIs may hold any printable text; names that
# become folder names are plain names (no '/', no leading '.', hence no '..'); module names are
# dotted identifiers.
PATH_TEXT = r"[^\x00-\x1f\x7f]*"
MAX_PATH = 1024
FOLDER_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
MAX_FOLDER_NAME = 64
MODULE_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"


def setting(default: Any, help: str, **metadata: Any) -> Any:
    """A config dataclass field with help text (the generated flags' and the chart's documentation)
    and metadata: bounds (`above`, `at_least`, `below`, `at_most`; for strings `pattern` and
    `max_length`; for a list, each item; `location`: a local path or s3:// URI, see
    trainer.storage.check_location) that `check_bounds` enforces, and roles (PLAN_SET, RUNTIME)."""
    meta = {"help": help, **metadata}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return field(default=default, metadata=meta)


# Roles of a TrainConfig field (metadata flags), read where each fact is used:
# set by the pipeline plan for each job, so trainOverrides may not set it (trainer.pipeline.checks);
PLAN_SET = "plan_set"
# how a run executes rather than what it learns, so it is left out of the base model's input
# digest (trainer.training.pretrain) and of the settings compared on resume (trainer.training.run_checkpoints).
RUNTIME = "runtime"


def fields_with(cls: type, role: str) -> frozenset[str]:
    """Names of the fields of `cls` that have `role`."""
    return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get(role))


def _path(default: str, help: str, **roles: bool) -> Any:
    """A path or URI field: any printable text up to MAX_PATH characters."""
    return setting(default, help, pattern=PATH_TEXT, max_length=MAX_PATH, location=True, **roles)


@dataclass
class TrainConfig:
    """Everything `python -m trainer train` needs. See module docstring for how flags map to fields."""

    # --- where things are
    output: str = _path(
        "", "checkpoint/log directory: local path, PVC path or s3://bucket/prefix", plan_set=True, runtime=True
    )
    model: str = _path(DEFAULT_BASE_MODEL, "base model: local directory or hub id", plan_set=True)
    train_manifest: str = _path("", "training manifest (JSONL); default: the phase's curriculum file", plan_set=True)
    val_manifest: str = _path("", "validation manifest (JSONL)", plan_set=True)
    curriculum_dir: str = _path("", "directory with phase1.jsonl..phase3.jsonl (picks --train-manifest)", plan_set=True)
    vocab: str = _path("", "vocab.json built from the training split (see `trainer data vocab`)", plan_set=True)
    init_from: str = _path("", "warm start: adapter checkpoint URI (weights only, fresh optimizer)", plan_set=True)
    new_head: bool = setting(
        False,
        "with --init-from: keep the checkpoint's adapters but start a new CTC head for --vocab (needed when the "
        "checkpoint was trained with another vocabulary: without it that is exit 78)",
    )
    # --- curriculum
    phase: int = setting(0, "curriculum phase 1|2|3 (0: no phase defaults)", choices=[0, 1, 2, 3], plan_set=True)
    epochs: float = setting(0.0, "epochs (0: the phase's default)", at_least=0)
    max_steps: int = setting(0, "stop after this many optimizer steps (0: by epochs)", at_least=0)
    wer_target: float = setting(0.0, "WER the phase should reach (0: the phase's default)", at_least=0)
    # --- LoRA
    rank: int = setting(16, "LoRA rank (16 or 32 in the seed's experiments)", at_least=1, plan_set=True)
    lora_alpha: int = setting(32, "LoRA alpha", at_least=1)
    lora_dropout: float = setting(0.05, "LoRA dropout", at_least=0, below=1)
    target_modules: list[str] = setting(
        ["q_proj", "k_proj", "v_proj"], "modules that get adapters", pattern=MODULE_NAME, max_length=128
    )
    frozen_layers: int = setting(8, "lower transformer layers left without adapters (frozen)", at_least=0)
    modules_to_save: list[str] = setting(
        [],
        "modules trained in full and saved with the adapter, besides the CTC head (layers no wider "
        "than the rank, where an adapter would cost more than the layer)",
        pattern=MODULE_NAME,
        max_length=128,
    )
    # --- optimisation
    learning_rate: float = setting(1e-4, "peak learning rate", at_least=0)
    head_learning_rate: float = setting(0.0, "peak learning rate of the CTC head (0: --learning-rate)", at_least=0)
    warmup_ratio: float = setting(0.1, "fraction of steps for linear warmup", at_least=0, at_most=1)
    weight_decay: float = setting(0.0, "AdamW weight decay", at_least=0)
    max_grad_norm: float = setting(1.0, "gradient clipping norm", above=0)
    max_batch_seconds: float = setting(200.0, "padded audio seconds per batch (duration-bucketed batches)", above=0)
    pad_ladder_step: float = setting(
        0.06,
        "batches are padded to a geometric ladder of lengths, each rung this much longer than the one "
        "below: few distinct batch shapes (~50 over 0.8-16 s at 0.06) for ~3 percent padding",
        above=0,
        at_most=1,
    )
    grad_accum: int = setting(1, "gradient accumulation steps", at_least=1)
    ema_decay: float = setting(0.999, "EMA decay of the trainable weights (0: off)", at_least=0, below=1)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = setting("auto", "auto: bf16 on GPU if supported")
    gradient_checkpointing: bool = setting(False, "trade compute for memory")
    # --- step options (trainer/model/step_options.py; off until measured on the GPU)
    attention: Literal["sdpa", "eager"] = setting("sdpa", "attention implementation (transformers attn_implementation)")
    bf16_frozen_weights: bool = setting(False, "bf16 precision: store the frozen base weights in bf16")
    frontend_in_compute_dtype: bool = setting(
        False, "bf16 precision: run the frozen conv feature encoder in bf16, not autocast"
    )
    compile_encoder: bool = setting(
        False, "torch.compile the transformer encoder (one graph per batch shape)", runtime=True
    )
    seed: int = setting(42, "random seed (model init, data order, augmentation)")
    # --- augmentation
    mask_time_prob: float = setting(0.05, "SpecAugment time-mask probability", at_least=0, at_most=1)
    mask_feature_prob: float = setting(0.0, "SpecAugment feature-mask probability", at_least=0, at_most=1)
    speed_perturb: list[float] = setting([0.9, 1.0, 1.1], "speed perturbation factors (empty: off)", above=0)
    pitch_perturb_semitones: float = setting(0.0, "max pitch shift in semitones (0: off)", at_least=0)
    # --- evaluation, checkpoints, early stopping
    eval_steps: int = setting(500, "evaluate every N steps", at_least=1)
    save_steps: int = setting(500, "save a checkpoint every N steps", at_least=1, runtime=True)
    keep_last: int = setting(3, "complete checkpoints kept (besides checkpoint-best)", at_least=1, runtime=True)
    metric: Literal["cer", "wer"] = setting("cer", "validation metric for best checkpoint / early stopping")
    patience: int = setting(5, "early stopping patience in evaluations (0: off)", at_least=0)
    max_eval_utterances: int = setting(
        0, "cap on validation utterances per evaluation, evenly spaced over the manifest (0: all)", at_least=0
    )
    # --- data checks (trainer.data.screening): a run on mostly skipped data fails instead of "succeeding"
    max_skipped_train_share: float = setting(
        0.05, "fail (exit 78) when more than this share of training rows is skipped", at_least=0, at_most=1
    )
    max_skipped_val_share: float = setting(
        0.05, "fail (exit 78) when more than this share of validation rows is skipped", at_least=0, at_most=1
    )
    # --- observability and runtime
    log_steps: int = setting(20, "one plain log line every N steps", at_least=1, runtime=True)
    num_workers: int = setting(
        -1, "data loader workers (-1: one per CPU the process may use, less one)", at_least=-1, runtime=True
    )
    device: str = setting("auto", "|".join(DEVICES), runtime=True)
    unit: Literal["syllable", "jamo", "phone"] = setting("syllable", "output units when building the vocabulary")
    # --- pretrain-base: the tiny model trained from scratch (stand-in for a pretrained XLS-R)
    hidden_size: int = setting(128, "pretrain-base: transformer width", at_least=1)
    num_layers: int = setting(4, "pretrain-base: transformer layers", at_least=1)

    def __post_init__(self) -> None:
        if self.phase not in (0, *PHASES):
            raise ConfigError(f"phase: must be one of 1, 2, 3, got {self.phase}")
        if self.device not in DEVICES:
            raise ConfigError(f"device: must be one of {', '.join(DEVICES)}, got {self.device!r}")
        check_bounds(self)

    def phase_spec(self) -> Optional[PhaseSpec]:
        return PHASES.get(self.phase)


BOUNDS = {
    "above": (lambda v, b: v > b, ">"),
    "at_least": (lambda v, b: v >= b, ">="),
    "below": (lambda v, b: v < b, "<"),
    "at_most": (lambda v, b: v <= b, "<="),
}
PATTERN_NAMES = {
    PATH_TEXT: "text without control characters",
    FOLDER_NAME: "a plain name (letters, digits, _ . -; not starting with '.')",
    MODULE_NAME: "a module name (letters, digits, _ and .)",
}


def check_bounds(config: Any) -> None:
    """ConfigError naming the first field outside the bounds its metadata declares."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, float) and not math.isfinite(item):  # YAML's .inf and .nan
                raise ConfigError(f"{f.name}: must be a finite number, got {value}")
            for key, (holds, sign) in BOUNDS.items():
                if key in f.metadata and not holds(item, f.metadata[key]):
                    raise ConfigError(f"{f.name}: must be {sign} {f.metadata[key]}, got {value}")
            if isinstance(item, str):
                check_text(item, f.name, f.metadata.get("pattern", PATH_TEXT), f.metadata.get("max_length", MAX_PATH))
                if f.metadata.get("location"):
                    check_location(item, f.name)


def check_text(value: str, setting: str, pattern: str, max_length: int) -> str:
    """`value`, or a ConfigError naming `setting` when it is longer than `max_length` or does not
    match `pattern` as a whole."""
    if len(value) > max_length:
        raise ConfigError(f"{setting}: longer than {max_length} characters ({len(value)})")
    if not re.fullmatch(pattern, value):
        raise ConfigError(f"{setting}: {value!r} is not {PATTERN_NAMES.get(pattern, pattern)}")
    return value


# ----------------------------------------------------------------------------- dataclass <-> flags


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _type_name(tp: Any) -> str:
    tp = _base_type(tp)
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    return getattr(tp, "__name__", None) if typing.get_origin(tp) is None else str(tp).replace("typing.", "")


def _base_type(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])
    return tp


def flag_options(f: dataclasses.Field, hint: Any) -> dict[str, Any]:
    """`add_argument` options of the flag that sets field `f` (type hint `hint`): help text,
    type or action, choices and nargs from the type and the field's metadata (`choices`, `nargs`,
    `metavar`); the default is SUPPRESSed so only flags that were given override."""
    tp = _base_type(hint)
    kw: dict[str, Any] = {"help": f.metadata.get("help", ""), "default": argparse.SUPPRESS}
    origin = typing.get_origin(tp)
    if tp is bool:
        kw["action"] = argparse.BooleanOptionalAction
    elif origin is list:
        kw["nargs"] = f.metadata.get("nargs", "*")
        kw["type"] = typing.get_args(tp)[0]
    elif origin is Literal:
        kw["choices"] = list(typing.get_args(tp))
    else:
        kw["type"] = tp
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
    if "metavar" in f.metadata:
        kw["metavar"] = f.metadata["metavar"]
    return kw


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one flag per field of `cls`, named after the field."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        parser.add_argument(_flag(f.name), dest=f.name, **flag_options(f, hints[f.name]))


# How far a recording may be sped up or slowed down before a model (`assess --speed`, values
# assessSpeed): beyond it the phones leave any voice's range.
SPEED_RANGE = (0.5, 2.0)
# Limits on a config document (train --config, presets, values files, JSON or YAML): far above
# any real config, low enough that a hostile file cannot make parsing or walking it expensive
# (a few nested anchors expand to billions of nodes: "billion laughs").
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_ALIASES = 64


class _ConfigLoader(yaml.SafeLoader):
    """YAML 1.2 numbers, as Helm's parser reads them (PyYAML follows YAML 1.1, where `1e-4` is a
    string), and at most MAX_CONFIG_ALIASES aliases per document."""

    def compose_document(self) -> Any:
        self.aliases_seen = 0
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_CONFIG_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"more than {MAX_CONFIG_ALIASES} aliases", mark)
        return super().compose_node(parent, index)


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?([0-9][0-9_]*)?\.?[0-9]+([eE][-+]?[0-9]+)?$|^[-+]?[0-9]+\.[0-9]*([eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def parse_config(text: str, source: str) -> dict[str, Any]:
    """The one parser of every config document (YAML, or JSON as its subset): a mapping, or a
    ConfigError naming `source` (too large, too many aliases, nested too deep, invalid)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_CONFIG_BYTES} bytes; not a config file")
    try:
        data = yaml.load(text, Loader=_ConfigLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping of field: value")
    return data


def load_config(path: str | Path) -> dict[str, Any]:
    """`parse_config` of a file, whose size is checked before it is read."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; not a config file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_config(text, str(path))


def _fits(tp: Any, value: Any) -> bool:
    """Whether a value from a file or values dict has the field's type (ints pass for floats)."""
    if value is None:
        return typing.get_origin(tp) is typing.Union and type(None) in typing.get_args(tp)
    tp = _base_type(tp)
    origin = typing.get_origin(tp)
    if origin is list:
        return isinstance(value, list) and all(_fits(typing.get_args(tp)[0], v) for v in value)
    if origin is Literal:
        return value in typing.get_args(tp)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return not isinstance(tp, type) or isinstance(value, tp)


def build(cls: type, *layers: dict[str, Any], source: str = "config") -> Any:
    """Instantiate `cls` from layered dicts (later layers win); unknown keys and values of the
    wrong type are errors naming the field."""
    hints = typing.get_type_hints(cls)
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            key = key.replace("-", "_")
            if key not in hints:
                raise ConfigError(f"{source}: unknown field '{key}' for {cls.__name__}")
            if not _fits(hints[key], value):
                raise ConfigError(f"{source}: {key}: expected {_type_name(hints[key])}, got {value!r}")
            merged[key] = value
    try:
        return cls(**merged)
    except (TypeError, ConfigError) as exc:
        raise ConfigError(f"{source}: {exc}") from None
