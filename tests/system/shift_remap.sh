#!/bin/bash
# pod volume remap end to end: kill -9 at several points then a rerun equals an
# uninterrupted run; as an ordinary user, a remap inside the user's ranges works and a
# target outside them is refused with the exact message.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
command -v setfacl >/dev/null || skip "setfacl missing (Debian: acl)"
command -v setcap >/dev/null || skip "setcap missing (Debian: libcap2-bin)"

FROM=0:100000:65536
TO=0:200000:65536

# Owners, modes and the xattrs that carry ids (capabilities, ACLs), relative paths.
state() {
  (cd "$1" && find . -printf '%p %y %m %U:%G %l\n' | LC_ALL=C sort
   cd "$1" && getfattr -R -h -d -e hex -m '^(security\.capability|system\.posix_acl_.*)$' . 2>/dev/null) || true
}

# A tree that takes most of a second: 50 directories of 700 files, owners spread over the
# map, a setuid file, a capability and ACLs in each directory, hard links across them.
make_tree() {
  local d=$1 i
  mkdir -p "$d"
  python3 - "$d" <<'PY'
import os, sys
top = sys.argv[1]
for i in range(50):
    sub = os.path.join(top, f"d{i}")
    os.mkdir(sub)
    os.chown(sub, 100000 + i, 100000 + i)
    for j in range(700):
        p = os.path.join(sub, f"f{j}")
        with open(p, "w") as f:
            f.write("x")
        os.chown(p, 100000 + (i * 700 + j) % 65536, 100000 + j)
    os.chmod(os.path.join(sub, "f1"), 0o4755)
    os.link(os.path.join(sub, "f2"), os.path.join(top, f"link{i}"))
    os.symlink("/etc", os.path.join(sub, "etc"))
    os.lchown(os.path.join(sub, "etc"), 100001, 100001)
os.chown(top, 100000, 100000)
PY
  for ((i = 0; i < 50; i++)); do
    setcap cap_net_raw+ep "$d/d$i/f3"
    setfacl -m u:100033:rw,g:165535:r "$d/d$i/f4"
    setfacl -d -m u:100044:rx "$d/d$i"
  done
}

note "reference: an uninterrupted run"
make_tree "$T/ref/vol"
t0=$EPOCHREALTIME
"$POD" --quiet volume remap "$T/ref/vol" --from $FROM --to $TO >"$T/ref.out"
t1=$EPOCHREALTIME
note "$(cat "$T/ref.out")"
# The kills land at fractions of an uninterrupted run, however fast this machine is.
at() { awk -v a="$t0" -v b="$t1" -v f="$1" 'BEGIN{printf "%.3f", (b - a) * f}'; }
want=$(state "$T/ref/vol")
assert_contains "$want" "security.capability=0x"
assert_eq "$("$POD" volume remap "$T/ref/vol" --from $FROM --to $TO --verify)" \
  "$T/ref/vol: 35151 inodes, all in the target map"

interrupted=0
for delay in $(at 0.1) $(at 0.3) $(at 0.5) $(at 0.7); do
  note "killed after ${delay}s, then run again"
  rm -rf "$T/k" && make_tree "$T/k/vol"
  "$POD" --quiet volume remap "$T/k/vol" --from $FROM --to $TO >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  grep -q '"state": "running"' "$T/k/.vol.pod-remap" 2>/dev/null && interrupted=$((interrupted + 1))
  # Twice more: killed once more early in the rerun, then to the end.
  "$POD" --quiet volume remap "$T/k/vol" --from $FROM --to $TO >/dev/null 2>&1 &
  pid=$!
  sleep "$(at 0.2)"
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  "$POD" --quiet volume remap "$T/k/vol" --from $FROM --to $TO >"$T/k.out" ||
    fail "rerun after a kill at ${delay}s failed: $(cat "$T/k.out")"
  got=$(state "$T/k/vol")
  [[ "$got" == "$want" ]] || { diff <(echo "$want") <(echo "$got") | head -20 >&2; fail "kill at ${delay}s: the tree differs from an uninterrupted run"; }
  "$POD" volume remap "$T/k/vol" --from $FROM --to $TO --verify >/dev/null || fail "verify after a kill at ${delay}s"
  [[ ! -e $T/k/.vol.pod-remap.intents ]] || fail "the intent log is left behind"
  grep -q '"state": "done"' "$T/k/.vol.pod-remap" || fail "the journal is not done"
