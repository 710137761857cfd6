#!/usr/bin/env bash
# Build kube-apiserver and kube-controller-manager v1.20.2 from Debian bookworm's `kubernetes`
# source package, for the tests in tests/k8s/ that need a real API server.
#
#   tools/testenv/build_kube.sh DEST   # ~8 min of CPU once; a no-op when DEST holds the binaries
#
# `python -m tools.testenv prepare` runs it with DEST = kube_server.KUBE_BIN, the one place that names
# the build (outside the repo, under ~/.cache/ko-child-asr/).
# Why a source build: no binary of a real apiserver can be downloaded here; Debian's source
# package vendors every Go dependency, so it builds offline with GOPROXY=off. A plain `go build`
# fails: the make route runs the code generators first (as debian/rules does).
# The vendored github.com/modern-go/reflect2 1.0.1 is replaced by Debian's 1.0.2
# (golang-github-modern-go-reflect2-dev): built with Go >= 1.18, 1.0.1 crashes the apiserver
# (SIGSEGV in its map iteration, via json-iterator) on the first custom object it serves.
set -euo pipefail

DEST="${1:?usage: build_kube.sh DEST (python -m tools.testenv prepare passes it)}"
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
if [[ -x "$DEST/kube-apiserver" && -x "$DEST/kube-controller-manager" ]]; then
    echo "kube binaries cached in $DEST"
    exit 0
fi
if [[ ! -d "$REFLECT2" ]]; then
    echo "missing $REFLECT2: apt-get install golang-github-modern-go-reflect2-dev (tools/setup.sh --test)" >&2
    exit 1
fi

CACHE=$(dirname "$DEST")
WORK="$CACHE/kube-build"
mkdir -p "$WORK/lists/partial" "$DEST"
cd "$WORK"

# A private deb-src list so the system's apt configuration stays untouched.
cat > sources.list <<'LIST'
deb-src http://deb.debian.org/debian bookworm main
LIST
APT_OPTS=(-o Dir::Etc::SourceList="$WORK/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o Dir::State::Lists="$WORK/lists")
if ! ls kubernetes_*.dsc >/dev/null 2>&1; then
    apt-get "${APT_OPTS[@]}" update -q
    apt-get "${APT_OPTS[@]}" source --download-only kubernetes
fi
SRC_DIR=$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
if [[ -z "$SRC_DIR" ]]; then
    dpkg-source -x kubernetes_*.dsc
    SRC_DIR=$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
fi

export GOPATH="$WORK/gopath" GOCACHE="$WORK/gocache" GOPROXY=off GO111MODULE=off GOFLAGS=-mod=vendor
export CGO_ENABLED=0 KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_TREE_STATE=clean
mkdir -p "$GOPATH/src/k8s.io"
ln -sfn "$WORK/${SRC_DIR#./}" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"
# GO111MODULE=off (hack/lib/init.sh): the vendor tree is read as a GOPATH, modules.txt is not consulted.
rm -rf vendor/github.com/modern-go/reflect2
cp -r "$REFLECT2" vendor/github.com/modern-go/reflect2
make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"
install -m 0755 _output/bin/kube-apiserver _output/bin/kube-controller-manager "$DEST/"
cd "$CACHE" && chmod -R u+w "$WORK" && rm -rf "$WORK"  # 2 GB of sources and Go cache
echo "built kube-apiserver and kube-controller-manager into $DEST"
