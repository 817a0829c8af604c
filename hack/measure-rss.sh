#!/usr/bin/env bash
# Whole-process time and peak RSS (/usr/bin/time -v) of:
#   - helmops resolve on a generated 23 MB, 18,000-entry index served over loopback, and beside it
#     in the same run Helm's SDK doing the same (HTTP getter, repo.LoadIndexFile, IndexFile.Get);
#   - helmops version;
#   - an idle helmops controller (against a local kube-apiserver, after IDLE seconds).
# Usage: hack/measure-rss.sh [runs]   (RUNS defaults to 5; set BIN to use prebuilt binaries,
# SKIP_CONTROLLER=1 to skip the controller, which needs bin/kube-apiserver and bin/etcd,
# DROP_CACHES=1 to drop the page cache before each measurement, BEFORE=path/to/helmops of
# another build to measure its resolve too, alternating with this one's, SKIP_HELM=1 to leave
# Helm out)
#
# Peak RSS counts the binary's own file pages as the kernel maps them, and that depends on the
# page cache: a freshly written binary (large folios) peaked 30 MB higher in `helmops version` than
# the same file read back after dropping the caches. DROP_CACHES=1 (as root) measures from the
# same state every time; the idle controller also reports its anonymous and file pages apart.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
IDLE=${IDLE:-20}
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$OUT"' EXIT

BIN=${BIN:-}
if [[ -z "$BIN" ]]; then
  BIN=$OUT/bin
  CGO_ENABLED=0 go build -o "$BIN/helmops" ./cmd/helmops
  CGO_ENABLED=0 go build -o "$BIN/resolvebench" ./hack/resolvebench
fi

# measure LABEL CMD...: one line with wall time and peak RSS
measure() {
  local label=$1; shift
  if [[ -n "${DROP_CACHES:-}" ]]; then sync; echo 1 >/proc/sys/vm/drop_caches; fi
  /usr/bin/time -v "$@" >"$OUT/stdout" 2>"$OUT/time" || { cat "$OUT/stdout" "$OUT/time" >&2; return 1; }
  local wall cpu rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$OUT/time")
  cpu=$(awk -F': ' '/User time|System time/{s+=$2} END {printf "%.2f", s}' "$OUT/time")
  rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$OUT/time")
  printf '%-38s wall %-8s cpu %-5s peak RSS %6.1f MB\n' "$label" "$wall" "$cpu" "$(echo "$rss/1024" | bc -l)"
}

"$BIN/resolvebench" serve >"$OUT/serve" &
for _ in $(seq 600); do [[ -s "$OUT/serve" ]] && break; sleep 0.2; done
read -r URL SIZE <"$OUT/serve" || { echo "the index server did not start in 120 s" >&2; exit 1; }
echo "index: $URL/index.yaml, $SIZE bytes; machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# Into a file, not a pipe into head: head exiting early would end the script with SIGPIPE.
"$BIN/helmops" resolve --repo "$URL" --chart chart-075 --version 1.x >"$OUT/first"
head -3 "$OUT/first"

for i in $(seq "$RUNS"); do
  measure "helmops resolve (run $i)" "$BIN/helmops" resolve --repo "$URL" --chart chart-075 --version 1.x
  if [[ -n "${BEFORE:-}" ]]; then
    measure "helmops resolve, before (run $i)" "$BEFORE" resolve --repo "$URL" --chart chart-075 --version 1.x
  fi
  if [[ -z "${SKIP_HELM:-}" ]]; then
    measure "helm LoadIndexFile+Get (run $i)" "$BIN/resolvebench" helm -repo "$URL" -chart chart-075 -version 1.x
  fi
done
echo "load after the resolve runs: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$RUNS"); do
  measure "helmops version (run $i)" "$BIN/helmops" version
done

if [[ -z "${SKIP_CONTROLLER:-}" ]]; then
  "$BIN/resolvebench" controlplane -dir "$OUT/cp" >"$OUT/cp.out" 2>"$OUT/cp.err" &
  for _ in $(seq 300); do [[ -s "$OUT/cp.out" ]] && break; sleep 0.5; done
  [[ -s "$OUT/cp.out" ]] || { cat "$OUT/cp.err" >&2; exit 1; }
  KUBECONFIG_FILE=$(cat "$OUT/cp.out")
  /usr/bin/time -v "$BIN/helmops" controller --kubeconfig "$KUBECONFIG_FILE" \
    --metrics-bind-address 0 --health-probe-bind-address 0 --webhook-bind-address 0 >"$OUT/ctl.log" 2>"$OUT/ctl.time" &
  CTL=$!
  sleep "$IDLE"
  PID=$(pgrep -P "$CTL" -x helmops || true)
  [[ -n "$PID" ]] && echo "idle helmops controller after ${IDLE}s: RSS $(awk '/VmRSS/{print $2/1024}' /proc/"$PID"/status) MB (anonymous $(awk '/RssAnon/{print $2/1024}' /proc/"$PID"/status) MB, file $(awk '/RssFile/{print $2/1024}' /proc/"$PID"/status) MB), peak $(awk '/VmHWM/{print $2/1024}' /proc/"$PID"/status) MB"
  kill -TERM "${PID:-$CTL}"
  wait "$CTL" || true
  echo "idle helmops controller (whole run): peak RSS $(awk -F': ' '/Maximum resident set size/{print $2/1024}' "$OUT/ctl.time") MB"
fi
