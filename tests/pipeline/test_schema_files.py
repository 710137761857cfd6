"""The chart's values.yaml and values.schema.json are what trainer/pipeline/schema.py generates
from PipelineConfig: a setting is named, typed and documented in one place; its constants.json is
trainer/pipeline/constants.py's."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

from trainer import exit_codes
from trainer.config import parse_config
from trainer.pipeline import schema
from trainer.pipeline.config import PipelineConfig
from trainer.pipeline.values_io import to_values

REGENERATE = "regenerate with: python -m trainer.pipeline.schema --write"


def test_committed_schema_is_generated() -> None:
    committed = json.loads((schema.CHART_DIR / "values.schema.json").read_text(encoding="utf-8"))
    assert committed == schema.values_schema(), REGENERATE


def test_committed_values_are_generated_and_equal_the_defaults() -> None:
    text = (schema.CHART_DIR / "values.yaml").read_text(encoding="utf-8")
    assert text == schema.values_yaml(), REGENERATE
    assert parse_config(text, "values.yaml") == to_values(PipelineConfig())


def test_committed_constants_are_generated() -> None:
    """The chart's templates take the uid and exit codes from trainer/pipeline/constants.py through it."""
    text = (schema.CHART_DIR / "constants.json").read_text(encoding="utf-8")
    assert text == schema.constants_json(), REGENERATE
    assert json.loads(text)["config_error"] == exit_codes.CONFIG_ERROR


def _nodes(node: Any, keep: Callable[[dict], bool], path: str = "") -> Iterator[tuple[str, dict]]:
    """Every schema node (with its JSON pointer) that `keep` accepts, depth first."""
    if isinstance(node, dict):
        if keep(node):
            yield path, node
        for key, value in node.items():
            yield from _nodes(value, keep, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _nodes(value, keep, f"{path}/{i}")


def _objects(node: Any) -> Iterator[tuple[str, dict]]:
    return _nodes(node, lambda n: n.get("type") == "object" or "properties" in n)


def test_every_fixed_object_rejects_unknown_keys() -> None:
    for path, node in _objects(schema.values_schema()):
        if "properties" in node:  # free-form maps (nodeSelector) constrain keys by pattern instead
            assert node.get("additionalProperties") is False, path


def test_every_value_is_documented_with_a_param_line() -> None:
    text = schema.values_yaml()

    def leaves(values: dict, prefix: str = "") -> Iterator[str]:
        for key, value in values.items():
            if isinstance(value, dict) and value and key not in ("trainOverrides", "nodeSelector", "affinity"):
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    for leaf in leaves(to_values(PipelineConfig())):
        assert f"## @param {leaf} " in text, leaf


def test_every_string_value_of_the_chart_has_a_pattern_and_a_length_limit() -> None:
    strings = list(_nodes(schema.values_schema(), lambda n: n.get("type") == "string"))
    assert len(strings) > 15
    for path, node in strings:
        assert "pattern" in node, path
        # Free-form maps (nodeSelector, tolerations) bound their values by the label pattern's {0,61}.
        assert "maxLength" in node or "{0,61}" in node["pattern"] or "{0,127}" in node["pattern"], path
