"""A real Kubernetes control plane on 127.0.0.1 for tests: etcd + kube-apiserver +
kube-controller-manager (v1.20, built by build_kube.sh), no kubelet and no scheduler.

    python -m tools.testenv.kube_server          # start, print the kubeconfig path, wait for Ctrl-C

    with KubeServer.start(workdir) as server:     # what tests/k8s/conftest.py does
        server.kubeconfig                          # admin (system:masters) kubeconfig

Pods stay Pending (nothing runs them); a test plays the kubelet by patching pod status, and the
job controller then marks Jobs Complete or Failed as it would on a real cluster. The controller
manager also runs the service-account token controller, so a ServiceAccount's token can be used
to check RBAC, plus namespace deletion, garbage collection, TTL-after-finished and PVC protection
(without it a deleted claim would wait forever for its finalizer).
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

CACHE = Path(os.environ.get("KIDS_ASR_CACHE", Path.home() / ".cache" / "ko-child-asr"))
# The build's name: a new suffix when build_kube.sh changes what it builds, so a cached old build is
# not used (r2: reflect2 1.0.2, without which the server crashes on custom objects).
KUBE_BIN = CACHE / "kube-v1.20.2-r2"
APISERVER = KUBE_BIN / "kube-apiserver"
CONTROLLER_MANAGER = KUBE_BIN / "kube-controller-manager"
TOKEN = "admin-token-for-tests"
CONTROLLERS = "job,serviceaccount,serviceaccount-token,namespace,garbagecollector,ttl-after-finished,pvc-protection"


def missing_binaries() -> list[str]:
    """What is not there to start a server (empty: ready)."""
    needed = {
        "etcd": shutil.which("etcd"),
        "openssl": shutil.which("openssl"),
        str(APISERVER): APISERVER.exists(),
        str(CONTROLLER_MANAGER): CONTROLLER_MANAGER.exists(),
    }
    return [name for name, found in needed.items() if not found]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, timeout_s: float, token: Optional[str] = None, proc: Optional[subprocess.Popen] = None) -> None:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(request, context=context, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before {url} answered")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not become ready in {timeout_s:.0f} s")
        time.sleep(0.2)


@dataclass
class KubeServer:
    workdir: Path
    port: int = 0
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(proc)
        return proc

    def _write_kubeconfig(self, path: Path) -> None:
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: test, cluster: {{server: '{self.url}', insecure-skip-tls-verify: true}}}}]\n"
            f"users: [{{name: admin, user: {{token: {TOKEN}}}}}]\n"
            "contexts: [{name: test, context: {cluster: test, user: admin, namespace: default}}]\n"
            "current-context: test\n",
            encoding="utf-8",
        )

    @classmethod
    def start(cls, workdir: Path) -> "KubeServer":
        missing = missing_binaries()
        if missing:
            raise FileNotFoundError(f"missing: {', '.join(missing)} (run: python -m tools.testenv prepare)")
        workdir.mkdir(parents=True, exist_ok=True)
        server = cls(workdir, port=_free_port())
        try:
            server._start()
        except BaseException:
            server.stop()
            raise
        return server

    def _start(self) -> None:
        w = self.workdir
        etcd_port, peer_port = _free_port(), _free_port()
        etcd = self._spawn(
            "etcd",
            [
                "etcd",
                "--data-dir",
                str(w / "etcd"),
                "--listen-client-urls",
                f"http://127.0.0.1:{etcd_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{etcd_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{peer_port}",
            ],
        )
        _wait(f"http://127.0.0.1:{etcd_port}/health", 30, proc=etcd)
        subprocess.run(["openssl", "genrsa", "-out", str(w / "sa.key"), "2048"], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "rsa", "-in", str(w / "sa.key"), "-pubout", "-out", str(w / "sa.pub")],
            check=True,
            capture_output=True,
        )
        (w / "tokens.csv").write_text(f"{TOKEN},admin,admin-uid,system:masters\n", encoding="utf-8")
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(APISERVER),
                "--bind-address=127.0.0.1",
                f"--secure-port={self.port}",
                "--insecure-port=0",
                "--advertise-address=127.0.0.1",
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                f"--cert-dir={w / 'certs'}",
                f"--token-auth-file={w / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={w / 'sa.pub'}",
                f"--service-account-signing-key-file={w / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.96.0.0/24",
            ],
        )
        _wait(f"{self.url}/readyz", 60, token=TOKEN, proc=apiserver)
        self._write_kubeconfig(self.kubeconfig)
        self._spawn(
            "kube-controller-manager",
            [
                str(CONTROLLER_MANAGER),
                f"--kubeconfig={self.kubeconfig}",
                f"--controllers={CONTROLLERS}",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
                f"--service-account-private-key-file={w / 'sa.key'}",
                f"--root-ca-file={w / 'certs' / 'apiserver.crt'}",
            ],
        )

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.processes.clear()

    def __enter__(self) -> "KubeServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    import tempfile

    with KubeServer.start(Path(tempfile.mkdtemp(prefix="kube-server-"))) as server:
        print(f"kube-apiserver {server.url}\nKUBECONFIG={server.kubeconfig}\n(Ctrl-C stops it)", flush=True)
        try:
            while all(p.poll() is None for p in server.processes):
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
