#!/bin/bash
# An ordinary user imports: with subordinate ids every owner survives, shifted into the
# user's range; without them, owners go to user.rootlesscontainers as umoci writes it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fixtures.sh"
make_test_user 400000 65536
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
uid=$(id -u "$TEST_USER")

ROOTFS=$T/rootfs
make_rootfs "$ROOTFS"
make_oci_layout "$ROOTFS" "$T/layout" v1
skopeo copy -q "oci:$T/layout:v1" "oci-archive:$T/fixture.tar:v1"
chmod 644 "$T/fixture.tar"

note "with subordinate ids: a file owned by 1234 is owned by $SUBID_START+1233 on disk"
out=$(as_user "$POD" image import "$T/fixture.tar" --name fixture:v1 2>&1 >/dev/null) || fail "rootless import failed: $out"
assert_contains "$out" "device node"   # dev/null cannot be made without privilege: said, not silent
ustore=$home/.local/share/pod
[[ -f $ustore/index.json ]] || fail "the user's store is not in ~/.local/share/pod"
layer=$(jq -r '.manifests[0].digest' "$ustore/index.json")
tree=$ustore/trees/$(as_user "$POD" image inspect --json fixture:v1 | jq -r '.layers[0].digest | ltrimstr("sha256:")')/root
assert_eq "$(stat -c %u:%g "$tree/home/app/notes")" "$((SUBID_START + 1233)):$((SUBID_START + 5677))" "owner of home/app/notes"
assert_eq "$(stat -c %u:%g "$tree/srv/data/file")" "$((SUBID_START + 41)):$((SUBID_START + 42))" "owner of srv/data/file"
assert_eq "$(stat -c %u:%g "$tree/bin/busybox")" "$uid:$(id -g "$TEST_USER")" "root-owned file"
assert_eq "$(stat -c %a "$tree/bin/suid-tool")" 4755 "setuid bit"
assert_eq "$(stat -c %a "$tree/bin/sgid-tool")" 2750 "setgid bit"
[[ $(getcap "$tree/bin/ping") == *cap_net_raw=ep* ]] || fail "file capability lost"
assert_eq "$(getfattr --only-values -n user.comment "$tree/srv/data/file")" "kept by pod" "user xattr"
[[ ! -e $tree/dev/null ]] || fail "a device node appeared in a rootless tree"
# Inside the store's namespace the owners read as the image says.
as_user "$POD" image inspect --json fixture:v1 | jq -e '.layers[0].census.uids == [0,42,1234,65534]' >/dev/null ||
  fail "census as the user"
as_user "$POD" image verify >/dev/null 2>&1 || fail "verify as the user"
as_user "$POD" image rm fixture:v1 >/dev/null 2>&1 || fail "rm as the user"
[[ -z $(ls -A "$ustore/trees") ]] || fail "the user could not remove its own trees"

note "without subordinate ids: one id, owners in user.rootlesscontainers as umoci writes them"
cp "$T/subuid.orig" /etc/subuid; cp "$T/subgid.orig" /etc/subgid
out=$(as_user "$POD" image import "$T/fixture.tar" --name fixture:v1 2>&1 >/dev/null) || fail "import without subids: $out"
assert_contains "$out" "no subordinate ids"
assert_contains "$out" "user.rootlesscontainers"
tree=$ustore/trees/$(as_user "$POD" image inspect --json fixture:v1 | jq -r '.layers[0].digest | ltrimstr("sha256:")')/root
assert_eq "$(stat -c %u "$tree/home/app/notes")" "$uid" "owner without subids"
ours=$(getfattr --only-values -e hex -n user.rootlesscontainers "$tree/home/app/notes")
# umoci's own rootless unpack of the same image is the reference.
chown -R "$TEST_USER" "$T/layout"
as_user umoci unpack --rootless --image "$T/layout:v1" "$home/umoci-bundle" >/dev/null 2>&1
theirs=$(getfattr --only-values -e hex -n user.rootlesscontainers "$home/umoci-bundle/rootfs/home/app/notes")
assert_eq "$ours" "$theirs" "user.rootlesscontainers of home/app/notes (pod vs umoci)"
