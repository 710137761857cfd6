"""Fixtures for the Kubernetes tests: the real helm binaries, sample run configs, rendered objects,
and a real control plane (etcd + kube-apiserver + controller-manager v1.20) on 127.0.0.1.

The binaries live outside the repo (`python -m tools.testenv prepare`); tests that need one skip
with that instruction when it is absent.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tools.testenv.kube_server import KubeServer, missing_binaries
from trainer.pipeline import config as C
from trainer.pipeline import values_io

from .helpers import PREPARE_HINT, ROUTES, SAMPLES, helm_path, render_by


@pytest.fixture(params=sorted(SAMPLES))
def sample(request: pytest.FixtureRequest) -> tuple[str, C.PipelineConfig]:
    return request.param, values_io.from_values(SAMPLES[request.param], source=request.param)


@pytest.fixture(params=["v3", "v4"])
def helm(request: pytest.FixtureRequest) -> Path:
    return helm_path(request.param)


@pytest.fixture
def helm3() -> Path:
    return helm_path("v3")


@pytest.fixture(params=ROUTES)
def route(request: pytest.FixtureRequest) -> str:
    """Each route a run's objects take (helpers.render_by)."""
    return request.param


@pytest.fixture
def renderer(route: str) -> Any:
    """Renders run values by each route: renderer(values, namespace="asr") -> objects."""

    def rendered(values: dict[str, Any], namespace: str = "asr") -> list[dict[str, Any]]:
        return render_by(route, values_io.from_values(values), namespace)

    return rendered


@pytest.fixture
def api(kube: KubeServer) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kube.kubeconfig))


@pytest.fixture
def namespace(api: Any) -> str:
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> KubeServer:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"no real API server: missing {', '.join(missing)}; {PREPARE_HINT}")
    with KubeServer.start(tmp_path_factory.mktemp("kube")) as server:
        yield server
