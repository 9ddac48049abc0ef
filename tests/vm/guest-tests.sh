#!/bin/bash
# Inside the test VM, as podt: an ordinary user whose shell is in a leaf below
# user@1000.service, a cgroup v2 subtree delegated with every controller. Pods with
# --memory, --pids and --cpus get a cgroup of their own below user@1000.service, the
# limits hold, `pod status` reports an OOM kill, and rm and gc remove the cgroup.
source /tests/system/lib.sh
upod() { "$POD" "$@"; }
base=/sys/fs/cgroup/user.slice/user-$(id -u).slice/user@$(id -u).service
own_before=$(cat /proc/self/cgroup)

# The pod's cgroup directory, from `pod status --json`; it must be below the
# delegated subtree.
pod_cgroup() {
  local dir
  dir=$(upod status --json "$1" | jq -r '.cgroups | if length == 1 then .[0] else error("cgroups: \(.)") end')
  [[ $dir == "$base/pod/"* ]] || fail "cgroup of $1 is $dir, not below $base/pod"
  [[ -d $dir ]] || fail "cgroup of $1 ($dir) does not exist"
  echo "$dir"
}
# The pods' cgroups below the delegated subtree, one a line.
pod_cgroups() { find "$base/pod" -mindepth 1 -maxdepth 1 -type d 2>/dev/null || true; }
# The value of KEY in a flat-keyed cgroup file (memory.events, cpu.stat, pids.events).
key() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

note "import, and a pod without limits sees its own cgroup namespace"
out=$(upod image import "$POD_DEFAULT_IMAGE" --name busybox 2>&1) || fail "importing the busybox image: $out"
out=$(upod run busybox -- cat /proc/self/cgroup) || fail "pod run without limits: $out"
echo "pod run busybox -- cat /proc/self/cgroup: $out" >&2
assert_eq "$out" "0::/" "/proc/self/cgroup inside a pod"
assert_eq "$(pod_cgroups)" "" "cgroups made for a pod without limits"

note "the pod's cgroup is below the delegated subtree, and the pod sees it read-only"
out=$(upod run --name seen --pids 50 busybox -- sh -c \
  'cat /proc/self/cgroup /sys/fs/cgroup/pids.max; { echo 60 >/sys/fs/cgroup/pids.max && echo writable; } 2>/dev/null; true') \
  || fail "pod run --pids: $out"
assert_eq "$(echo $out)" "0::/ 50" "cgroup and pids.max inside the pod"
dir=$(pod_cgroup seen)
assert_eq "$(cat "$dir/pids.max")" 50 "pids.max of $dir"
upod rm seen >/dev/null
[[ ! -e $dir ]] || fail "cgroup $dir left after pod rm"

note "memory: a hog is OOM-killed at --memory 32M and pod status says so"
rc=0
upod run --name hog --memory 32M busybox -- dd if=/dev/zero of=/dev/null bs=256M count=1 2>/dev/null || rc=$?
assert_eq "$rc" 137 "exit status of the hog (SIGKILL)"
dir=$(pod_cgroup hog)
assert_eq "$(cat "$dir/memory.max")" $((32 << 20)) "memory.max"
assert_eq "$(cat "$dir/memory.swap.max")" 0 "memory.swap.max"
(($(key "$dir/memory.events" oom_kill) >= 1)) || fail "no oom_kill in $dir/memory.events: $(cat "$dir/memory.events")"
echo "hog: memory.events: $(tr '\n' ' ' <"$dir/memory.events")" >&2
status=$(upod status --json hog)
assert_eq "$(jq -r .oom_killed <<<"$status")" true "oom_killed in pod status --json"
assert_contains "$(upod status hog)" "killed by the OOM killer" "pod status"
note "the same pod under the limit is not killed, and status says so"
upod run --name calm --memory 32M busybox -- dd if=/dev/zero of=/dev/null bs=4M count=1 2>/dev/null
assert_eq "$(upod status --json calm | jq -r .oom_killed)" false "oom_killed of a pod under its limit"
upod rm hog calm >/dev/null
[[ ! -e $dir ]] || fail "cgroup $dir left after pod rm"

note "pids: a fork loop stops at --pids 12"
out=$(upod run --name forks --pids 12 busybox -- sh -c \
  'i=0; while [ $i -lt 100 ]; do sleep 60 & i=$((i + 1)); echo $i; done' 2>&1) || true
