#!/bin/bash
# pod run as an ordinary user with subordinate ids: the pod's user namespace is the
# store's (--userns keep), owners inside are the image's, nothing of the host is root.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fixtures.sh"
make_test_user 400000 65536
uid=$(id -u "$TEST_USER")

ROOTFS=$T/rootfs
make_rootfs "$ROOTFS"
make_oci_layout "$ROOTFS" "$T/layout" v1
skopeo copy -q "oci:$T/layout:v1" "oci-archive:$T/fixture.tar:v1"
cp "$POD_DEFAULT_IMAGE" "$T/busybox.tar"
chmod 644 "$T/fixture.tar" "$T/busybox.tar"
upod() { as_user "$POD" "$@"; }
upod image import "$T/fixture.tar" --name fixture:v1 >/dev/null 2>&1
upod image import "$T/busybox.tar" --name busybox >/dev/null 2>&1
mounts_before=$(grep -c . /proc/self/mountinfo)

note "owners, ids and maps inside a rootless pod"
out=$(upod run fixture:v1 -- sh -c 'stat -c "%u:%g" /home/app/notes /srv/data/file; id -u; id -g; cat /proc/self/uid_map' 2>&1) \
  || fail "rootless pod run failed: $out"
lines=($out)
assert_eq "${lines[0]}" "1234:5678" "owner of /home/app/notes"
assert_eq "${lines[1]}" "42:43" "owner of /srv/data/file"
assert_eq "${lines[2]}:${lines[3]}" "1234:5678" "the image's user (from its config)"
assert_eq "${lines[4]} ${lines[5]} ${lines[6]}" "0 $uid 1" "uid 0 is the user"
assert_eq "${lines[7]} ${lines[8]} ${lines[9]}" "1 400000 65536" "then the subordinate range"

note "the pod's root is the user on the host: writes land in upper/ as the user"
upod run --name w1 --user 0 fixture:v1 -- sh -c 'echo hi > /etc/new; hostname' >/dev/null
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
ustore=$home/.local/share/pod
uuid=$(upod list --json | jq -r '.[] | select(.name=="w1") | .uuid')
assert_eq "$(stat -c %u "$ustore/pods/$uuid/upper/etc/new")" "$uid" "owner of a file the pod's root wrote"
assert_eq "$(cat "$ustore/pods/$uuid/upper/etc/new")" hi "what the pod wrote, after its end"

note "the root filesystem is a volatile overlay: the pod's end does not sync the store's filesystem"
assert_contains "$(upod run --rm fixture:v1 -- cat /proc/self/mountinfo | grep ' / / ')" volatile "the root mount's options"

note "--userns auto: a leased range of the user's subordinate ids, the image's owners shifted into it"
# (The pod's ids cannot pass the store's 0700 directories: the apps open their root's
# mount point before they take those ids.)
out=$(upod run --name au --userns auto --user 0 fixture:v1 -- \
  sh -c 'stat -c "%u:%g" /home/app/notes; id -u; cat /proc/self/uid_map; echo x > /etc/auto-new' 2>&1) \
  || fail "rootless --userns auto failed: $out"
lines=($out)
assert_eq "${lines[0]}" "1234:5678" "owner of /home/app/notes in an auto pod"
assert_eq "${lines[1]}" 0 "the pod's root"
(( ${lines[3]} >= 1 )) || fail "the auto pod's root is the user itself: ${lines[*]}"
uuid=$(upod list --json | jq -r '.[] | select(.name=="au") | .uuid')
# store namespace uid N >= 1 is host uid 400000 + N - 1
assert_eq "$(stat -c %u "$ustore/pods/$uuid/upper/etc/auto-new")" "$((400000 + ${lines[3]} - 1))" \
  "owner of a file the auto pod's root wrote"
upod rm au >/dev/null

assert_eq "$(upod run --hostname rl busybox -- hostname)" rl "hostname"
assert_eq "$(upod run busybox -- sh -c 'echo $$')" 2 "the app's pid"
rc=0; upod run busybox -- sh -c 'exit 7' || rc=$?
assert_eq $rc 7 "exit code"
expect_fail 127 upod run busybox -- nosuchcommand
assert_contains "$ERR" "nosuchcommand"

rc=0; upod run busybox -- sh -c 'kill -9 $$' || rc=$?
assert_eq $rc 137 "exit code of an app killed by SIGKILL"
expect_fail 126 upod run busybox -- /etc/passwd

note "two apps in one pod: the same network, not the same files; the first failure is the pod's"
rc=0
out=$(upod run busybox -- sh -c 'echo hello > /tmp/a; nc -l -p 7000 < /tmp/a; exit 3' \
        --- busybox -- sh -c 'sleep 1; nc 127.0.0.1 7000; test -e /tmp/a && echo sees || echo apart') || rc=$?
assert_eq "$(echo $out)" "hello apart" "what the second app got over loopback, and its own /tmp"
assert_eq $rc 3 "exit code of the pod"

