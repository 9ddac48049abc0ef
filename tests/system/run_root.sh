#!/bin/bash
# pod run as root: a fresh lease per pod, the image's owners inside by each engine, the
# store untouched by idmap, whiteouts, exit codes, pid 1, isolation, and the lifecycle.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fixtures.sh"
need_root
keep_default_network_as_found

ROOTFS=$T/rootfs
make_rootfs "$ROOTFS"
make_oci_layout "$ROOTFS" "$T/layout" v1
# A second layer: etc/empty deleted (a whiteout), srv/data replaced by an opaque directory.
b=$T/bundle2
umoci unpack --image "$T/layout:v1" "$b" >/dev/null
rm "$b/rootfs/etc/empty"
rm -rf "$b/rootfs/srv/data"; mkdir "$b/rootfs/srv/data"; echo new >"$b/rootfs/srv/data/only"
umoci repack --image "$T/layout:v1" "$b" >/dev/null
rm -rf "$b"
skopeo copy -q "oci:$T/layout:v1" "oci-archive:$T/fixture.tar:v1"
pod image import "$T/fixture.tar" --name fixture:v1 >/dev/null
pod_sha=$(sha256sum <"$POD")
pod image import "$POD_DEFAULT_IMAGE" --name busybox >/dev/null

mounts_before=$(grep -c . /proc/self/mountinfo)
store_before=$(snapshot "$STORE/trees")

note "the image's owners inside the pod, by each engine"
for engine in chown idmap; do
  out=$(pod run --shift $engine fixture:v1 -- sh -c 'stat -c "%u:%g %a" /home/app/notes /srv/data/only /bin/suid-tool; id -u; cat /proc/self/uid_map')
  lines=($out)
  assert_eq "${lines[0]} ${lines[1]}" "1234:5678 644" "$engine: owner of /home/app/notes"
  assert_eq "${lines[2]}" "0:0" "$engine: owner of /srv/data/only"
  assert_eq "${lines[5]}" "4755" "$engine: setuid bit"
  assert_eq "${lines[6]}" "1234" "$engine: the image's user"
  # uid_map: 0 HOST 65536, HOST a leased block, not the host's root
  assert_eq "${lines[7]}" 0 "$engine: uid_map inner"
  (( ${lines[8]} >= 524288 )) || fail "$engine: the pod's root is host uid ${lines[8]}, not a leased block"
  assert_eq "${lines[9]}" 65536 "$engine: uid_map count"
done

note "--shift none under a leased map: the store's owners show as nobody, and /etc/hostname and hosts, which the image lacks, are there"
out=$(pod run --name plain --net none --shift none fixture:v1 -- sh -c 'stat -c "%u:%g" /srv /etc; cat /etc/hostname; grep -c "^127.0.0.1" /etc/hosts; test -e /etc/resolv.conf && echo resolv || echo no-resolv; id -u')
assert_eq "$(echo $out)" "65534:65534 65534:65534 plain 1 no-resolv 1234" "none: owners, /etc files, the image's user"
uuid=$(pod list --json | jq -r '.[] | select(.name=="plain") | .uuid')
assert_eq "$(stat -c '%u:%g %a' "$STORE/pods/$uuid/upper/etc")" "$(stat -c '%u:%g %a' "$ROOTFS/etc")" "none: the upper etc/ keeps the image's owner and mode"