started=$(grep -x '[0-9]*' <<<"$out" | tail -n 1)
assert_contains "$out" "can't fork" "the loop's error"
((started > 0 && started < 12)) || fail "the loop started $started sleeps under --pids 12: $out"
dir=$(pod_cgroup forks)
assert_eq "$(cat "$dir/pids.max")" 12 "pids.max"
(($(key "$dir/pids.events" max) >= 1)) || fail "pids.events shows no refused fork: $(cat "$dir/pids.events")"
echo "forks: $started sleeps started, pids.events: $(cat "$dir/pids.events")" >&2
upod rm forks >/dev/null

# Busy for SECONDS under --cpus CPUS: prints the share of one cpu the loop got, from
# the usage_usec of the pod's cgroup (as the pod sees it) over the guest's own clock.
busy='read a x </proc/uptime; u0=$(grep usage_usec /sys/fs/cgroup/cpu.stat)
{ timeout "$1" sh -c "while :; do :; done"; } 2>/dev/null
u1=$(grep usage_usec /sys/fs/cgroup/cpu.stat); read b x </proc/uptime; echo $a $b ${u0#* } ${u1#* }'
cpu_share() {
  local name=$1 cpus=$2 seconds=$3 t
  t=$(upod run --name "$name" --cpus "$cpus" busybox -- sh -c "$busy" sh "$seconds") || true
  awk -v t="$t" 'BEGIN { if (split(t, w, " ") != 4 || w[2] <= w[1]) exit 1
                         printf "%.2f\n", (w[4] - w[3]) / ((w[2] - w[1]) * 1e6) }' \
    || fail "no times from the busy pod $name: '$t'"
}
note "cpu: a busy loop under --cpus 0.5 gets about half a core; under --cpus 1 about a whole one"
half=$(cpu_share half 0.5 6)
dir=$(pod_cgroup half)
assert_eq "$(cat "$dir/cpu.max")" "50000 100000" "cpu.max"
throttled=$(key "$dir/cpu.stat" nr_throttled)
whole=$(cpu_share whole 1 3)
echo "cpu: share under --cpus 0.5: $half (throttled $throttled times), under --cpus 1: $whole" >&2
awk -v h="$half" 'BEGIN { exit !(h >= 0.3 && h <= 0.65) }' || fail "share of a cpu under --cpus 0.5 is $half"
((throttled > 0)) || fail "the pod under --cpus 0.5 was never throttled"
# Without this, a guest too slow to keep a loop busy would pass the check above.
awk -v w="$whole" 'BEGIN { exit !(w >= 0.8) }' || fail "share of a cpu under --cpus 1 is only $whole"
upod rm half whole >/dev/null

note "gc removes the cgroups of exited pods"
upod run --name gc1 --pids 20 busybox -- true
upod run --name gc2 --memory 64M --cpus 0.5 busybox -- true
dir1=$(pod_cgroup gc1) dir2=$(pod_cgroup gc2)
upod gc >/dev/null
assert_eq "$(upod list --json)" "[]" "pods after gc"
[[ ! -e $dir1 && ! -e $dir2 ]] || fail "cgroups left after gc: $(pod_cgroups)"
assert_eq "$(pod_cgroups)" "" "pod cgroups after gc"

note "a detached pod with limits: pod enter joins its cgroup, stop and rm remove it"
upod run -d --name bg --memory 64M --pids 30 busybox -- sleep 120 >/dev/null
dir=$(pod_cgroup bg)
assert_eq "$(upod enter bg -- cat /proc/self/cgroup)" "0::/" "cgroup of pod enter"
procs=$(wc -l <"$dir/cgroup.procs")
((procs >= 2)) || fail "the running pod's cgroup holds $procs processes"
upod stop bg --timeout 2
upod rm bg >/dev/null
[[ ! -e $dir ]] || fail "cgroup $dir left after stop and rm"

note "pod doctor finds cgroup v2 and the delegated subtree"
doctor=$(upod doctor --json) || true
check() { jq -r --arg c "$1" '.checks[] | select(.check == $c) | "\(.status): \(.detail)"' <<<"$doctor"; }
assert_contains "$(check cgroup)" "ok: cgroup v2" "pod doctor's cgroup check"
assert_eq "$(check cgroup_delegation)" "ok: delegated in ${base#/sys/fs/cgroup}: $(cat "$base/cgroup.controllers")" \
  "pod doctor's delegation check"

assert_eq "$(cat /proc/self/cgroup)" "$own_before" "the caller's own cgroup"
echo ok
