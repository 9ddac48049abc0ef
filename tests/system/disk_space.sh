#!/bin/bash
# --disk-space on this host, whose kernel has no quota support: root's pod gets a
# loop-mounted ext4 image of its own, an ordinary user's pod a tmpfs. Past the limit a
# write fails with ENOSPC inside the pod; the store's filesystem keeps its space; rm and
# gc leave no mount and no loop device. (Project quotas are tested in the VM:
# tests/vm/guest-disk.sh.)
source "$(dirname "$0")/lib.sh"
need_root
make_test_user 460000 65536
cp "$POD_DEFAULT_IMAGE" "$T/busybox.tar"
chmod 644 "$T/busybox.tar"
pod image import "$T/busybox.tar" --name busybox >/dev/null 2>&1
upod() { as_user "$POD" "$@"; }
upod image import "$T/busybox.tar" --name busybox >/dev/null 2>&1
mounts_before=$(grep -c . /proc/self/mountinfo)
loops_before=$(losetup -a | wc -l)
# The loop devices backed by a file below the store.
our_loops() { losetup -a | grep -c "$STORE" || true; }
fill='df -k / | awk "NR == 2 { print \$2 }"; dd if=/dev/zero of=/big bs=1M count=40 2>&1; stat -c %s /big'

note "root: --plan says why a disk image and not a project quota"
out=$(pod run --plan --net none --disk-space 24M busybox -- true)
assert_contains "$out" "disk       24.0 MiB by loop-mounted ext4 image: the store's filesystem ("
assert_contains "$out" ") has no project quotas: an ext4 image of that size in the pod's directory"
assert_eq "$(pod run --plan --json --net none --disk-space 24M busybox -- true | jq -c '.disk | [.bytes, .kind]')" \
  '[25165824,"loop-mounted ext4 image"]' "--plan --json disk"

note "root: a write past the limit fails with ENOSPC; the store's filesystem keeps its space"
avail_before=$(df -k --output=avail "$STORE" | tail -1)
out=$(pod run --name full --net none --disk-space 24M busybox -- sh -c "$fill")
echo "$out" | head -1 >&2
assert_contains "$out" "No space left on device"
lines=($out)
((lines[0] > 20 * 1024 && lines[0] <= 24 * 1024)) || fail "df inside the pod says / holds ${lines[0]} KiB"
size=${lines[-1]}
((size > 20 * 1048576 && size <= 24 * 1048576)) || fail "the pod wrote $size bytes, not about 24 MiB"
avail_after=$(df -k --output=avail "$STORE" | tail -1)
# The image is sparse: the blocks written, not the 40 MiB asked for.
((avail_before - avail_after < 28 * 1024)) || fail "the store's filesystem lost $((avail_before - avail_after)) KiB"
assert_eq "$(our_loops)" 1 "loop devices of the exited pod (its layer stays until rm)"
uuid=$(pod status full --json | jq -r .uuid)
[[ -f $STORE/pods/$uuid/disk/upper/big ]] || fail "the exited pod's layer is not in its disk"

note "root: rm unmounts the disk and frees the loop device"
pod rm full >/dev/null
assert_eq "$(our_loops)" 0 "loop devices after rm"
assert_eq "$(grep -c . /proc/self/mountinfo)" "$mounts_before" "mounts after rm"

note "root: --rm, and a pod killed at start, leave nothing either"
pod run --rm --net none --disk-space 8M busybox -- true
expect_fail 127 pod run --net none --disk-space 8M busybox -- /no/such/program
pod gc >/dev/null
assert_eq "$(our_loops)" 0 "loop devices after --rm and gc"
assert_eq "$(losetup -a | wc -l)" "$loops_before" "loop devices on the host"
assert_eq "$(grep -c . /proc/self/mountinfo)" "$mounts_before" "mounts after gc"

note "bad sizes are refused before anything is made"
expect_fail 125 pod run --net none --disk-space 100K busybox -- true
assert_eq "$ERR" "pod: --disk-space '100K': the least is 1M (EINVAL)"
expect_fail 125 pod run --net none --disk-space 1x busybox -- true
assert_contains "$ERR" "--disk-space '1x': not a size"

note "an ordinary user: a tmpfs of that size, ENOSPC past it"
out=$(upod run --plan --net none --disk-space 8M busybox -- true)
assert_contains "$out" "disk       8.0 MiB by tmpfs: an ordinary user can set no quota and mount no disk image"
out=$(upod run --net none --disk-space 8M busybox -- sh -c "$fill; id -u; stat -c %u /big")
assert_contains "$out" "No space left on device"
lines=($out)
assert_eq "${lines[0]}" 8192 "df's size of / inside the user's pod (KiB)"
((lines[-3] > 7 * 1048576 && lines[-3] <= 8 * 1048576)) || fail "the user's pod wrote ${lines[-3]} bytes"
assert_eq "${lines[-2]} ${lines[-1]}" "0 0" "the writer and the owner: the pod's root"
upod gc >/dev/null
assert_eq "$(grep -c . /proc/self/mountinfo)" "$mounts_before" "mounts after the user's pods"
echo ok
