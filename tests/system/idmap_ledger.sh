#!/bin/bash
# pod idmap alloc | list | release end to end: 64 allocations started at once get 64
# disjoint leases; a release is quarantined while the store holds files of its range;
# an ordinary user allocates from their own /etc/subuid range and is refused outside it.
source "$POD_TESTS_DIR/system/lib.sh"
need_root
command -v jq >/dev/null || skip "jq missing"

# Prints the number of overlapping neighbours among the KIND ranges of a list --json.
overlaps() {
  jq --arg k "$1" '[.[] | .[$k]] | sort_by(.host) as $r
    | [range(1; $r | length) | select($r[. - 1].host + $r[. - 1].count > $r[.].host)] | length'
}

note "64 allocations at once"
pids=()
for i in $(seq 1 64); do
  pod idmap alloc --size 65536 --name "p$i" >"$T/alloc.$i" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 64); do
  wait "${pids[i - 1]}" || fail "alloc p$i failed: $(cat "$T/alloc.$i")"
done
json=$(pod idmap list --json)
assert_eq "$(jq length <<<"$json")" 64 "leases"
assert_eq "$(jq '[.[].name] | unique | length' <<<"$json")" 64 "distinct names"
assert_eq "$(jq '[.[] | select(.uid.count != 65536 or .gid.count != 65536 or .state != "leased")] | length' <<<"$json")" 0 "leases of the wrong size or state"
# Every id of every lease is inside the default pool (0x80000-0x6fffffff) ...
assert_eq "$(jq '[.[] | .uid, .gid | select(.host < 524288 or .host + .count > 1879048192)] | length' <<<"$json")" 0 "leases outside the pool"
# ... and no two share an id.
assert_eq "$(overlaps uid <<<"$json")" 0 "overlapping uid ranges"
assert_eq "$(overlaps gid <<<"$json")" 0 "overlapping gid ranges"
# The check can fail: a forged overlapping list is caught.
assert_eq "$(jq '.[1].uid.host = .[0].uid.host + 65535' <<<"$json" | overlaps uid)" 1 "the overlap check itself"

note "explicit maps overlapping a lease, or leaving the pool, are refused"
p3=$(jq '.[] | select(.name == "p3") | .uid.host' <<<"$json")
expect_fail 1 pod idmap alloc --name x1 --policy "0:$((p3 + 65535)):2"
assert_eq "$ERR" "pod: allocating 'x1': uid $((p3 + 65535)) on the host is leased to 'p3' (EBUSY)"
expect_fail 1 pod idmap alloc --name x2 --policy "0:1000:1"
assert_eq "$ERR" "pod: allocating 'x2': uid 1000 on the host is not in your allotment (524288-1879048191) (EPERM)"
expect_fail 1 pod idmap alloc --name p3
assert_eq "$ERR" "pod: allocating 'p3': a lease named 'p3' exists (leased) (EEXIST)"
expect_fail 1 pod idmap alloc --name Bad
assert_eq "$ERR" "pod: allocating 'Bad': name 'Bad' is not [a-z0-9][a-z0-9-]{0,62} (EINVAL)"

note "pick: the same name gets the same range back after a release"
picked=$(pod idmap alloc --name web --policy pick)
pod idmap release web
assert_eq "$(pod idmap alloc --name web --policy pick)" "$picked" "pick of 'web'"

note "release: quarantined while files of the range remain in the store"
p2=$(jq '.[] | select(.name == "p2") | .uid.host' <<<"$json")
mkdir -p "$STORE/pods/0f8fad5b/rootfs/etc"
touch "$STORE/pods/0f8fad5b/rootfs/etc/passwd"
chown "$((p2 + 7)):0" "$STORE/pods/0f8fad5b/rootfs/etc/passwd"
out=$(pod idmap release p2 2>&1)
assert_contains "$out" "'p2' is quarantined: files owned by its ids remain (pods/0f8fad5b/rootfs/etc/passwd)"
pod idmap release p1
json=$(pod idmap list --json)
assert_eq "$(jq -r '.[] | select(.name == "p2") | .state' <<<"$json")" quarantined "p2's state"
assert_eq "$(jq '[.[] | select(.name == "p1")] | length' <<<"$json")" 0 "p1 removed"
expect_fail 1 pod idmap alloc --name x3 --policy "0:$p2:1"
assert_eq "$ERR" "pod: allocating 'x3': uid $p2 on the host is quarantined: files owned by the released lease 'p2' remain (EBUSY)"
rm -r "$STORE/pods/0f8fad5b"
json=$(pod idmap list --json)
assert_eq "$(jq '[.[] | select(.name == "p2")] | length' <<<"$json")" 0 "p2 freed by list"
pod idmap alloc --name x3 --policy "0:$p2:1" >/dev/null

note "an ordinary user allocates from their own /etc/subuid range"
make_test_user 400000 65536
out=$(as_user "$POD" idmap alloc --name u1 --size 1000)
assert_eq "$out" "u1 uid 0:400000:1000 gid 0:400000:1000"
out=$(as_user "$POD" idmap alloc --name u2 --policy pick --size 1000)
[[ $out =~ ^u2\ uid\ 0:([0-9]+):1000 ]] || fail "pick as a user: $out"
(( BASH_REMATCH[1] >= 401000 && BASH_REMATCH[1] + 1000 <= 465536 )) || fail "pick outside the user's range: $out"
expect_fail 1 as_user "$POD" idmap alloc --name u3 --policy 0:0:1
assert_eq "$ERR" "pod: allocating 'u3': uid 0 on the host is not in your allotment (400000-465535) (EPERM)"
expect_fail 1 as_user "$POD" idmap alloc --name u4 --policy "0:465000:1000"
assert_eq "$ERR" "pod: allocating 'u4': uid 465536 on the host is not in your allotment (400000-465535) (EPERM)"
expect_fail 1 as_user "$POD" idmap alloc --name u5 --policy "u:0:400500:1,g:0:400000:1"
assert_eq "$ERR" "pod: allocating 'u5': uid 400500 on the host is leased to 'u1' (EBUSY)"
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
ledger=$home/.local/share/pod/idmap/leases.json
[[ -f $ledger ]] || fail "no ledger in the user's store ($ledger)"
assert_eq "$(stat -c %U "$ledger")" "$TEST_USER" "the ledger's owner"
assert_eq "$(as_user "$POD" idmap list --json | jq -c '[.[] | .name]')" '["u1","u2"]' "the user's leases"
# Root's ledger is another one.
assert_eq "$(pod idmap list --json | jq '[.[] | select(.name == "u1")] | length')" 0 "user leases in root's ledger"
echo PASS
