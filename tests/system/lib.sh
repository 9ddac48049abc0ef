# Shared helpers for system tests: source it first. Each test runs `pod` as a user
# would, with a store of its own under a temporary directory removed at exit.
set -euo pipefail

: "${POD:?POD must name the pod binary}"
: "${POD_TESTS_DIR:?}"
T=$(mktemp -d /tmp/pod-test.XXXXXX)
chmod 755 "$T"
STORE=$T/store
CLEANUPS=()
cleanup() {
  local rc=$?
  for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[i]}" || true; done
  rm -rf "$T"
  exit $rc
}
trap cleanup EXIT
at_exit() { CLEANUPS+=("$1"); }

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*" >&2; }

# Skip (exit 77) unless POD_TESTS_MUST_RUN=1, where a skip is a failure.
skip() {
  if [[ ${POD_TESTS_MUST_RUN:-0} == 1 ]]; then fail "cannot run: $* (POD_TESTS_MUST_RUN=1)"; fi
  echo "SKIP: $*" >&2; exit 77
}
need_root() { [[ $(id -u) == 0 ]] || skip "needs root"; }

pod() { "$POD" --root "$STORE" "$@"; }

assert_eq() { [[ "$1" == "$2" ]] || fail "${3:-values differ}: got '$1', want '$2'"; }
assert_contains() { [[ "$1" == *"$2"* ]] || fail "${3:-output}: '$1' does not contain '$2'"; }

# Runs a command that must fail with exit status $1; its stderr is left in $ERR.
expect_fail() {
  local want=$1; shift
  local rc=0
  ERR=$("$@" 2>&1 >/dev/null) || rc=$?
  [[ $rc == "$want" ]] || fail "'$*' exited $rc, want $want; stderr: $ERR"
}

# A listing of every inode below DIR: path, type, mode, owner, size, link target,
# content hash and xattrs. Two equal snapshots mean nothing changed.
snapshot() {
  local dir=$1
  (cd "$dir" && find . -printf '%p %y %m %U:%G %s %l %T@\n' | LC_ALL=C sort
   cd "$dir" && find . -type f -exec sha256sum {} + | LC_ALL=C sort
   getfattr -R -d -m - --absolute-names "$dir" 2>/dev/null | LC_ALL=C sort) || true
}

# Root's pods default to the CNI bridge: pod installs /etc/pod/net.d/pod0.conflist and the
# pod0 bridge on first use. A test that may make them removes them at exit, unless they
# were there before.
POD0_MASQUERADE=(POSTROUTING -s 10.77.0.0/24 ! -o pod0 -m comment --comment "pod network pod0" -j MASQUERADE)
keep_default_network_as_found() {
  [[ -e /etc/pod/net.d/pod0.conflist ]] || at_exit "rm -f /etc/pod/net.d/pod0.conflist; rmdir /etc/pod/net.d /etc/pod 2>/dev/null"
  ip link show pod0 >/dev/null 2>&1 || at_exit "ip link del pod0 2>/dev/null"
  # host-local's bookkeeping (its lock, last_reserved_ip) for pod0, when the test began it
  [[ -e /run/pod/cni/networks/pod0 ]] ||
    at_exit "rm -rf /run/pod/cni/networks/pod0; rmdir /run/pod/cni/networks /run/pod/cni /run/pod 2>/dev/null"
  iptables -w -t nat -C "${POD0_MASQUERADE[@]}" 2>/dev/null ||
    at_exit "iptables -w -t nat -D $(printf '%q ' "${POD0_MASQUERADE[@]}") 2>/dev/null"
}

# An ordinary user with subordinate ids, removed at exit. Sets TEST_USER, SUBID_START.
make_test_user() {
  need_root
  command -v newuidmap >/dev/null || skip "newuidmap missing (Debian: uidmap)"
  TEST_USER=podt$$
  SUBID_START=${1:-400000}
  local count=${2:-65536}
  cp /etc/subuid "$T/subuid.orig"; cp /etc/subgid "$T/subgid.orig"
  at_exit "cp '$T/subuid.orig' /etc/subuid; cp '$T/subgid.orig' /etc/subgid"
  useradd --create-home --shell /bin/bash "$TEST_USER"
  # pod's keeper of the store namespace (pod-userns) outlives the commands: end it, and
  # anything else the user still runs, before the user goes
  at_exit "pkill -KILL -U $TEST_USER; sleep 0.1; userdel --remove $TEST_USER 2>/dev/null"
  # XDG_RUNTIME_DIR, as a login session has it (/run/user/UID): the keeper's pid lives there
  TEST_RUNTIME_DIR=$T/run-$TEST_USER
  install -d -m 0700 -o "$TEST_USER" -g "$TEST_USER" "$TEST_RUNTIME_DIR"
  # useradd gives new users a range of its own; the test wants exactly this one.
  sed -i "/^$TEST_USER:/d" /etc/subuid /etc/subgid
  echo "$TEST_USER:$SUBID_START:$count" >>/etc/subuid
  echo "$TEST_USER:$SUBID_START:$count" >>/etc/subgid
  # The build tree may be where the user cannot reach (/root/project): give the user
  # (and every later call) a copy of pod, and pod-image beside it, that it can run.
  install -m 0755 "$POD" "$T/pod"
  install -m 0755 "$(dirname "$POD")/pod-image" "$T/pod-image"
  POD=$T/pod
}

# Runs a command as TEST_USER, in its home, with its own XDG dirs.
as_user() {
  local home; home=$(getent passwd "$TEST_USER" | cut -d: -f6)
  setpriv --reuid "$TEST_USER" --regid "$TEST_USER" --init-groups --reset-env \
    env HOME="$home" PATH=/usr/sbin:/usr/bin:/sbin:/bin XDG_DATA_HOME="$home/.local/share" \
    XDG_RUNTIME_DIR="$TEST_RUNTIME_DIR" "$@"
}