done

((interrupted >= 2)) || fail "only $interrupted of 4 kills landed during a run: make the tree bigger"

note "a pending remap of other maps is refused"
rm -rf "$T/p" && mkdir -p "$T/p/vol" && chown 100000:100000 "$T/p/vol"
echo '{"version": 1, "from": "0:100000:65536", "to": "0:200000:65536", "unmapped": "error", "state": "running"}' >"$T/p/.vol.pod-remap"
expect_fail 1 "$POD" volume remap "$T/p/vol" --from $FROM --to 0:300000:65536
assert_eq "$ERR" "pod: remapping '$T/p/vol': an interrupted remap from 0:100000:65536 to 0:200000:65536 is pending: run it again with those maps first (EBUSY)"

note "overlapping maps are refused"
expect_fail 1 "$POD" volume remap "$T/ref/vol" --from 0:200000:65536 --to 0:250000:65536
assert_contains "$ERR" "the source and target maps share host uid 250000"

note "refused while a running pod has the directory, or one below it, as a volume"
pod image import "$POD_DEFAULT_IMAGE" --name busybox >/dev/null 2>&1
rm -rf "$T/u" && mkdir -p "$T/u/vol/sub" && chown -R 100000:100000 "$T/u/vol"
pod run -d --name vol-user --net none --volume "$T/u/vol/sub:/data" busybox -- sleep 60 >/dev/null
uuid=$(pod status --json vol-user | jq -r .uuid)
expect_fail 1 pod volume remap "$T/u/vol" --from $FROM --to $TO
assert_eq "$ERR" "pod: remapping '$T/u/vol': pod 'vol-user' ($uuid) is running with the volume '$T/u/vol/sub': stop it first (pod stop vol-user) (EBUSY)"
expect_fail 1 pod volume remap "$T/u/vol/sub" --from $FROM --to $TO
assert_eq "$(stat -c %u "$T/u/vol" "$T/u/vol/sub" | tr '\n' ' ')" "100000 100000 " "owners after the refused remaps"
pod volume remap --dry-run "$T/u/vol" --from $FROM --to $TO >/dev/null || fail "--dry-run was refused while the pod runs"
pod stop vol-user --timeout 1
pod volume remap "$T/u/vol" --from $FROM --to $TO >/dev/null
assert_eq "$(stat -c %u "$T/u/vol/sub")" 200000 "owner after the pod stopped"
pod rm vol-user

note "as an ordinary user"
make_test_user 400000 65536
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
myuid=$(id -u "$TEST_USER")
mkdir -p "$home/vol/sub"
touch "$home/vol/sub/f" "$home/vol/g"
chown -R 400000:400000 "$home/vol"
chown 400999:400005 "$home/vol/g"
chmod 4755 "$home/vol/g"
setfacl -m u:400010:r "$home/vol/sub/f"
as_user "$POD" --quiet volume remap "$home/vol" --from 0:400000:1000 --to 0:401000:1000 >"$T/user.out" ||
  fail "remap inside the user's ranges failed: $(cat "$T/user.out")"
assert_eq "$(stat -c '%u:%g %a' "$home/vol" "$home/vol/sub/f" "$home/vol/g" | tr '\n' ' ')" \
  "401000:401000 755 401000:401000 644 401999:401005 4755 "
assert_contains "$(getfacl -n "$home/vol/sub/f" 2>/dev/null)" "user:401010:r--"
as_user "$POD" volume remap "$home/vol" --from 0:400000:1000 --to 0:401000:1000 --verify >/dev/null ||
  fail "verify as the user"
expect_fail 1 as_user "$POD" volume remap "$home/vol" --from 0:401000:1000 --to 0:300000:1000
assert_eq "$ERR" "pod: remapping '$home/vol': --to 0:300000:1000: uid 300000 on the host is not in your allotment ($myuid, 400000-465535) (EPERM)"
expect_fail 1 as_user "$POD" volume remap "$home/vol" --from 0:0:1 --to 0:401000:1
assert_eq "$ERR" "pod: remapping '$home/vol': --from 0:0:1: uid 0 on the host is not in your allotment ($myuid, 400000-465535) (EPERM)"
assert_eq "$(stat -c '%u:%g' "$home/vol")" "401000:401000" "a refused remap changed nothing"
echo "ok"
