#!/bin/bash
# rkt's ACI isolators as root: an ACI made by actool with memory, cpu, capability,
# no-new-privileges, oom-score-adj and seccomp isolators. --plan (and --json) says where
# each setting comes from; inside the pod they hold (status, oom score, a removed system
# call failing with the image's errno, the cgroup's limits); flags win over the image; the
# apps' limits add up in a pod of several; a malformed isolator is refused at import with
# the store unchanged; an unknown one is named in a warning and not kept.
source "$(dirname "$0")/lib.sh"
need_root
command -v actool >/dev/null || skip "actool missing (Debian: golang-github-appc-spec-dev's actool)"
[[ $(stat -fc %T /sys/fs/cgroup) != cgroup2fs ]] || skip "cgroup v2 host: the isolator tests run as a delegated user there (tests/vm)"

# The pods' cgroups, and the `pod` parents when this test made them, go at exit.
pods_cgroups() { { find /sys/fs/cgroup/*/pod -mindepth 1 -maxdepth 1 -type d 2>/dev/null || true; } | LC_ALL=C sort; }
ours_before=$(pods_cgroups)
parents_before=$(ls -d /sys/fs/cgroup/*/pod 2>/dev/null || true)
at_exit '"$POD" --root "$STORE" gc >/dev/null 2>&1
  for d in $(pods_cgroups); do [[ $ours_before == *"$d"* ]] || rmdir "$d" 2>/dev/null; done
  for d in /sys/fs/cgroup/*/pod; do [[ -d $d && $parents_before != *"$d"* ]] && rmdir "$d" 2>/dev/null; done'

# aci_dir DIR NAME ISOLATORS: an image directory (manifest and a busybox rootfs) whose app
# runs /bin/sh as root with these isolators (a JSON array).
aci_dir() {
  local d=$1
  mkdir -p "$d/rootfs/bin" "$d/rootfs/tmp"
  cp /bin/busybox "$d/rootfs/bin/busybox"
  for a in sh cat grep mkdir; do ln -sf busybox "$d/rootfs/bin/$a"; done
  cat >"$d/manifest" <<JSON
{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/$2",
 "labels": [{"name": "version", "value": "1"}, {"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}],
 "app": {"exec": ["/bin/sh"], "user": "0", "group": "0", "isolators": $3}}
JSON
}

note "an ACI with isolators, made by actool"
aci_dir "$T/iso" isolated '[
  {"name": "resource/memory", "value": {"limit": "64Mi"}},
  {"name": "resource/cpu", "value": {"limit": "500m", "request": "250m"}},
  {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_BIND_SERVICE", "CAP_KILL"]}},
  {"name": "os/linux/no-new-privileges", "value": true},
  {"name": "os/linux/oom-score-adj", "value": 500},
  {"name": "os/linux/seccomp-remove-set", "value": {"set": ["mkdir", "mkdirat"], "errno": "ENOSYS"}}]'
actool build "$T/iso" "$T/iso.aci"
err=$(pod image import "$T/iso.aci" 2>&1 >/dev/null)
assert_contains "$err" "importing '$T/iso.aci': isolator 'resource/cpu': the request '250m' is ignored (pod applies limits)"
pod image import "$POD_DEFAULT_IMAGE" --name busybox >/dev/null

note "--plan says where each setting comes from"
plan=$(pod run --plan --json --net none example.com/isolated:1)
setting() { jq -c --arg s "$1" '.isolators.settings[] | select(.setting == $s) | [.app, .value, .source, .from]' <<<"$plan"; }
assert_eq "$(setting memory)" '[null,67108864,"image","resource/memory"]' "memory in --plan --json"
assert_eq "$(setting cpus)" '[null,0.5,"image","resource/cpu"]' "cpus"
assert_eq "$(setting caps)" '["isolated",["CAP_NET_BIND_SERVICE","CAP_KILL"],"image","os/linux/capabilities-retain-set"]' "caps"
assert_eq "$(setting no_new_privileges)" '["isolated",true,"image","os/linux/no-new-privileges"]' "no_new_privileges"
assert_eq "$(setting oom_score_adj)" '["isolated",500,"image","os/linux/oom-score-adj"]' "oom_score_adj"
assert_eq "$(setting seccomp)" \
  '["isolated",{"errno":"ENOSYS","mode":"remove-set","set":["mkdir","mkdirat"]},"image","os/linux/seccomp-remove-set"]' "seccomp"
assert_eq "$(jq -c '.cgroup.limits' <<<"$plan")" '{"cpus":0.5,"memory":67108864}' "the pod's cgroup limits"
assert_eq "$(jq -c '.apps[0] | [.caps, .no_new_privileges]' <<<"$plan")" '[["CAP_NET_BIND_SERVICE","CAP_KILL"],true]' "the app"
text=$(pod run --plan --net none example.com/isolated:1)
assert_contains "$text" "  pod: memory 64M (image isolator resource/memory of app isolated)"
assert_contains "$text" "  app isolated: seccomp remove-set mkdir,mkdirat, refused calls fail with ENOSYS (image isolator os/linux/seccomp-remove-set)"

note "inside the pod the isolators hold"
pod run --name iso --net none example.com/isolated:1 -- -c '
  grep -E "^(CapEff|CapBnd|NoNewPrivs):" /proc/self/status | tr -s "\t" " "
  cat /proc/self/oom_score_adj
  mkdir /tmp/made 2>&1 || true
  cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us' >"$T/inside" 2>&1
assert_eq "$(cat "$T/inside")" "$(printf '%s\n' 'CapEff: 0000000000000420' 'CapBnd: 0000000000000420' 'NoNewPrivs: 1' 500 \
  "mkdir: can't create directory '/tmp/made': Function not implemented" 67108864 50000)" "inside the pod"
uuid=$(pod status --json iso | jq -r .uuid)
assert_eq "$(cat /sys/fs/cgroup/memory/pod/$uuid/memory.limit_in_bytes)" 67108864 "host: the pod's memory.limit_in_bytes"
pod rm iso >/dev/null
[[ ! -e /sys/fs/cgroup/memory/pod/$uuid ]] || fail "rm left the pod's memory cgroup"

note "pod enter joins the app's isolators"
pod run -d --name bg --net none example.com/isolated:1 -- -c 'sleep 60' >/dev/null
out=$(pod enter bg -- /bin/sh -c 'cat /proc/self/oom_score_adj; grep ^CapEff: /proc/self/status | tr -s "\t" " "
  mkdir /tmp/entered 2>&1 || true')
assert_eq "$out" "$(printf '%s\n' 500 'CapEff: 0000000000000420' "mkdir: can't create directory '/tmp/entered': Function not implemented")" \
  "inside pod enter"
pod stop --timeout 1 bg
pod rm bg >/dev/null

note "flags win over the image"
plan=$(pod run --plan --json --net none --memory 32M --cap-retain CAP_CHOWN --seccomp unconfined example.com/isolated:1)
assert_eq "$(setting memory)" '[null,33554432,"flag","--memory"]' "memory from the flag"
assert_eq "$(jq -r '.isolators.settings[] | select(.setting == "memory") | .overrides' <<<"$plan")" \
  "resource/memory 64M of app isolated" "what --memory overrides"
assert_eq "$(setting caps)" '["isolated",["CAP_CHOWN"],"flag","--cap-retain"]' "caps from the flag"
assert_eq "$(setting seccomp)" '["isolated","unconfined","flag","--seccomp"]' "seccomp from the flag"
assert_eq "$(setting oom_score_adj)" '["isolated",500,"image","os/linux/oom-score-adj"]' "no flag: the image's oom score"
out=$(pod run --rm --net none --memory 32M --cap-retain CAP_CHOWN --seccomp unconfined example.com/isolated:1 -- -c '
  cat /sys/fs/cgroup/memory/memory.limit_in_bytes; grep ^CapEff: /proc/self/status | tr -s "\t" " "
  mkdir /tmp/made && echo made')
assert_eq "$out" "$(printf '%s\n' 33554432 'CapEff: 0000000000000001' made)" "inside, with the flags"
echo '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}' >"$T/profile.json"
out=$(pod run --rm --net none --seccomp "$T/profile.json" example.com/isolated:1 -- -c 'mkdir /tmp/made && echo made')
assert_eq "$out" made "--seccomp FILE instead of the image's remove-set"

note "a pod of several apps: their limits add up, a partial sum is said so"
plan=$(pod run --plan --json --net none example.com/isolated:1 --- busybox)
assert_eq "$(setting memory)" '[null,67108864,"image","resource/memory"]' "the only declared memory limit"
assert_contains "$(jq -r '.isolators.notes[0]' <<<"$plan")" "resource/memory: not every app declares a limit (64M of app isolated)"
assert_eq "$(jq -c '[(.apps[1].caps | length), .apps[1].seccomp]' <<<"$plan")" '[14,"default"]' "busybox keeps the defaults"
plan=$(pod run --plan --json --net none example.com/isolated:1 --- example.com/isolated:1)
assert_eq "$(jq -c '.cgroup.limits' <<<"$plan")" '{"cpus":1,"memory":134217728}' "two apps' limits added"

note "a malformed isolator is refused at import; the store is unchanged"
aci_dir "$T/bad" bad '[{"name": "resource/memory", "value": {"limit": "12X"}}]'
tar -C "$T/bad" -czf "$T/bad.aci" manifest rootfs
images_before=$(pod image list --json)
store_state() { snapshot "$STORE/blobs"; snapshot "$STORE/trees"; sha256sum "$STORE/index.json"; }
store_before=$(store_state)
expect_fail 1 pod image import "$T/bad.aci"
assert_eq "$(wc -l <<<"$ERR")" 1 "lines of the error"
assert_contains "$ERR" "pod: importing '$T/bad.aci': "
assert_contains "$ERR" "ACI 'example.com/bad': isolator 'resource/memory': limit '12X': not a quantity (a number with an optional suffix: 500M = 500*10^6, 128Mi = 128*2^20, 500m = 0.5)"
assert_eq "$(pod image list --json)" "$images_before" "images after the refused import"
assert_eq "$(store_state)" "$store_before" "the store after the refused import"

note "an unknown isolator is named in a warning and not kept"
aci_dir "$T/odd" odd '[{"name": "example.com/own-isolator", "value": {"x": 1}}, {"name": "os/linux/oom-score-adj", "value": 100}]'
tar -C "$T/odd" -czf "$T/odd.aci" manifest rootfs
err=$(pod image import "$T/odd.aci" 2>&1 >/dev/null)
assert_contains "$err" "pod: warning: importing '$T/odd.aci': isolator 'example.com/own-isolator' is not known to pod: ignored"
assert_eq "$(pod image inspect --json example.com/odd:1 | jq -r '.config.config.Labels["io.pod.aci.isolators"]')" \
  '[{"name":"os/linux/oom-score-adj","value":100}]' "the label keeps the known isolators"
assert_eq "$(pod run --rm --net none example.com/odd:1 -- -c 'cat /proc/self/oom_score_adj')" 100 "the known one applies"

note "nothing is left behind"
pod gc >/dev/null
assert_eq "$(pod list --json)" "[]" "pods"
# (root's ledger is the machine's: only the leases of this test's pods are looked at)
assert_eq "$(pod idmap list --json | jq '[.[] | select(.name | test("^(iso|isolated-[0-9a-f]{8}|odd-[0-9a-f]{8})$"))] | length')" \
  0 "leases of the test's pods"
assert_eq "$(pods_cgroups)" "$ours_before" "the pods' cgroups"
echo PASS