note "chown as root: metadata-only shifted copies over the layers; their data, whiteouts and opaque directories show through"
assert_eq "$(pod run --plan --json --shift chown fixture:v1 -- true | jq -r .rootfs.metacopy)" true "chown: --plan says metacopy"
out=$(pod run --name meta --net none --shift chown fixture:v1 -- sh -c 'cat /home/app/notes; ls /srv/data; test -e /etc/empty && echo present || echo gone; echo more >>/home/app/notes; wc -l </home/app/notes; stat -c %u:%g:%a /home/app/notes; md5sum /bin/suid-tool | cut -c1-32')
assert_eq "$(echo $out)" "owned by app only gone 2 1234:5678:644 $(md5sum <"$ROOTFS/bin/suid-tool" | cut -c1-32)" "chown: data, layers and a write inside"
uuid=$(pod list --json | jq -r '.[] | select(.name=="meta") | .uuid')
assert_eq "$(cat "$STORE/pods/$uuid/upper/home/app/notes")" "$(printf 'owned by app\nmore')" "chown: the write went to the pod's upper directory, data and all"
meta_notes=$(ls -d "$STORE"/shifted/*/root/home/app/notes | head -1)
[[ -n $meta_notes ]] || fail "chown: no shifted copy of home/app/notes in $STORE/shifted"
assert_contains "$(cat "${meta_notes%/root/home/app/notes}/origin")" '"data":"metacopy"' "chown: the entry is metadata-only"
assert_eq "$(stat -c '%s %b' "$meta_notes")" "13 0" "chown: the shifted copy has the size and no data"
getfattr -n trusted.overlay.metacopy "$meta_notes" >/dev/null 2>&1 || fail "chown: $meta_notes has no trusted.overlay.metacopy"
pod rm meta >/dev/null

note "idmap changed no inode of the store"
assert_eq "$(snapshot "$STORE/trees")" "$store_before" "store trees after idmap and chown pods"

note "chown: the second pod under the same map reuses the shifted trees (the released range is not held by them)"
map=0:$((0x6fff0000)):65536
pod run --rm --net none --userns $map --shift chown fixture:v1 -- sh -c :
shifted_before=$(ls "$STORE/shifted" | sort)
pod run --rm --net none --userns $map --shift chown fixture:v1 -- sh -c : || fail "a second pod under $map was refused"
assert_eq "$(ls "$STORE/shifted" | sort)" "$shifted_before" "shifted trees after the second pod (reused, none built)"

note "whiteouts and opaque directories of the second layer"
out=$(pod run fixture:v1 -- sh -c 'ls /srv/data; test -e /etc/empty && echo present || echo gone')
assert_eq "$out" "$(printf 'only\ngone')" "layer 2 hides layer 1"

note "writes land in the upper directory with the pod's ids"
pod run --name writer fixture:v1 -- sh -c 'echo hi > /home/app/new' >/dev/null
uuid=$(pod list --json | jq -r '.[] | select(.name=="writer") | .uuid')
upper=$STORE/pods/$uuid/upper
[[ -f $upper/home/app/new ]] || fail "the write is not in the upper directory"
host_uid=$(stat -c %u "$upper/home/app/new")
(( host_uid >= 524288 + 1234 )) || fail "upper file owned by host uid $host_uid, not the pod's 1234"
[[ ! -e $ROOTFS/home/app/new ]] || fail "the write reached the fixture"

note "hostname, pid 1, zombies"
assert_eq "$(pod run --hostname h1 busybox -- hostname)" h1 "hostname"
assert_eq "$(pod run busybox -- sh -c 'echo $$')" 2 "the app is not pid 1"
init=$(pod run busybox -- cat /proc/1/comm)
[[ $init != cat ]] || fail "pid 1 is the app"
zombies=$(pod run busybox -- sh -c '(sh -c "sleep 0 & exec sleep 1" &); sleep 2; grep -l "^State:.Z" /proc/[0-9]*/status | wc -l')
assert_eq "$zombies" 0 "zombies left"

note "exit codes"
for code in 0 3; do
  rc=0; pod run busybox -- sh -c "exit $code" || rc=$?
  assert_eq $rc $code "exit $code"
done
expect_fail 127 pod run busybox -- /no/such/cmd
assert_contains "$ERR" "/no/such/cmd"
expect_fail 126 pod run busybox -- /etc/passwd
rc=0; pod run busybox -- sh -c 'kill -9 $$' || rc=$?
assert_eq $rc 137 "killed by SIGKILL"

note "isolation: /proc/sys read-only, no host fds, the pod binary out of reach"
expect_fail 1 pod run busybox -- sh -c 'echo x > /proc/sys/kernel/hostname'
exec 9</etc/hostname
fds=$(pod run busybox -- ls /proc/self/fd | tr '\n' ' ')
exec 9<&-
assert_eq "$fds" "0 1 2 3 " "fds inside the pod (3 is ls's own)"
expect_fail 1 pod run busybox -- sh -c 'echo x >> /proc/1/exe'
assert_eq "$(sha256sum <"$POD")" "$pod_sha" "the pod binary after a pod tried to write it"

note "a lease per pod while it lives, none after gc"
pod run -d --name sleeper busybox -- sleep 60 >/dev/null
assert_eq "$(pod list --json | jq -r '.[] | select(.name=="sleeper") | .state')" running "state"
assert_eq "$(pod idmap list --json | jq -r '.[] | select(.state=="leased") | .name' | grep -c '^sleeper$')" 1 "the running pod's lease"
assert_eq "$(pod enter sleeper -- hostname)" sleeper "enter"
pod stop sleeper --timeout 2
assert_eq "$(pod list --json | jq -r '.[] | select(.name=="sleeper") | .state')" exited "state after stop"
pod gc >/dev/null
assert_eq "$(pod list --json)" "[]" "pods after gc"
assert_eq "$(pod idmap list --json | jq '[.[] | select(.state=="leased")] | length')" 0 "leases after gc"
assert_eq "$(grep -c . /proc/self/mountinfo)" "$mounts_before" "mounts after gc"

note "volumes: plain, read-only, idmap"
vol=$T/vol; mkdir "$vol"; echo host >"$vol/f"
out=$(pod run --rm --volume "$vol:/v" busybox -- cat /v/f)
assert_eq "$out" host "volume content"
expect_fail 1 pod run --rm --volume "$vol:/v:ro" busybox -- sh -c 'echo x > /v/g'
out=$(pod run --rm --volume "$vol:/v:idmap" busybox -- stat -c %u /v/f)
assert_eq "$out" 0 "an idmapped volume shows host root's file as the pod's root"

note "volumes: chown re-owns the tree into the pod's map, and from one pod's map into the next's"
cv=$T/cv; mkdir -p "$cv/vol/app"; echo data >"$cv/vol/app/f"; chown -R 1234:5678 "$cv/vol/app"
m1=0:$((0x6ffe0000)):65536 m2=0:$((0x6ffd0000)):65536
out=$(pod run --rm --net none --userns $m1 --volume "$cv/vol:/v:chown" busybox -- sh -c 'stat -c %u:%g /v /v/app /v/app/f; echo w > /v/new')
assert_eq "$(echo $out)" "0:0 1234:5678 1234:5678" "chown: owners inside the first pod"
assert_eq "$(stat -c %u:%g "$cv/vol" "$cv/vol/app" "$cv/vol/new" | tr '\n' ' ')" \
  "$((0x6ffe0000)):$((0x6ffe0000)) $((0x6ffe0000 + 1234)):$((0x6ffe0000 + 5678)) $((0x6ffe0000)):$((0x6ffe0000)) " "chown: host owners"
out=$(pod run --rm --net none --userns $m2 --volume "$cv/vol:/v:chown" busybox -- stat -c %u:%g /v /v/app/f /v/new)
assert_eq "$(echo $out)" "0:0 1234:5678 0:0" "chown: owners inside a pod of another map"
assert_eq "$(stat -c %u "$cv/vol/app/f")" $((0x6ffd0000 + 1234)) "chown: host owner after the second pod"
pod run -d --name cv-user --net none --userns $m2 --volume "$cv/vol:/v:chown" busybox -- sleep 60 >/dev/null
expect_fail 125 pod run --rm --net none --userns $m1 --volume "$cv/vol/app:/v:chown" busybox -- true
assert_contains "$ERR" "volume '$cv/vol/app': pod 'cv-user' ("
assert_contains "$ERR" "is running with the volume '$cv/vol': stop it first (pod stop cv-user) (EBUSY)"
assert_eq "$(stat -c %u "$cv/vol/app/f")" $((0x6ffd0000 + 1234)) "chown: a refused pod changed nothing"
pod stop cv-user --timeout 1; pod rm cv-user
expect_fail 125 pod run --rm --volume "$cv/vol:/v:chown,idmap" busybox -- true
assert_eq "$ERR" "pod: --volume '$cv/vol:/v:chown,idmap': idmap, chown and acl are three ways to the same end: choose one (EINVAL)"

note "volumes: acl grants the pod's ids access by ACL entries, the owners unchanged"
for d in "$T/av" "$T/av-plain"; do mkdir -p "$d/d"; echo secret >"$d/d/f"; chmod 700 "$d" "$d/d"; chmod 600 "$d/d/f"; done
expect_fail 1 pod run --rm --net none --userns $m1 --volume "$T/av-plain:/v" busybox -- cat /v/d/f
assert_contains "$ERR" "Permission denied"
out=$(pod run --rm --net none --userns $m1 --volume "$T/av:/v:acl" busybox -- sh -c 'cat /v/d/f; echo new > /v/d/g; stat -c %u:%g /v/d/f')
assert_eq "$(echo $out)" "secret 65534:65534" "acl: the pod reads and writes, the owner stays the host's (unmapped inside)"
assert_eq "$(stat -c %u:%g "$T/av/d/f")" "0:0" "acl: host owner unchanged"
r=$((0x6ffe0000))
assert_eq "$(getfacl -n --omit-header "$T/av/d/f" | grep -E "^(user|group):$r:" | tr '\n' ' ')" "user:$r:rw- group:$r:rw- " "acl: entries on a file"
assert_contains "$(getfacl -n --omit-header -d "$T/av/d")" "user:$r:rwx" "acl: default entry on a directory"
assert_contains "$(getfacl -n --omit-header "$T/av/d/g")" "user:$r:rwx" "acl: a file the pod made inherits the grant"

note "--plan changes nothing"
before=$(snapshot "$STORE")
out=$(pod run --plan --shift chown fixture:v1 -- true)
assert_contains "$out" "rootfs     chown"
assert_contains "$out" "uid map 0:"
pod run --plan --json busybox | jq -e '.rootfs.engine and .userns.uid_map and (.apps[0].mounts | length > 5)' >/dev/null
assert_eq "$(snapshot "$STORE")" "$before" "the store after --plan"

note "names are checked before anything is made"
expect_fail 125 pod run --name Bad_Name busybox -- true
assert_contains "$ERR" "pod name 'Bad_Name' is not allowed"
note "an image with owners outside the pod's map is refused, naming the path and the id"
mkdir -p "$T/wide/bin" "$T/wide/data"
cp /bin/busybox "$T/wide/bin/"; ln -s busybox "$T/wide/bin/sh"
: >"$T/wide/data/big"; chown 70000:70000 "$T/wide/data/big"
tar -C "$T/wide" -cf "$T/wide.tar" .
pod image import "$T/wide.tar" --format rootfs --name wide >/dev/null
expect_fail 125 pod run --userns auto:size=65536 wide -- true
assert_contains "$ERR" "'/data/big'"
assert_contains "$ERR" "uid 70000, outside the pod's uid map"
assert_eq "$(pod run --rm --userns auto:size=131072 wide -- /bin/sh -c 'stat -c %u /data/big')" 70000 \
  "the owner inside a map large enough"

note "a plain --userns auto covers the image's ids above 65535 with extents of their own"
: >"$T/wide/data/far"; chown 4000000000:3000000 "$T/wide/data/far"
tar -C "$T/wide" -cf "$T/wide2.tar" .
pod image import "$T/wide2.tar" --format rootfs --name wide2 >/dev/null
plan=$(pod run --plan --json wide2 -- true)
umap=$(jq -r '.userns.uid_map' <<<"$plan"); gmap=$(jq -r '.userns.gid_map' <<<"$plan")
[[ $umap =~ ^0:([0-9]+):65536,70000:([0-9]+):1,4000000000:([0-9]+):1$ ]] || fail "uid map for wide2: $umap"
(( BASH_REMATCH[2] == BASH_REMATCH[1] + 65536 && BASH_REMATCH[3] == BASH_REMATCH[2] + 1 )) ||
  fail "the extents of $umap do not lie side by side"
[[ $gmap =~ ^0:[0-9]+:65536,70000:[0-9]+:1,3000000:[0-9]+:1$ ]] || fail "gid map for wide2: $gmap"
for shift in chown idmap; do
  out=$(pod run --rm --shift $shift wide2 -- /bin/sh -c \
    'stat -c "%u:%g" /data/big /data/far; wc -l < /proc/self/uid_map; wc -l < /proc/self/gid_map')
  assert_eq "$out" "$(printf '70000:70000\n4000000000:3000000\n3\n3')" "owners and maps inside ($shift)"
done

note "a pod refused at its network gives its lease back"
expect_fail 125 pod run --net nosuchnet busybox -- true
assert_contains "$ERR" "no network 'nosuchnet'"

pod gc >/dev/null
assert_eq "$(pod idmap list --json | jq '[.[] | select(.state=="leased")] | length')" 0 "leases after everything"
echo ok
