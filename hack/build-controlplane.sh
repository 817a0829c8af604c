#!/usr/bin/env bash
# Builds the control-plane binaries the tests and `helmops dev` run: kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl (from the k8s.io/kubernetes module, its staging
# replace directives pointed at the published k8s.io/* modules), etcd (hack/etcd) and kwok (the
# simulated nodes, with its stage file written from the stages its module ships). Everything comes
# from the Go module proxy; nothing is downloaded from elsewhere. Binaries that already exist in
# bin/ are kept, so a warm machine pays nothing.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${BIN_DIR:-$root/bin}"
mkdir -p "$bin"

staging_version="v0.${KUBE_VERSION#v1.}"

need=()
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  [ -x "$bin/$b" ] || need+=("$b")
done

if [ "${#need[@]}" -gt 0 ]; then
  echo "Building ${need[*]} $KUBE_VERSION into $bin (first time only, several minutes)"
  src="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$src" ] || { echo "could not download k8s.io/kubernetes@$KUBE_VERSION" >&2; exit 1; }
  work="$bin/.build/kubernetes-$KUBE_VERSION"
  if [ ! -f "$work/.prepared" ]; then
    rm -rf "$work"
    mkdir -p "$(dirname "$work")"
    cp -r "$src" "$work"
    chmod -R u+w "$work"
    # The module zip leaves out staging/ (each is a module of its own): use the published ones.
    sed -i -E "s#^([[:space:]]*k8s\.io/[A-Za-z0-9._-]+) => \./staging/src/k8s\.io/[A-Za-z0-9._-]+#\1 => \1 $staging_version#" "$work/go.mod"
    touch "$work/.prepared"
  fi
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for b in "${need[@]}"; do
    start=$(date +%s)
    (cd "$work" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/$b.tmp" "./cmd/$b")
    mv "$bin/$b.tmp" "$bin/$b"
    echo "  built $b in $(( $(date +%s) - start ))s"
  done
fi

if [ ! -x "$bin/etcd" ]; then
  echo "Building etcd into $bin"
  start=$(date +%s)
  (cd "$root/hack/etcd" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp" .)
  mv "$bin/etcd.tmp" "$bin/etcd"
  echo "  built etcd in $(( $(date +%s) - start ))s"
fi

KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
if [ ! -x "$bin/kwok" ]; then
  echo "Building kwok $KWOK_VERSION into $bin"
  start=$(date +%s)
  (cd "$root" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$bin/.build/kwok" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
  mv "$bin/.build/kwok/kwok" "$bin/kwok"
  echo "  built kwok in $(( $(date +%s) - start ))s"
fi

# kwok needs stage definitions: node initialisation and heartbeat, the fast pod lifecycle, and the
# chaos stages that make containers fail on demand (docs/testing.md).
if [ ! -s "$bin/kwok-stages.yaml" ]; then
  kwok_src="$(cd "$root" && GOWORK=off go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$kwok_src" ] || { echo "could not download sigs.k8s.io/kwok@$KWOK_VERSION" >&2; exit 1; }
  {
    for f in "$kwok_src"/kustomize/stage/node/fast/node-initialize.yaml \
             "$kwok_src"/kustomize/stage/node/heartbeat/node-heartbeat.yaml \
             "$kwok_src"/kustomize/stage/pod/fast/*.yaml \
             "$kwok_src"/kustomize/stage/pod/chaos/*.yaml; do
      case "$f" in *kustomization.yaml) continue ;; esac
      echo "---"
      cat "$f"
    done
  } > "$bin/kwok-stages.yaml.tmp"
  mv "$bin/kwok-stages.yaml.tmp" "$bin/kwok-stages.yaml"
fi