note "isolation: no host fds, no /proc/sys writes, no way to the pod binary"
exec 9</etc/hostname
assert_eq "$(upod run busybox -- ls /proc/self/fd | tr '\n' ' ')" "0 1 2 3 " "fds inside (3 is ls's own)"
exec 9<&-
expect_fail 1 upod run busybox -- sh -c 'echo x > /proc/sys/kernel/hostname'
expect_fail 1 upod run busybox -- sh -c 'echo x >> /proc/1/exe'
expect_fail 1 upod run busybox -- sh -c 'ls -l /proc/1/root/'

note "-t: the pod's own pty and session"
out=$(as_user script -qec "$POD run -t busybox -- sh -c 'tty; cut -d\" \" -f6 /proc/\$\$/stat'" /dev/null \
        < <(sleep 5) | tr -d '\r')
assert_eq "$(echo $out)" "/dev/pts/0 2" "the app's terminal and session"

note "network: none has only lo"
assert_eq "$(upod run --net none busybox -- ls /sys/class/net | tr '\n' ' ')" "lo " "interfaces"

note "detach, list, enter, stop, rm"
upod run -d --name bg busybox -- sleep 60 >/dev/null
assert_eq "$(upod list --json | jq -r '.[] | select(.name=="bg") | .state')" running "state"
assert_eq "$(upod enter bg -- hostname)" bg "enter"
upod stop bg --timeout 2
upod rm bg
[[ -z $(upod list --json | jq -r '.[] | select(.name=="bg") | .uuid') ]] || fail "bg still listed after rm"
upod gc >/dev/null
assert_eq "$(upod list --json)" "[]" "pods after gc"
[[ -z $(ls -A "$ustore/pods" 2>/dev/null | grep -v '^\.' || true) ]] || fail "pod directories left: $(ls -A "$ustore/pods")"
assert_eq "$(grep -c . /proc/self/mountinfo)" "$mounts_before" "mounts on the host"

note "a pod binary the pod's ids could write runs pods from a sealed copy of itself (the /proc/self/exe attack)"
install -d -m 0755 "$T/own"
install -m 0755 -o "$TEST_USER" "$POD" "$T/own/pod"
own_sha=$(sha256sum <"$T/own/pod")
as_user "$T/own/pod" run -d --name sealed busybox -- sleep 30 >/dev/null
pid=$(upod status --json sealed | jq -r .pid)
assert_eq "$(readlink /proc/$pid/exe)" "/memfd:pod-sealed (deleted)" "the init's executable, from a user-owned pod"
{ echo x >>"/proc/$pid/exe"; } 2>/dev/null && fail "root could write the sealed copy"
assert_eq "$(as_user "$T/own/pod" enter sealed -- true; echo $?)" 0 "enter with the user-owned pod"
upod stop sealed --timeout 1 && upod rm sealed
assert_eq "$(sha256sum <"$T/own/pod")" "$own_sha" "the user-owned pod binary"
upod run -d --name plain busybox -- sleep 30 >/dev/null
assert_eq "$(readlink /proc/$(upod status --json plain | jq -r .pid)/exe)" "$POD" "the init's executable, from a root-owned pod (nothing to seal)"
upod stop plain --timeout 1 && upod rm plain

note "the store namespace's keeper: later commands join its namespace; a stale pid file is not trusted"
pidfile=$TEST_RUNTIME_DIR/pod/userns.pid
keeper=$(cat "$pidfile")
assert_eq "$(ps -o uid=,comm= -p "$keeper" | tr -s ' ')" " $uid pod-userns" "the keeper process"
assert_eq "$(readlink /proc/$keeper/cwd) $(ls /proc/$keeper/fd | wc -l)" "/ 0" "the keeper's cwd and open files"
ns=$(readlink "/proc/$keeper/ns/user")
assert_eq "$(upod run busybox -- readlink /proc/self/ns/user)" "$ns" "a pod's user namespace (--shift none: the store's)"
assert_eq "$(cat "$pidfile")" "$keeper" "the keeper after a join"
kill "$keeper"
for _ in $(seq 50); do [[ -e /proc/$keeper ]] || break; sleep 0.1; done
[[ ! -e /proc/$keeper && ! -e $pidfile ]] || fail "the keeper did not end on SIGTERM, or left its pid file"
# another process of the user, in the host's user namespace, named by the pid file: not joined, not signalled
as_user sleep 30 &
sleep 0.3
decoy=$(pgrep -u "$TEST_USER" -x sleep)
echo "$decoy" >"$pidfile"
chown "$TEST_USER" "$pidfile"
out=$(upod run busybox -- cat /proc/self/uid_map | tr -s ' ' | tr '\n' ';')
assert_eq "$out" " 0 $uid 1; 1 400000 65536;" "the pod's maps with a stale pid file"
[[ -e /proc/$decoy ]] || fail "the process the stale pid file named was harmed"
new=$(cat "$pidfile")
[[ $new != "$decoy" ]] && assert_eq "$(ps -o comm= -p "$new")" pod-userns "the new keeper"
[[ $(readlink "/proc/$new/ns/user") != "$(readlink /proc/self/ns/user)" ]] || fail "the new keeper is in the host's namespace"
kill "$decoy"
echo ok
