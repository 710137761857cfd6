"""The Helm chart's launcher: `helm install` stores the run's values in the ConfigMap `<run>-values`
and starts a small CPU Job running

    python -m trainer.pipeline.launch --values-configmap <run>-values

which builds the plan and every object of the run from those values with the code `tools/submit.py`
uses (values_io.from_values, plan.build_plan, the k8s/ templates) and creates them in its namespace:
the plan and status ConfigMaps, the orchestrator Job or the Argo Workflow with their RBAC, storage,
TensorBoard, NetworkPolicies. So the chart describes no object of the run itself, and no object
is described twice. Each object but the storage claim is owned by the values ConfigMap: `helm
uninstall` deletes the ConfigMap and Kubernetes' garbage collector the run (the claim is kept: it
holds the checkpoints).

Values the chart's schema lets through but the Python checks refuse (cross-field problems, trainer
arguments the trainer rejects) end the launcher with one `error:` line and exit 78, which fails
its Job at once. A rerun (a restarted pod) keeps what is already there and creates the rest.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from trainer import exit_codes
from trainer.exit_codes import ConfigError
from trainer.pipeline import config as C
from trainer.pipeline import render, values_io
from trainer.pipeline.orchestrator import ChainPlan, plan_problems

# The pod's own namespace, as its ServiceAccount token's mount tells it.
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
VALUES_KEY = "values.json"  # the values ConfigMap's one key: the release's values, runName filled in
_log = logging.getLogger("launch")


def run_objects(cfg: C.PipelineConfig, namespace: str) -> list[dict[str, Any]]:
    """Every object of the run, the plan's trainer arguments checked by the trainer's own parser."""
    objects = render.render_jinja(cfg, namespace)
    problems = plan_problems(ChainPlan.from_data(render.plan_configmap(objects)["data"]))
    if problems:
        raise ConfigError("the trainer would reject the plan:\n  " + "\n  ".join(problems))
    return objects


def values_config(values_configmap: dict[str, Any]) -> C.PipelineConfig:
    """The run's config from the chart's values ConfigMap (its name and data)."""
    name = values_configmap["metadata"]["name"]
    return values_io.from_values(json.loads(values_configmap["data"][VALUES_KEY]), source=f"ConfigMap {name}")


def launch(api: Any, namespace: str, configmap: str) -> int:
    from kubernetes import client

    from trainer.pipeline.cluster import Cluster

    stored = client.CoreV1Api(api).read_namespaced_config_map(configmap, namespace)
    cfg = values_config({"metadata": {"name": configmap}, "data": stored.data or {}})
    objects = run_objects(cfg, namespace)
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": configmap, "uid": stored.metadata.uid}
    Cluster(api, namespace, report=_log.info).ensure(objects, owner)
    return exit_codes.OK


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    parser = exit_codes.ArgumentParser(prog="python -m trainer.pipeline.launch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--values-configmap", required=True, help="the chart's ConfigMap holding the run's values")
    parser.add_argument("--namespace", help="default: the pod's own")
    args = parser.parse_args(argv)

    def run() -> int:
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException as exc:
            raise ConfigError(f"no in-cluster account ({exc}): this runs as the chart's launcher Job") from None
        namespace = args.namespace or NAMESPACE_FILE.read_text(encoding="utf-8").strip()
        return launch(client.ApiClient(), namespace, args.values_configmap)

    return exit_codes.run_main(run)


if __name__ == "__main__":
    sys.exit(main())
