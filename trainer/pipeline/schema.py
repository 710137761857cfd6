"""The Helm chart's `values.schema.json` and `values.yaml`, generated from `PipelineConfig`, and its
`constants.json` (trainer/pipeline/constants.py's template values).

    python -m trainer.pipeline.schema --write     # regenerate charts/ko-child-asr/{values.*,constants.json}

`tests/pipeline/test_schema_files.py` fails when the committed files differ from what this produces, so
the dataclasses stay the single place where a setting is named, typed, documented and bounded.
Every object in the schema has `additionalProperties: false`: Helm does not notice a misspelled
`.Values.x` otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any, Literal

from trainer import exit_codes
from trainer.config import MAX_PATH, PATH_TEXT, TrainConfig
from trainer.pipeline import config as C
from trainer.pipeline.constants import template_values

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "ko-child-asr"
# Free-form strings may not carry control characters (newlines are how YAML injection starts).
PLAIN_STRING = f"^{PATH_TEXT}$"

TOLERATION = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "key": {"type": "string", "pattern": f"({C.LABEL_KEY})|^$"},
        "operator": {"enum": ["Exists", "Equal"]},
        "value": {"type": "string", "pattern": C.LABEL_VALUE},
        "effect": {"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute", ""]},
        "tolerationSeconds": {"type": "integer", "minimum": 0},
    },
}
AFFINITY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {k: {"type": "object"} for k in ("nodeAffinity", "podAffinity", "podAntiAffinity")},
}
NODE_SELECTOR = {
    "type": "object",
    "propertyNames": {"pattern": C.LABEL_KEY, "maxLength": 316},
    "additionalProperties": {"type": "string", "pattern": C.LABEL_VALUE},
}


def _type_schema(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        return {"type": "string", "pattern": PLAIN_STRING}
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin is list:
        return {"type": "array", "items": _type_schema(typing.get_args(tp)[0])}
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_schema(args[0])
    raise TypeError(f"no JSON schema for {tp!r}")


# TrainConfig's field bounds (trainer.config.BOUNDS) as JSON-schema keywords.
JSON_BOUNDS = {"above": "exclusiveMinimum", "at_least": "minimum", "below": "exclusiveMaximum", "at_most": "maximum"}


def _train_overrides_schema() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainConfig)
    props = {}
    for f in C.train_override_fields():
        props[f.name] = {**_type_schema(hints[f.name]), "description": f.metadata.get("help", "")}
        if "choices" in f.metadata:
            props[f.name]["enum"] = list(f.metadata["choices"])
        if props[f.name].get("type") == "number":  # YAML writes 3 for 3.0
            props[f.name]["type"] = ["number", "integer"]
        bounds = {JSON_BOUNDS[k]: v for k, v in f.metadata.items() if k in JSON_BOUNDS}
        target = props[f.name]["items"] if "items" in props[f.name] else props[f.name]
        target.update(bounds)
        if target.get("type") == "string":  # trainer.config.check_bounds' text rules
            target["pattern"] = f"^{f.metadata.get('pattern', PATH_TEXT)}$"
            target["maxLength"] = f.metadata.get("max_length", MAX_PATH)
    return {"type": "object", "additionalProperties": False, "properties": props}


def _field_schema(cls: type, f: dataclasses.Field, tp: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(tp):
        out = dataclass_schema(tp)
    elif f.name == "train_overrides":
        out = _train_overrides_schema()
    elif f.name == "node_selector":
        out = dict(NODE_SELECTOR)
    elif f.name == "tolerations":
        out = {"type": "array", "items": TOLERATION}
    elif f.name == "affinity":
        out = dict(AFFINITY)
    else:
        out = _type_schema(tp)
    extra = dict(f.metadata.get("schema", {}))
    if "items" in extra:
        out["items"] = {**out.get("items", {}), **extra.pop("items")}
    if "pattern" in extra and out.get("type") == "string":
        out["pattern"] = extra.pop("pattern")
    out.update(extra)
    out["description"] = f.metadata.get("help", "")
    return out


def dataclass_schema(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props = {C.camel(f.name): _field_schema(cls, f, hints[f.name]) for f in dataclasses.fields(cls)}
    return {"type": "object", "additionalProperties": False, "properties": props}


def values_schema() -> dict[str, Any]:
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "ko-child-asr values (generated from trainer/pipeline/config.py)",
        **dataclass_schema(C.PipelineConfig),
    }


# What each pattern means, for error messages a person can act on.
PATTERN_NAMES = {
    C.DNS_LABEL: "a DNS-1123 label: lowercase letters, digits and '-', starting and ending alphanumeric",
    C.QUANTITY: "a Kubernetes quantity such as 500m, 8, 16Gi",
    C.LABEL_KEY: "a label key such as nvidia.com/gpu.product",
    C.LABEL_VALUE: "a label value (up to 63 of A-Z a-z 0-9 - _ .)",
    C.IMAGE: "an image repository such as registry.example.com/team/ko-child-asr",
    C.S3_URI: "an s3://bucket/prefix URI (without a trailing '/')",
    C.REL_PATH: "a relative path of plain names (no '..', no leading '/')",
    C.MODEL: "a hub id or a relative path of plain names",
    C.PRESET: "a preset name (lowercase letters, digits, '-')",
    C.HUB_DATASET: "a Hub dataset id such as owner/name",
    C.HF_NAME: "a split or configuration name (letters, digits, '_', '.', '-')",
    PLAIN_STRING: "text without control characters or newlines",
}


def _message(err: Any) -> str:
    if err.validator == "pattern":
        pattern = err.validator_value.removeprefix("(").removesuffix(")|^$")
        return f"{err.instance!r} is not {PATTERN_NAMES.get(pattern, 'allowed here')}"
    return err.message


def errors(values: dict[str, Any]) -> list[str]:
    """Schema violations as 'path.to.value: problem' lines (the same schema Helm enforces)."""
    import jsonschema

    validator = jsonschema.Draft7Validator(values_schema())
    found = []
    for err in sorted(validator.iter_errors(values), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join(map(str, err.absolute_path)) or "(top level)"
        found.append(f"{path}: {_message(err)}")
    return found


# ----------------------------------------------------------------------------- values.yaml


def _values_lines(obj: Any, prefix: str, indent: str) -> list[str]:
    lines = []
    for f in dataclasses.fields(obj):
        key, value, help = C.camel(f.name), getattr(obj, f.name), f.metadata.get("help", "")
        path = f"{prefix}{key}"
        if dataclasses.is_dataclass(value):
            lines += [f"{indent}## {help}", f"{indent}{key}:", *_values_lines(value, path + ".", indent + "  ")]
        else:
            lines += [f"{indent}## @param {path} {help}", f"{indent}{key}: {json.dumps(value)}"]
    return lines


def values_yaml() -> str:
    header = [
        "## Values of the ko-child-asr chart: one release per training run.",
        "## Generated from trainer/pipeline/config.py by `python -m trainer.pipeline.schema --write`;",
        "## edit the dataclasses, not this file. `tools/submit.py` takes the same settings as flags.",
        "",
    ]
    return "\n".join(header + _values_lines(C.PipelineConfig(), "", "")) + "\n"


def constants_json() -> str:
    """The chart's constants.json: what its templates share with the k8s/ ones (uid, exit codes)."""
    return json.dumps(template_values(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = exit_codes.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write", action="store_true", help=f"write values.yaml, values.schema.json and constants.json in {CHART_DIR}"
    )
    args = parser.parse_args(argv)
    schema_text = json.dumps(values_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.write:
        (CHART_DIR / "values.schema.json").write_text(schema_text, encoding="utf-8")
        (CHART_DIR / "values.yaml").write_text(values_yaml(), encoding="utf-8")
        (CHART_DIR / "constants.json").write_text(constants_json(), encoding="utf-8")
    else:
        sys.stdout.write(schema_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
