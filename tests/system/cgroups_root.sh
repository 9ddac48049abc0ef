#!/bin/bash
# Pods with cgroup limits as root on this host (cgroup v1 or hybrid; cgroup v2 works the
# same through other files): the limits in place, a memory hog OOM-killed and `pod
# status` saying so, a fork loop stopped at --pids, cpu time under --cpus 0.5 near half
# a core, io and cpuset limits, `pod enter` joining the pod's cgroups, the cgroups gone
# after rm, --rm and gc (also of a killed `pod run`), nothing else of the machine's
# cgroups changed; an ordinary user asking for limits on cgroup v1 gets the reason.
source "$(dirname "$0")/lib.sh"
need_root
keep_default_network_as_found
[[ -d /sys/fs/cgroup ]] || skip "no /sys/fs/cgroup"
V2=0
[[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] && V2=1
(( V2 == 0 )) || skip "cgroup v2 host: the isolator tests run as a delegated user there (tests/vm)"

pod image import "$POD_DEFAULT_IMAGE" --name busybox >/dev/null

# The machine's cgroups apart from ours (the `pod` parents): the limits a pod could have
# touched, in each hierarchy's root and in this test's own cgroups (other cgroups come
# and go with the machine's own work).
machine_cgroups() {
  local dirs=() h
  for h in /sys/fs/cgroup/*/; do dirs+=("${h%/}"); done
  while IFS=: read -r _ ctrls path; do
    [[ -z $ctrls ]] && dirs+=("/sys/fs/cgroup/unified$path") || dirs+=("/sys/fs/cgroup/${ctrls#name=}$path")
  done </proc/self/cgroup
  local d f
  for d in "${dirs[@]}"; do
    for f in memory.limit_in_bytes memory.memsw.limit_in_bytes cpu.cfs_quota_us cpu.cfs_period_us cpu.shares \
      pids.max cpuset.cpus cpuset.mems blkio.throttle.read_bps_device blkio.throttle.write_iops_device \
      cgroup.subtree_control; do
      [[ -r $d/$f ]] && printf '%s/%s %s\n' "$d" "$f" "$(tr '\n' ' ' <"$d/$f")"
    done
  done
  return 0
}
# No `pod` parent at all (none made yet, or removed when empty) is an empty list.
pods_cgroups() { { find /sys/fs/cgroup/*/pod -mindepth 1 -maxdepth 1 -type d 2>/dev/null || true; } | LC_ALL=C sort; }
machine_before=$(machine_cgroups)
ours_before=$(pods_cgroups)
parents_before=$(ls -d /sys/fs/cgroup/*/pod 2>/dev/null || true)
# ours and, when this test made them, the `pod` parents: the machine is left as it was
at_exit 'for d in $(pods_cgroups); do [[ $ours_before == *"$d"* ]] || rmdir "$d" 2>/dev/null; done
  for d in /sys/fs/cgroup/*/pod; do [[ -d $d && $parents_before != *"$d"* ]] && rmdir "$d" 2>/dev/null; done'
uuid_of() { pod status --json "$1" | jq -r .uuid; }
cgroup_of() { pod status --json "$1" | jq -r --arg c "$2" '.cgroups[] | select(contains("/" + $c + "/"))'; }

note "bad values are refused naming the flag and the value, before any cgroup is made"
expect_fail 125 pod run --memory 12X busybox -- true
assert_contains "$ERR" "--memory '12X': not a size"
expect_fail 125 pod run --cpus 0 busybox -- true
assert_contains "$ERR" "--cpus '0': must be more than 0"
expect_fail 125 pod run --pids many busybox -- true
assert_contains "$ERR" "--pids 'many': not a whole number"
expect_fail 125 pod run --io-read-bps /dev/null:1M busybox -- true
assert_contains "$ERR" "--io-read-bps '/dev/null:1M': '/dev/null' is not a block device"
expect_fail 125 pod run --cpuset-cpus 3-1 busybox -- true
assert_contains "$ERR" "--cpuset-cpus '3-1': not a cpu list"
assert_eq "$(pods_cgroups)" "$ours_before" "cgroups after refused values"

note "--plan shows the cgroups and the limits"
plan=$(pod run --plan --memory 64M --cpus 0.5 --pids 20 busybox)
assert_contains "$plan" "cgroup     v1 /sys/fs/cgroup/memory/pod/"
assert_contains "$plan" ": memory 64M, cpus 0.5, pids 20"
assert_eq "$(pod run --plan --json --memory 64M busybox | jq -c '.cgroup.limits')" '{"memory":67108864}' "--plan --json limits"
assert_contains "$(pod run --plan busybox)" "cgroup     none (no limits asked"

note "the limits in place, seen from the host and read-only from inside"
out=$(pod run --name lim --memory 64M --cpus 0.5 --pids 20 busybox -- sh -c '
  cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us
  grep -E ":(memory|pids):" /proc/self/cgroup | cut -d: -f2-
  ls /sys/fs/cgroup | tr "\n" " "; echo
  echo 5 2>/dev/null > /sys/fs/cgroup/pids/pids.max && echo writable || echo read-only')
assert_eq "$out" "$(printf '67108864\n20\n50000\npids:/\nmemory:/\ncpu cpuacct memory pids \nread-only')" "inside the pod"
uuid=$(uuid_of lim)
assert_eq "$(cat /sys/fs/cgroup/memory/pod/$uuid/memory.limit_in_bytes)" 67108864 "host: memory.limit_in_bytes"
if [[ -e /sys/fs/cgroup/memory/pod/$uuid/memory.memsw.limit_in_bytes ]]; then
  assert_eq "$(cat /sys/fs/cgroup/memory/pod/$uuid/memory.memsw.limit_in_bytes)" 67108864 "host: no swap beyond"
fi
cpu=$(cgroup_of lim cpu)
assert_eq "$(cat "$cpu/cpu.cfs_quota_us") $(cat "$cpu/cpu.cfs_period_us") $(cat "$cpu/cpu.shares")" "50000 100000 512" "host: cpu"
assert_eq "$(cat /sys/fs/cgroup/pids/pod/$uuid/pids.max)" 20 "host: pids.max"
st=$(pod status lim)
assert_contains "$st" "cgroup:   /sys/fs/cgroup/memory/pod/$uuid"
assert_contains "$st" "oom:      no OOM kill"
pod rm lim >/dev/null
for d in memory cpu pids; do [[ ! -e /sys/fs/cgroup/$d/pod/$uuid ]] || fail "rm left /sys/fs/cgroup/$d/pod/$uuid"; done

note "a memory hog is OOM-killed at --memory and pod status says so"
rc=0; pod run --name hog --memory 32M busybox -- sh -c 'head -c 200m /dev/zero | tail >/dev/null && echo survived' >"$T/hog.out" 2>&1 || rc=$?
[[ $(cat "$T/hog.out") != *survived* ]] || fail "the hog was not killed"
assert_eq "$rc" 137 "exit status of the hog's pod (tail killed by SIGKILL)"
assert_contains "$(pod status hog)" "oom:      killed by the OOM killer"
assert_eq "$(pod status --json hog | jq -c '[.oom_killed, (.oom_kills > 0)]')" "[true,true]" "status --json"
assert_eq "$(cat /sys/fs/cgroup/memory/pod/$(uuid_of hog)/memory.max_usage_in_bytes | awk '{print ($1 <= 33554432)}')" 1 "peak usage within the limit"
within=$(pod run --memory 256M busybox -- sh -c 'head -c 20m /dev/zero | tail | wc -c')
assert_eq "$within" 20971520 "less work within a larger limit"

note "a fork loop stops at --pids"
# A subshell forks until refused (busybox sh then ends it), counting what it started:
# 10 = the init, sh, the subshell and 7 sleeps; once the subshell is gone, 9 remain.
out=$(pod run --name forks --pids 10 busybox -- sh -c '
  (i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); echo $i > /started; done) 2>/dev/null
  read n < /started; read c < /sys/fs/cgroup/pids/pids.current; echo $n $c')
assert_eq "$out" "7 9" "sleeps started under --pids 10, and pids in the pod after"
events=$(cat /sys/fs/cgroup/pids/pod/$(uuid_of forks)/pids.events)
assert_contains "$events" "max "
[[ $events != "max 0" ]] || fail "no fork was refused: $events"

note "cpu time under --cpus 0.5 stays near half a core"
pod run --name spin --cpus 0.5 busybox -- sh -c 'sh -c "while :; do :; done" & sleep 4; kill $!'
cpuacct=$(cgroup_of spin cpuacct)
usage_ns=$(cat "$cpuacct/cpuacct.usage")
# 4 s at half a core is 2 s of cpu; without the limit the loop alone would take 4 s. The
# lower bound is loose: on a busy machine the loop gets less than its quota.
(( usage_ns > 1000000000 && usage_ns < 2400000000 )) || fail "cpu time under --cpus 0.5 over 4 s: $usage_ns ns"
throttled=$(awk '$1=="nr_throttled" {print $2}' "$(cgroup_of spin cpu)/cpu.stat")
(( throttled > 0 )) || fail "the pod was never throttled"
note "  $((usage_ns / 1000000)) ms of cpu in 4 s, throttled $throttled times"

note "io limits by device and the cpuset"
disk=$(findmnt -no SOURCE / || true)
if [[ -b $disk ]]; then
  majmin=$(printf '%d:%d' "0x$(stat -c %t "$disk")" "0x$(stat -c %T "$disk")")
  pod run --name io --io-read-bps "$disk:1M" --io-write-iops "$disk:50" busybox -- true
  blk=$(cgroup_of io blkio)
  assert_eq "$(cat "$blk/blkio.throttle.read_bps_device")" "$majmin 1048576" "blkio read bps"
  assert_eq "$(cat "$blk/blkio.throttle.write_iops_device")" "$majmin 50" "blkio write iops"
else
  note "  (no block device under /: io limits not checked)"
fi
out=$(pod run --name pinned --cpuset-cpus 0 busybox -- grep Cpus_allowed_list /proc/self/status)
assert_eq "$(echo $out)" "Cpus_allowed_list: 0" "cpus allowed inside"
assert_eq "$(cat "$(cgroup_of pinned cpuset)/cpuset.cpus")" 0 "host: cpuset.cpus"
assert_eq "$(cat "$(cgroup_of pinned cpuset)/cpuset.mems")" "$(cat /sys/fs/cgroup/cpuset/cpuset.mems)" "host: cpuset.mems copied"

note "pod enter joins the app's cgroups"
pod run -d --name bg --memory 64M --pids 50 busybox -- sleep 60 >/dev/null
out=$(pod enter bg -- cat /proc/self/cgroup)
assert_contains "$out" ":memory:/"$'\n'
assert_contains "$out" ":pids:/"$'\n'
[[ $out != *":memory:/.."* ]] || fail "pod enter is outside the pod's memory cgroup: $out"
pod stop --timeout 1 bg
pod rm bg >/dev/null

note "--rm and gc remove the cgroups, also of a killed pod run"
pod run --rm --memory 64M busybox -- true
"$POD" --root "$STORE" run --name killed --memory 64M --pids 50 busybox -- sleep 60 &
runner=$!
for _ in $(seq 100); do [[ $(pod status --json killed 2>/dev/null | jq -r .state) == running ]] && break; sleep 0.1; done
killed=$(uuid_of killed)
kill -9 $runner; wait $runner 2>/dev/null || true
[[ -d /sys/fs/cgroup/memory/pod/$killed ]] || fail "the killed pod's cgroup is missing before gc"
pod gc >/dev/null
assert_eq "$(pod list --json)" "[]" "pods after gc"
assert_eq "$(pods_cgroups)" "$ours_before" "pod cgroups after gc"
assert_eq "$(machine_cgroups)" "$machine_before" "the machine's other cgroups"

note "an ordinary user on cgroup v1: limits refused with the reason, no limits runs"
make_test_user 400000 65536
cp "$POD_DEFAULT_IMAGE" "$T/busybox.tar"; chmod 644 "$T/busybox.tar"
as_user "$POD" image import "$T/busybox.tar" --name busybox >/dev/null 2>&1
rc=0; err=$(as_user "$POD" run --memory 64M busybox -- true 2>&1) || rc=$?
assert_eq "$rc" 125 "exit status of a refused limit"
assert_contains "$err" "this host has cgroup v1, which is not delegated to ordinary users"
assert_contains "$err" "memory 64M"
assert_eq "$(as_user "$POD" run busybox -- echo ran)" ran "a rootless pod without limits"
as_user "$POD" gc >/dev/null
assert_eq "$(pods_cgroups)" "$ours_before" "pod cgroups after the user's pods"
echo "PASS"
