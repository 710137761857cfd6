"""The CRDs of the engines a run can use (Argo Workflows, JobSet), copied unchanged from their
projects (gzipped, licences beside them, sources in tests/k8s/crds/README.md), and a strict
jsonschema validator for objects of them: their openAPIV3Schema with `additionalProperties: false`
on every object that lists its properties (the API server prunes unknown fields silently instead)."""

from __future__ import annotations

import copy
import functools
import gzip
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


def problems(crd: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """Every way `obj` breaks the CRD's schema (strictly: unknown fields too)."""
    import jsonschema

    key = (crd["metadata"]["name"], obj["apiVersion"])
    if key not in _validators:
        version = next(v for v in crd["spec"]["versions"] if obj["apiVersion"].endswith("/" + v["name"]))
        _validators[key] = jsonschema.Draft7Validator(_strict(copy.deepcopy(version["schema"]["openAPIV3Schema"])))
    validator = _validators[key]
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
