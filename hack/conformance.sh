#!/usr/bin/env bash
# make conformance: Kubernetes' own node conformance specs (the upstream e2e binary, nobody here wrote them) against
# an edge node of the stack of instance $EF_INSTANCE (docs/conformance.md).
#   1. builds the e2e binary, agnhost, nnp and ginkgo from the pinned Kubernetes module (hack/build-binaries.sh
#      conformance; cached outside the repo) and the test images the specs run (hack/conformance-images.sh)
#   2. brings the stack up (hack/up.sh: idempotent, seconds when it runs already)
#   3. imports the test images into the first site's containerd (hack/site.sh import), mirrors registry.k8s.io for
#      it with a local registry holding agnhost (the one spec that pulls for real), and lifts that node's
#      NoSchedule/NoExecute taints (the edge taint keeps ordinary pods off edge nodes; the suite's pods carry no
#      toleration); they are put back when the run ends, however it ends
#   4. runs the selection of e2e/conformance/selection.json (focus, skip; notApplicable specs are not run, nor are
#      notSelected ones, too slow for the budget, unless EF_CONFORMANCE_ALL=1) with
#      ginkgo in $EF_CONFORMANCE_PROCS parallel processes, printing progress every 30 s
#   5. writes bench/results/conformance-<UTC time>.json (every selected spec: state, duration, failure message or
#      the reason it is not applicable) and .md (the table), prints the table and `Specs: N passed, N failed, N not
#      applicable`; exits non-zero when a selected spec failed or did not run
#
# Usage: hack/conformance.sh [--clean] [--focus REGEX]
#   --clean         remove the instance's stack afterwards (hack/clean.sh; make test's suite, instance conf)
#   --focus REGEX   run only the selected specs that also match REGEX (a quick look at one spec)
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$EF_ROOT"
procs=${EF_CONFORMANCE_PROCS:-5}
[[ "$procs" =~ ^[1-9][0-9]?$ ]] || ef_die "EF_CONFORMANCE_PROCS must be a number from 1 to 99, got '$procs'"
clean=0 extra_focus=""
while [ $# -gt 0 ]; do
  case "$1" in
    --clean) clean=1 ;;
    --focus) [ $# -ge 2 ] || ef_die "--focus needs a regular expression"; extra_focus=$2; shift ;;
    *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  shift
done
selection=$EF_ROOT/e2e/conformance/selection.json
T0=$SECONDS
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
work=$EF_STATE/conformance/$stamp
mkdir -p "$work" "$EF_ROOT/bench/results"

ef_log "[1/5] the e2e binary, agnhost and the test images (cached after the first build)"
"$EF_ROOT/hack/build-binaries.sh" conformance
"$EF_ROOT/hack/conformance-images.sh"

ef_log "[2/5] the stack (instance $EF_INSTANCE)"
restore=() progress=""
finish() {
  local rc=$? t
  [ -z "$progress" ] || { kill "$progress" 2>/dev/null; wait "$progress" 2>/dev/null || true; }
  for t in "${restore[@]}"; do
    kubectl --kubeconfig "$EF_KUBECONFIG" taint nodes "$node" "$t" --overwrite >/dev/null 2>&1 &&
      echo "[conformance] put back the taint $t on $node" || echo "[conformance] could not put back the taint $t on $node" >&2
  done
  [ -z "${mirror:-}" ] || rm -rf "$mirror"
  ef_running conformance-registry && ef_stop conformance-registry
  if [ "$clean" = 1 ]; then "$EF_ROOT/hack/clean.sh" >/dev/null 2>&1 && echo "[conformance] removed the $EF_INSTANCE stack" || true; fi
  exit $rc
}
node=""
trap finish EXIT
"$EF_ROOT/hack/up.sh" > "$work/up.log" 2>&1 || { tail -30 "$work/up.log" >&2; ef_die "hack/up.sh failed (log: $work/up.log)"; }
ef_use_node
node=$(set -- $EF_SITES; echo "$1")
k() { kubectl --kubeconfig "$EF_KUBECONFIG" "$@"; }

ef_log "[3/5] images into $node's containerd, a registry mirror for registry.k8s.io; $node's taints lifted for the run"
"$EF_ROOT/hack/site.sh" import "$node" "$EF_CACHE/images/conformance"
# "should be able to pull image" pulls agnhost with imagePullPolicy Always from registry.k8s.io, which this machine
# cannot reach. An edge site without the internet pulls through a registry mirror, as here: a real registry
# (hack/registry.sh) on the site's host address holding agnhost, named the mirror of registry.k8s.io in the site's
# containerd registry config (hosts.toml; containerd reads it on every pull, no restart). Removed after the run.
reg_name=conformance-registry reg_ip=$(ef_site_host_ip "$node") reg_port=$((EF_PORT_BASE + 560))
mirror=$(ef_site_state "$node")/containerd/certs.d/registry.k8s.io
ef_running "$reg_name" || "$EF_ROOT/hack/registry.sh" start "$reg_name" "$reg_ip" "$reg_port" "$EF_STATE/conformance/registry" >/dev/null
"$EF_ROOT/hack/registry.sh" push "$EF_CACHE/images/conformance/agnhost.tar" registry.k8s.io/e2e-test-images/agnhost:2.53 \
  "$reg_ip:$reg_port/e2e-test-images/agnhost:2.53"
mkdir -p "$mirror"
printf 'server = "https://registry.k8s.io"\n\n[host."http://%s:%s"]\n  capabilities = ["pull", "resolve"]\n' "$reg_ip" "$reg_port" > "$mirror/hosts.toml"
echo "[conformance] registry.k8s.io mirrored at http://$reg_ip:$reg_port for $node (agnhost:2.53)"
while read -r t; do
  [ -n "$t" ] || continue
  restore+=("$t")
  k taint nodes "$node" "${t%%=*}:${t##*:}-" >/dev/null
  echo "[conformance] lifted $t from $node"
done < <(k get node "$node" -o json | jq -r '.spec.taints // [] | .[] | select(.effect == "NoSchedule" or .effect == "NoExecute")
  | select(.key | startswith("node.kubernetes.io/") | not) | "\(.key)\(if .value then "=" + .value else "" end):\(.effect)"')
# The other edge nodes keep their taints: the suite waits for every node to be schedulable unless told a taint
# does not block.
blocking=$(k get nodes -o json | jq -r '[.items[].spec.taints // [] | .[] | .key | select(startswith("node.kubernetes.io/") | not)] | unique | join(",")')

ef_log "[4/5] the upstream specs ($procs parallel processes)"
# Ginkgo reads focus and skip as RE2; a notApplicable or notSelected spec is skipped by its full name, every
# metacharacter escaped. spec_patterns FILE: one such pattern per entry of FILE (a JSON list of {spec, ...}).
spec_patterns() { jq -r '.[].spec' "$1" | sed 's/[][\\.+*?(){}|^$]/\\&/g'; }
mapfile -t focus < <(jq -r '.focus[]' "$selection")
mapfile -t skip < <(jq -r '.skip[]' "$selection")
# A notApplicable entry with ifMissing applies only where the probe of that name fails on this machine.
probe() {
  case "$1" in
    dummy-link) # the kernel can make a dummy link (tried in a namespace of its own, removed at once)
      local n=efprobe-$$ ok=1
      ip netns add "$n" 2>/dev/null || return 1
      ip -n "$n" link add efdummy0 type dummy 2>/dev/null || ok=0
      ip netns del "$n" 2>/dev/null; [ $ok = 1 ] ;;
    *) ef_die "selection.json names an unknown probe '$1'" ;;
  esac
}
na_file=$work/not-applicable.json
jq -c '.notApplicable[]' "$selection" | while read -r e; do
  m=$(jq -r '.ifMissing // ""' <<<"$e")
  if [ -n "$m" ] && probe "$m"; then echo "[conformance] $m: present here, so this spec runs: $(jq -r .spec <<<"$e")" >&2; continue; fi
  echo "$e"
