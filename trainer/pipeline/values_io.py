"""Helm values <-> `PipelineConfig`: values out (`to_values`), values in (`from_values`: the JSON
schema Helm runs, then the cross-field checks), and Helm's deep merge of values files.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from trainer.exit_codes import ConfigError
from trainer.pipeline import schema
from trainer.pipeline.checks import problems
from trainer.pipeline.config import PipelineConfig, camel


def to_values(obj: Any) -> dict[str, Any]:
    """PipelineConfig -> Helm values (camelCase keys; dict-valued settings are kept verbatim)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[camel(f.name)] = to_values(value) if dataclasses.is_dataclass(value) else json.loads(json.dumps(value))
    return out


def _from_values(cls: type, values: dict[str, Any]) -> Any:
    types = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if camel(f.name) not in values:
            continue
        value = values[camel(f.name)]
        kwargs[f.name] = _from_values(types[f.name], value) if dataclasses.is_dataclass(types[f.name]) else value
    return cls(**kwargs)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge values like Helm does (maps merge, anything else replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def from_values(values: dict[str, Any], source: str = "values", cluster: bool = True) -> PipelineConfig:
    """Validate Helm-style values (defaults filled in) and build the config; ConfigError lists every
    problem. `cluster`: the run is rendered for Kubernetes (not run `--local` on this machine)."""
    merged = merge(to_values(PipelineConfig()), values)
    errors = _control_characters(merged) + schema.errors(merged)
    if errors:
        raise ConfigError(f"{source}: invalid values:\n  " + "\n  ".join(errors))
    cfg = _from_values(PipelineConfig, merged)
    found = problems(cfg, cluster)
    if found:
        raise ConfigError(f"{source}: invalid values:\n  " + "\n  ".join(found))
    return cfg


def _control_characters(values: Any, path: str = "") -> list[str]:
    """Strings with newlines or other control characters, anywhere in the values.

    The schema's patterns reject them for Helm (Go's `$` matches only at the very end), but
    Python's `re.search` lets `$` match before a trailing newline, so the check is explicit here.
    """
    if isinstance(values, dict):
        return [p for k, v in values.items() for p in _control_characters(v, f"{path}{k}.")] + (
            [f"{path}{k}: control characters are not allowed in keys" for k in values if _has_control(str(k))]
        )
    if isinstance(values, list):
        return [p for i, v in enumerate(values) for p in _control_characters(v, f"{path}{i}.")]
    if isinstance(values, str) and _has_control(values):
        return [f"{path.rstrip('.')}: {values!r} contains control characters (newlines are not allowed)"]
    return []


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)
