"""The CRDs of the engines a run can use (Argo Workflows, JobSet), copied unchanged from their
projects (gzipped, licences beside them, sources in tests/k8s/crds/README.md), and a validator for
objects of them that checks what a current API server enforces on create:
- their openAPIV3Schema, strictly: `additionalProperties: false` on every object that lists its
  properties (the API server prunes unknown fields silently instead);
- their `x-kubernetes-validations` CEL rules, evaluated with cel-python (celpy) at every node of
  the object that the rule's schema node describes, with `self` bound to that node.
The v1.20 test API server runs no CEL rules (they came in 1.25), so this is how the tests see them."""

from __future__ import annotations

import copy
import functools
import gzip
import re
from pathlib import Path
from typing import Any

import yaml

CRDS = Path(__file__).resolve().parent / "crds"
ARGO_WORKFLOW = "argo-workflows-v4.1.2/argoproj.io_workflows.yaml.gz"
JOBSET = "jobset-main-08dfbdf/jobset.x-k8s.io_jobsets.yaml.gz"


def load(relative: str) -> dict[str, Any]:
    return copy.deepcopy(_parse(CRDS / relative))


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> dict[str, Any]:
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def for_old_servers(schema: Any) -> Any:
    """The CRD without its empty-string defaults, which the v1.20 test server reads as null and
    rejects (newer servers accept them; the objects rendered here never rely on them). A list-map key
    must have a default or be required there, so such a key becomes required (rendered items name it)."""
    if isinstance(schema, list):
        return [for_old_servers(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: for_old_servers(v) for k, v in schema.items() if not (k == "default" and v == "")}
    items = schema.get("items", {})
    keys = [
        k
        for k in schema.get("x-kubernetes-list-map-keys", [])
        if items.get("properties", {}).get(k, {}).get("default") == ""
    ]
    if keys:
        out["items"]["required"] = sorted({*items.get("required", []), *keys})
    return out


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: _strict(v) if k in ("properties", "items", "additionalProperties", "allOf", "anyOf", "oneOf") else v
        for k, v in schema.items()
    }
    if "properties" in out:
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


_validators: dict[tuple[str, str], Any] = {}


def _schema(crd: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """The openAPIV3Schema of the CRD version that `obj` is written in."""
    version = next(v for v in crd["spec"]["versions"] if obj["apiVersion"].endswith("/" + v["name"]))
    return version["schema"]["openAPIV3Schema"]


def problems(crd: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """Every way `obj` breaks the CRD on create: its schema (strictly: unknown fields too) and its
    CEL rules."""
    import jsonschema

    key = (crd["metadata"]["name"], obj["apiVersion"])
    if key not in _validators:
        _validators[key] = jsonschema.Draft7Validator(_strict(copy.deepcopy(_schema(crd, obj))))
    validator = _validators[key]
    found = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    return found + cel_problems(_schema(crd, obj), obj)


# A transition rule compares with the stored object (`oldSelf`); the API server runs it only on
# update, so a create (what a run does) skips it, as here.
TRANSITION_RULE = re.compile(r"\boldSelf\b")


def cel_problems(schema: dict[str, Any], node: Any, path: str = "") -> list[str]:
    """The `x-kubernetes-validations` rules that `node` breaks, at every depth: each rule of a schema
    node is evaluated with `self` bound to the part of the object that node describes (absent parts
    are not checked, as on the server). Transition rules are skipped (create)."""
    found = [
        f"{path or '<root>'}: {rule.get('message') or rule['rule']}"
        for rule in schema.get("x-kubernetes-validations", [])
        if not TRANSITION_RULE.search(rule["rule"]) and not _holds(rule["rule"], node)
    ]
    for branch in schema.get("allOf", []):
        found += cel_problems(branch, node, path)
    if isinstance(node, dict):
        properties, additional = schema.get("properties", {}), schema.get("additionalProperties")
        for key, value in node.items():
            if key in properties:
                found += cel_problems(properties[key], value, f"{path}.{key}")
            elif isinstance(additional, dict):
                found += cel_problems(additional, value, f"{path}[{key}]")
    elif isinstance(node, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(node):
            found += cel_problems(schema["items"], item, f"{path}[{index}]")
    return found


def _holds(rule: str, node: Any) -> bool:
    """Whether the CEL `rule` is true with `self` = `node`; an error or a non-boolean result fails it,
    as on the server."""
    import celpy

    try:
        result = _program(rule).evaluate({"self": celpy.json_to_cel(node)})
    except celpy.CELEvalError:
        return False
    return isinstance(result, celpy.celtypes.BoolType) and bool(result)


@functools.lru_cache(maxsize=None)
def _program(rule: str) -> Any:
    import celpy

    environment = celpy.Environment()
    return environment.program(environment.compile(rule))