done | jq -s . > "$na_file"
mapfile -t na < <(spec_patterns "$na_file")
args=(--kubeconfig="$EF_KUBECONFIG" --provider=skeleton --report-dir="$work" --non-blocking-taints="${blocking:-none}"
  --ginkgo.no-color)
for f in "${focus[@]}"; do args+=(--ginkgo.focus="$f"); done
for s in "${skip[@]}"; do args+=(--ginkgo.skip="$s"); done
"$EF_BIN/e2e.test" "${args[@]}" --ginkgo.dry-run --ginkgo.json-report="$work/dry-run.json" > "$work/dry-run.log" 2>&1 ||
  { tail -20 "$work/dry-run.log" >&2; ef_die "the dry run of the selection failed (log: $work/dry-run.log)"; }
for s in "${na[@]}"; do args+=(--ginkgo.skip="$s"); done
# notSelected: left out on purpose (too slow for the budget) unless EF_CONFORMANCE_ALL=1; the results list them.
ns_file=$work/not-selected.json
if [ "${EF_CONFORMANCE_ALL:-0}" = 1 ]; then echo '[]' > "$ns_file"; else jq '.notSelected // []' "$selection" > "$ns_file"; fi
mapfile -t ns < <(spec_patterns "$ns_file")
for s in "${ns[@]}"; do args+=(--ginkgo.skip="$s"); done
[ -z "$extra_focus" ] || args+=(--ginkgo.focus="$extra_focus")
total=$(jq '[.[].SpecReports[]? | select(.LeafNodeType == "It" and .State != "skipped")] | length' "$work/dry-run.json")
total=$((total - ${#ns[@]}))
echo "[conformance] $total specs selected (${#ns[@]} more left out for time), ${#na[@]} of them not applicable; log: $work/ginkgo.log"
( while sleep 30; do
    done_=$(grep -o '•' "$work/ginkgo.log" 2>/dev/null | wc -l) failed=$(grep -c '^• \[FAILED\]\|^• \[TIMEDOUT\]\|^• \[PANICKED\]' "$work/ginkgo.log" 2>/dev/null || true)
    echo "[conformance] $done_/$((total - ${#na[@]})) specs done, $failed failed (t+$((SECONDS - T0))s)"
  done ) &
progress=$!
rc=0
(cd "$work" && "$EF_BIN/ginkgo" -p --procs="$procs" --timeout=50m --no-color --json-report=report.json --output-dir="$work" \
  "$EF_BIN/e2e.test" -- "${args[@]}") > "$work/ginkgo.log" 2>&1 || rc=$?
kill "$progress" 2>/dev/null; wait "$progress" 2>/dev/null || true; progress=""
[ -s "$work/report.json" ] || { tail -30 "$work/ginkgo.log" >&2; ef_die "ginkgo wrote no report (exit $rc; log: $work/ginkgo.log)"; }

ef_log "[5/5] results"
info=$(k get node "$node" -o json | jq -c '.status.nodeInfo | {kubeletVersion, containerRuntimeVersion, osImage, kernelVersion}')
jq -n --arg k "$K8S_VERSION" --arg node "$node" --argjson procs "$procs" --arg started "$started" \
  --argjson d $((SECONDS - T0)) --argjson info "$info" --arg focus "$extra_focus" \
  '{kubernetes: $k, node: $node, nodeInfo: $info, procs: $procs, started: $started, durationSeconds: $d}
   + (if $focus == "" then {} else {extraFocus: $focus} end)' > "$work/meta.json"
out=$EF_ROOT/bench/results/conformance-$stamp
report_rc=0
python3 "$EF_ROOT/hack/conformance-report.py" "$selection" "$na_file" "$ns_file" "$work/dry-run.json" "$work/report.json" "$out.json" "$out.md" \
  "$work/meta.json" || report_rc=$?
cat "$out.md"
echo "results: $out.json (logs: $work)"
[ -z "$extra_focus" ] || { echo "(--focus: only part of the selection ran; the others count as not run)"; }
exit $report_rc
