#!/bin/bash
# Inside the test VM, as nodel: user@1001.service is delegated, but its parent does not
# offer the memory controller. --memory is refused with the controller named and the
# fix (a systemd Delegate= drop-in), nothing is left behind; a pod without limits and
# one with a delegated controller (pids) still run.
source /tests/system/lib.sh
upod() { "$POD" "$@"; }
base=/sys/fs/cgroup/user.slice/user-$(id -u).slice/user@$(id -u).service
grep -qw memory "$base/cgroup.controllers" && fail "memory is offered to $base: $(cat "$base/cgroup.controllers")"

out=$(upod image import "$POD_DEFAULT_IMAGE" --name busybox 2>&1) || fail "importing the busybox image: $out"

note "--memory without a delegated memory controller: a clear error"
expect_fail 125 upod run --name mem --memory 64M busybox -- true
echo "pod run --memory 64M: $ERR" >&2
assert_contains "$ERR" "'memory' is not delegated" "the error"
assert_contains "$ERR" "Delegate=" "the fix in the error"
[[ -z $(upod list --json | jq -r '.[].name') ]] || fail "a pod is left after the refused run: $(upod list)"
assert_eq "$(find "$base/pod" -mindepth 1 -maxdepth 1 -type d 2>/dev/null || true)" "" "cgroups after the refused run"

note "pod doctor names the controller that is not delegated"
doctor=$(upod doctor --json) || true
deleg=$(jq -r '.checks[] | select(.check == "cgroup_delegation") | "\(.status): \(.detail) fix: \(.fix)"' <<<"$doctor")
assert_contains "$deleg" "no: delegated in ${base#/sys/fs/cgroup}" "pod doctor's delegation check"
assert_contains "$deleg" "'memory' is not delegated" "pod doctor's delegation check"
assert_contains "$deleg" "Delegate=" "pod doctor's fix"

note "no limits asked: no error"
assert_eq "$(upod run busybox -- echo hi)" hi "a pod without limits"

note "a delegated controller still works"
assert_eq "$(upod run --name p --pids 40 busybox -- cat /sys/fs/cgroup/pids.max)" 40 "pids.max inside the pod"
upod rm p >/dev/null
echo ok
