#!/bin/bash
# The pod lifecycle commands without a running pod (those need `pod run`, tested with
# it): an empty store lists nothing, unknown pods are named in the error, and a
# stopped pod record left in the store is listed, shown and removed.
source "$(dirname "$0")/lib.sh"

note "empty store"
out=$(pod list --json)
assert_eq "$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin))')" "[]" "pod list --json"
out=$(pod list)
assert_contains "$out" "NAME" "pod list header"
assert_eq "$(pod gc)" "" "pod gc on an empty store"

note "unknown pods"
for cmd in status stop rm; do
  expect_fail 1 pod $cmd nosuch
  assert_contains "$ERR" "no pod 'nosuch'" "pod $cmd nosuch"
done
expect_fail 125 pod enter nosuch -- true  # as `pod run`: 125 when pod itself fails
assert_contains "$ERR" "no pod 'nosuch'" "pod enter nosuch"
expect_fail 2 pod status

note "an exited pod left in the store"
uuid=0f8fad5b-d9cb-469f-a165-70867728950e
dir=$STORE/pods/$uuid
mkdir -p "$dir/upper"
touch "$dir/lock" "$dir/upper/file"
cat >"$dir/pod.json" <<EOF
{"version": 1, "uuid": "$uuid", "name": "old", "created": "2025-01-01T00:00:00Z",
 "apps": [{"name": "main", "image": "busybox:latest", "argv": ["/bin/sh"], "pid": 999999,
           "security": {"caps": ["CAP_CHOWN"]}}],
 "uid_map": [{"inner": 0, "outer": 100000, "count": 65536}],
 "gid_map": [{"inner": 0, "outer": 100000, "count": 65536}],
 "pid": 999999, "start_time": 1}
EOF
echo '{"exit": 7, "apps": [{"name": "main", "exit": 7, "signal": 0}]}' >"$dir/status.json"
out=$(pod list --json)
want='[{"exit": 7, "image": "busybox:latest", "name": "old", "pid": 999999, "state": "exited", "uuid": "'$uuid'"}]'
got=$(echo "$out" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))')
assert_eq "$got" "$want" "pod list --json"
assert_contains "$(pod list)" "old" "pod list"
assert_contains "$(pod list)" "100000/65536" "pod list ranges"
out=$(pod status old)
assert_contains "$out" "exited" "pod status"
assert_contains "$out" "main" "pod status app"
assert_contains "$out" "0:100000:65536" "pod status maps"
pod status 0f8f --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["exit"] == 7 and d["apps"][0]["exit"] == 7, d'
pod stop old  # already ended: nothing to do

note "a damaged record is reported, not fatal"
bad=11111111-2222-4333-8444-555555555555
mkdir -p "$STORE/pods/$bad" && echo '{' >"$STORE/pods/$bad/pod.json"
out=$(pod list --json 2>"$T/err")
assert_contains "$(cat "$T/err")" "$bad" "warning for the damaged pod"
assert_eq "$(echo "$out" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "1" "pods listed"

note "rm and gc"
expect_fail 1 pod rm old nosuch
assert_contains "$ERR" "no pod 'nosuch'" "rm continues past a missing pod"
[[ ! -e $dir ]] || fail "pod rm left $dir"
pod rm "$bad"
[[ ! -e $STORE/pods/$bad ]] || fail "pod rm left the damaged pod"
mkdir -p "$STORE/pods/.garbage-$uuid/upper"
assert_eq "$(pod gc)" "$uuid" "pod gc prints the uuids it removed"
assert_eq "$(ls -A "$STORE/pods")" "" "pods directory after gc"
echo OK
