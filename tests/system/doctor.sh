# pod doctor, as root and as an ordinary user with (and then without) subordinate ids:
# one line per check, fixes for the gaps, valid --json, exit 0, nothing left behind.
source "$(dirname "$0")/lib.sh"
need_root

note "root"
out=$(pod doctor)
echo "$out"
line() { grep -E "^$1 " <<<"$2" || fail "no '$1' line in: $2"; }
assert_contains "$(line 'subordinate ranges' "$out")" "root's pool"
assert_contains "$(line 'cgroup version' "$out")" "cgroup"
assert_contains "$(line 'user namespaces' "$out")" " ok "
assert_contains "$(line 'idmapped mounts of the store' "$out")" " ok "
assert_contains "$(line 'overlay in a user namespace' "$out")" " ok "
assert_contains "$(line 'overlay metacopy layers' "$out")" " ok "
pod doctor --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
ids = {c["check"]: c for c in d["checks"]}
for need in ("userns", "newuidmap", "subids", "cgroup", "cgroup_delegation", "tun", "pasta", "cni_bridge"):
    assert need in ids, need
assert ids["idmapped_store"]["status"] == "ok", ids["idmapped_store"]
for c in d["checks"]:
    assert c["status"] in ("ok", "no", "missing"), c
    assert (c["fix"] is None) == (c["status"] == "ok"), c
'
# The probes ran beside the store-to-be and cleaned up after themselves.
[[ -z $(find "$T" -maxdepth 2 -name '.pod-doctor-*' -o -maxdepth 2 -name 'probe-*') ]] || fail "probe leftovers in $T"

note "an ordinary user with subordinate ids"
make_test_user 400000 65536
out=$(as_user "$POD" doctor)
echo "$out"
assert_contains "$(line 'subordinate ranges' "$out")" "uids 400000-465535, gids 400000-465535"
assert_contains "$(line 'cgroup version' "$out")" "cgroup"
assert_contains "$(line 'cgroup controllers' "$out")" " no "
# The line after a gap is its fix.
grep -A1 -E '^cgroup controllers ' <<<"$out" | tail -1 | grep -q '^    fix: .*Delegate=' || fail "no delegation fix"
assert_contains "$(line 'idmapped mounts of the store' "$out")" "not privileged over the filesystem of the store"
assert_contains "$(line 'overlay metacopy layers' "$out")" "trusted.* xattrs, which need root"
assert_contains "$(line 'overlay in a user namespace' "$out")" " ok "
as_user "$POD" doctor --json | python3 -c 'import json,sys; json.load(sys.stdin)'
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
[[ -z $(find "$home" -name '.pod-doctor-*') ]] || fail "probe leftovers in $home"

note "an ordinary user without subordinate ids"
sed -i "/^$TEST_USER:/d" /etc/subuid /etc/subgid
out=$(as_user "$POD" doctor)
assert_contains "$(line 'subordinate ranges' "$out")" "missing"
grep -A1 -E '^subordinate ranges ' <<<"$out" | tail -1 |
  grep -q "^    fix: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $TEST_USER" ||
  fail "no usermod fix in: $out"
echo "doctor: ok"
