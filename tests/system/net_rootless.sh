#!/bin/bash
# An ordinary user's pods: slirp by default (pasta or slirp4netns) with --port serving
# HTTP to the host, DNS through the helper, the helper gone after stop and gc; --net
# none has loopback only, up; /dev/net/tun the user cannot open is a clear error.
source "$(dirname "$0")/lib.sh"
make_test_user 410000 65536
command -v pasta >/dev/null || command -v slirp4netns >/dev/null || skip "no slirp helper (Debian: passt)"
command -v curl >/dev/null || skip "curl missing"
command -v jq >/dev/null || skip "jq missing"
helper=slirp4netns
command -v pasta >/dev/null && helper=pasta

# /dev/net/tun is 0600 here (stock Debian: 0666): open it to users for this test only.
tun_mode=$(stat -c %a /dev/net/tun)
at_exit "chmod $tun_mode /dev/net/tun"
chmod 0666 /dev/net/tun

cp "$POD_DEFAULT_IMAGE" "$T/busybox.tar"; chmod 644 "$T/busybox.tar"
upod() { as_user "$POD" "$@"; }
upod image import "$T/busybox.tar" --name busybox >/dev/null 2>&1
uid=$(id -u "$TEST_USER")
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
at_exit "for p in web k; do as_user '$POD' stop \$p --timeout 1 >/dev/null 2>&1; done; as_user '$POD' gc >/dev/null 2>&1"
mounts_before=$(grep -c . /proc/self/mountinfo)
retry() { for _ in $(seq 50); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done; "$@"; }
# A process that ended (a zombie until whoever adopted it reaps it counts as ended).
ended() { [[ ! -e /proc/$1/status ]] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

note "--net none: loopback only, and up"
out=$(upod run --net none busybox -- sh -c 'ls /sys/class/net; ip link show lo')
assert_eq "$(echo "$out" | head -1)" lo "interfaces"
assert_contains "$out" "LOOPBACK,UP"

note "the default is slirp by $helper, with the helper's DNS forwarder"
assert_contains "$(upod run --plan busybox -- true)" "slirp by $helper"
resolv=$(upod run busybox -- cat /etc/resolv.conf)
if [[ $helper == pasta ]]; then assert_eq "$resolv" "nameserver 169.254.1.1" "resolv.conf"
else assert_eq "$resolv" "nameserver 10.0.2.3" "resolv.conf"; fi
# The helper starts while the apps set up their roots; an app execs only once the
# network is up: its first command sees eth0 with its address.
assert_contains "$(upod run busybox -- ip -o -4 addr show eth0)" "inet "

note "an app that cannot start: its error, and the helper stopped"
expect_fail 127 upod run busybox -- /no/such/program
assert_contains "$ERR" "/no/such/program"
for _ in $(seq 25); do ps -o comm= -u "$uid" | grep -qx 'passt.avx2\|pasta\|passt\|slirp4netns' || break; sleep 0.2; done
assert_eq "$(ps -o stat=,comm= -u "$uid" | grep -v '^Z' | grep -c 'pass\|slirp' || true)" 0 "helpers left after a failed start"

note "a run that fails before its pod starts: the helper launched for it early is stopped"
# (an ordinary user's pod on slirp gets its namespace and helper before the image is read)
expect_fail 125 upod run --net slirp no-such-image -- true
assert_contains "$ERR" "no-such-image"
for _ in $(seq 25); do ps -o comm= -u "$uid" | grep -qx 'passt.avx2\|pasta\|passt\|slirp4netns' || break; sleep 0.2; done
assert_eq "$(ps -o stat=,comm= -u "$uid" | grep -v '^Z' | grep -c 'pass\|slirp' || true)" 0 "helpers left after a failed run"

note "a pod with a user namespace of its own (--userns auto) gets its helper after its init"
assert_contains "$(upod run --userns auto busybox -- ip -o -4 addr show eth0)" "inet "

note "slirp with --port serves HTTP to the host"
upod run -d --name web --port 18090:80 busybox -- \
  sh -c 'mkdir /www && echo hi-from-rootless > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
retry curl -sf http://127.0.0.1:18090/
assert_eq "$(curl -sf http://127.0.0.1:18090/)" hi-from-rootless "HTTP through the port"
st=$(upod status web --json)
assert_eq "$(jq -r .net.mode <<<"$st")" slirp "mode"
hpid=$(jq -r .net.helper_pid <<<"$st")
[[ -d /proc/$hpid ]] || fail "helper pid $hpid is not running"
assert_eq "$(jq -r .netns <<<"$st")" "/proc/$(jq -r .pid <<<"$st")/ns/net" "netns of a user's pod"
expect_fail 125 upod run --port 18090:80 busybox -- true
assert_contains "$ERR" "host port 18090/tcp on 127.0.0.1 is already in use"

note "stop ends the helper and frees the port; gc leaves nothing"
upod stop web --timeout 2
ended "$hpid" || fail "helper $hpid still runs after stop"
[[ -z $(curl -s -m 2 http://127.0.0.1:18090/ || true) ]] || fail "port 18090 still answers after stop"
upod gc >/dev/null
assert_eq "$(upod list --json)" "[]" "pods after gc"
# (the store namespace's keeper, pod-userns, stays by design)
assert_eq "$(ps -o stat=,comm= -u "$uid" | grep -v '^Z' | grep -vc ' pod-userns$' || true)" 0 "processes of the user left"
assert_eq "$(grep -c . /proc/self/mountinfo)" "$mounts_before" "mounts on the host"

if command -v slirp4netns >/dev/null; then
  note "slirp4netns: TCP ports by pod's own forwarder, both ways, and gone with the pod"
  mkdir -p "$T/s4n-bin"
  for t in newuidmap newgidmap slirp4netns nsenter tc ip sh; do ln -sf "$(command -v $t)" "$T/s4n-bin/$t"; done
  s4n() { setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --init-groups --reset-env \
    env HOME="$home" XDG_DATA_HOME="$home/.local/share" PATH="$T/s4n-bin" "$POD" "$@"; }
  # port 80: HTTP; port 81: counts what a client sends until it closes its side, and says so
  s4n run -d --name w4 --port 18092:80 --port 18093:81 busybox -- sh -c \
    'mkdir /www && echo hi-through-forwarder > /www/index.html && httpd -p 80 -h /www && exec nc -ll -p 81 -e wc -c' >/dev/null
  retry curl -sf http://127.0.0.1:18092/
  assert_eq "$(curl -sf http://127.0.0.1:18092/)" hi-through-forwarder "HTTP through the forwarder"
  sent=$(python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 18093))
s.sendall(b"x" * 300000)
s.shutdown(socket.SHUT_WR)
print(s.makefile().read().strip())')
  assert_eq "$sent" 300000 "bytes the pod counted from the host"
  st=$(upod status w4 --json)
  assert_eq "$(jq -r .net.helper <<<"$st")" slirp4netns "helper"
  fpid=$(jq -r .net.forwarder_pid <<<"$st")
  [[ $fpid -gt 0 && -d /proc/$fpid ]] || fail "forwarder pid $fpid is not running"
  upod stop w4 --timeout 2
  ended "$fpid" || fail "forwarder $fpid still runs after stop"
  [[ -z $(curl -s -m 2 http://127.0.0.1:18092/ || true) ]] || fail "port 18092 still answers after stop"
  upod rm w4 >/dev/null
fi

note "a helper killed with pod run -9 is stopped by gc"
(exec setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --init-groups --reset-env \
  env HOME="$home" XDG_DATA_HOME="$home/.local/share" PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  "$POD" run --name k busybox -- sleep 30 >/dev/null 2>&1) &
runner=$!
helper_up() { [[ $(upod status k --json 2>/dev/null | jq -r '"\(.state) \(.net.helper_pid)"') == running\ [1-9]* ]]; }
retry helper_up
kpid=$(upod status k --json | jq -r .net.helper_pid)
kill -9 $runner; wait $runner 2>/dev/null || true
for _ in $(seq 25); do [[ $(upod status k --json | jq -r .state) != running ]] && break; sleep 0.2; done
upod gc >/dev/null
ended "$kpid" || fail "helper $kpid still runs after gc"

note "a helper launched before the pod's record, its pod run killed: claimed in the store, stopped by gc"
store=$home/.local/share/pod
# The store's lock held: pod run waits for the store there, its helper launched.
coproc HOLDER { exec python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(60)' "$store/lock"; }
holder=$HOLDER_PID
read -r _ <&"${HOLDER[0]}"
(exec setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --init-groups --reset-env \
  env HOME="$home" XDG_DATA_HOME="$home/.local/share" PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  "$POD" run --name early busybox -- sleep 30 >/dev/null 2>&1) &
runner=$!
claim() { compgen -G "$store/pods/.helper-*"; }
claimed() { [[ -n $(claim) && -s $(claim | head -1) ]]; }
retry claimed
epid=$(cat "$(claim | head -1)")
kill -9 $runner; wait $runner 2>/dev/null || true
kill $holder; wait $holder 2>/dev/null || true
! ended "$epid" || fail "the helper ($epid) ended with its pod run: the leak this guards against did not happen"
upod gc >/dev/null
for _ in $(seq 25); do ended "$epid" && break; sleep 0.2; done
ended "$epid" || fail "helper $epid of a killed pod run still runs after gc"
assert_eq "$(claim)" "" "claims left after gc"

note "/dev/net/tun the user cannot open: a clear error for --net slirp, none by default"
chmod 0600 /dev/net/tun
expect_fail 125 upod run --net slirp busybox -- true
assert_contains "$ERR" "/dev/net/tun"
assert_eq "$(upod run busybox -- ls /sys/class/net)" lo "interfaces by default"
assert_contains "$(upod run --plan busybox -- true)" "loopback only"
chmod 0666 /dev/net/tun
upod gc >/dev/null
echo ok
