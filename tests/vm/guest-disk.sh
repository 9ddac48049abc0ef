#!/bin/bash
# Inside the test VM, as root: --disk-space by a project quota. This host's kernel has no
# quota support; Debian's has. The VM's disk /dev/vda is ext4 with the quota and project
# features (made by run-vm); mounted with prjquota, a pod's writable layer on it gets a
# project of its own: a write past the limit fails with EDQUOT inside the pod, df in the
# pod shows the limit, and after gc the project holds nothing.
source /tests/system/lib.sh
rpod() { "$POD" --root /mnt/pq/store "$@"; }
# KiB used by the files of project $1, through a probe directory of that project: ext4's
# statfs of such a directory reports the project's usage and limit (stat -f: busybox df
# would ask the mount point instead).
project_used() {
  rm -rf /mnt/pq/probe && mkdir /mnt/pq/probe && chattr -p "$1" +P /mnt/pq/probe &&
    stat -f -c '%b %f %S' /mnt/pq/probe | awk '{ print ($1 - $2) * $3 / 1024 }'
}

mkdir -p /mnt/pq
mount -o prjquota /dev/vda /mnt/pq || fail "mounting the project-quota disk /dev/vda"
trap 'umount /mnt/pq' EXIT
rpod image import "$POD_DEFAULT_IMAGE" --name busybox >/dev/null || fail "importing busybox"

note "--plan says the limit is a project quota, and why"
out=$(rpod run --plan --net none --disk-space 16M busybox -- true)
assert_contains "$out" "disk       16.0 MiB by project quota: the store's filesystem (ext4) has project quotas on"

note "past the limit, EDQUOT inside the pod; df there shows the limit"
avail_before=$(df -k /mnt/pq | awk 'NR == 2 { print $4 }')
out=$(rpod run --name q --net none --disk-space 16M busybox -- sh -c \
  'df -k / | awk "NR == 2 { print \$2 }"; dd if=/dev/zero of=/big bs=1M count=32 2>&1; stat -c %s /big')
echo "disk: $(echo $out)" >&2
assert_contains "$out" "Disk quota exceeded"
lines=($out)
assert_eq "${lines[0]}" 16384 "df's size of / inside the pod (KiB)"
size=${lines[-1]}
((size > 15 * 1048576 && size <= 16 * 1048576)) || fail "the pod wrote $size bytes, not about 16 MiB"
upper=$(echo /mnt/pq/store/pods/*/upper)
proj=$(lsattr -pd "$upper" | awk '{ print $1 }')
((proj >= 1 << 30)) || fail "project of $upper is '$proj'"
used=$(project_used "$proj")
((used >= 15 * 1024 && used <= 16 * 1024 + 64)) || fail "project $proj uses $used KiB, not about 16 MiB"
avail_after=$(df -k /mnt/pq | awk 'NR == 2 { print $4 }')
# The 16 MiB written and the pod's own files (records, a shifted copy of busybox), not
# the 32 MiB asked for.
((avail_before - avail_after < 20 * 1024)) || fail "the filesystem lost $((avail_before - avail_after)) KiB"

note "gc removes the layer: the project holds nothing"
rpod gc >/dev/null
used=$(project_used "$proj")
((used <= 4)) || fail "project $proj still uses $used KiB after gc"
rm -rf /mnt/pq/probe
echo "disk: ok" >&2
