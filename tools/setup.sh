#!/usr/bin/env bash
# Idempotent setup of a fresh machine: system packages, .venv with the pinned Python packages and,
# with --test, the real servers and binaries the tests use (cached under ~/.cache, not in the repo).
# Re-running is cheap: every step checks first and does nothing when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test_servers=0
[[ "${1:-}" == "--test" ]] && with_test_servers=1

sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# espeak-ng speaks the synthetic Korean corpus and gives phonemes for PER; sox shapes voices.
apt_packages=(espeak-ng sox)
# etcd + Go toolchain (+ the fixed reflect2, see build_kube.sh) build and run a real kube-apiserver for the tests.
(( with_test_servers )) && apt_packages+=(etcd-server golang-go golang-github-modern-go-reflect2-dev rsync dpkg-dev openssl)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    echo "setup: installing system packages: ${missing[*]}"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The CPU torch wheel on disk is built for CPython 3.11.
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[[ -x .venv/bin/python ]] || { echo "setup: creating .venv"; "$python" -m venv .venv; }

stamp=.venv/.installed-$(cat pyproject.toml setup.py constraints.txt | sha256sum | cut -c1-16)
if [[ ! -f $stamp ]]; then
    echo "setup: installing Python packages into .venv (about 2 minutes the first time)"
    .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi

if (( with_test_servers )); then
    .venv/bin/python -m tools.testenv prepare
fi
echo "setup: ready"
