#!/bin/bash
# The store as others see it (skopeo, umoci), and over time: a second import writes
# nothing, export round-trips, verify names damage, gc takes the lock and removes what
# nothing references, kill -9 leaves nothing visible.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fixtures.sh"
need_root
: "${POD_DEFAULT_IMAGE:?}"

digest=$(pod image import "$POD_DEFAULT_IMAGE" --name busybox:1)

note "the store is an OCI image layout that skopeo and umoci read by name"
skopeo inspect "oci:$STORE:busybox:1" | jq -e --arg d "$digest" '.Digest == $d' >/dev/null ||
  fail "skopeo cannot read busybox:1 from the store"
umoci stat --image "$STORE:busybox:1" >/dev/null || fail "umoci cannot read busybox:1 from the store"
umoci unpack --image "$STORE:busybox:1" "$T/umoci-bundle" >/dev/null || fail "umoci cannot unpack busybox:1"
[[ -x $T/umoci-bundle/rootfs/bin/busybox ]] || fail "umoci's unpack lacks /bin/busybox"

note "a second import writes nothing"
listing_store() { find "$STORE" -path "$STORE/tmp" -prune -o -printf '%p %y %s %T@\n' | LC_ALL=C sort; }
before=$(listing_store)
out=$(pod image import "$POD_DEFAULT_IMAGE" --name busybox:1 2>&1 >/dev/null)
assert_contains "$out" "already present: busybox:1"
assert_eq "$(listing_store)" "$before" "the store after a second import"
[[ -z $(ls -A "$STORE/tmp") ]] || fail "tmp/ not empty after a second import"

note "list and inspect"
pod image list | grep -q '^busybox:1 ' || fail "list lacks busybox:1"
pod image list --json | jq -e --arg d "$digest" '.[0].name == "busybox:1" and .[0].digest == $d and .[0].size > 0' >/dev/null ||
  fail "list --json has the wrong shape"
pod image inspect "${digest:7:12}" --json | jq -e '.name == "busybox:1"' >/dev/null || fail "inspect by digest prefix"
expect_fail 1 pod image inspect nosuch:tag
assert_eq "$ERR" "pod: no image 'nosuch:tag' in the store (ENOENT)"

note "export round trip"
pod image export busybox:1 "$T/out-oci.tar"
skopeo inspect "oci-archive:$T/out-oci.tar" | jq -e --arg d "$digest" '.Digest == $d' >/dev/null || fail "exported oci-archive"
pod image export busybox:1 "$T/out-docker.tar" --format docker-archive
skopeo inspect "docker-archive:$T/out-docker.tar" | jq -e '.Layers | length == 1' >/dev/null || fail "exported docker-archive"
assert_eq "$(pod image import "$T/out-oci.tar" --name busybox:2)" "$digest" "re-imported export"
d2=$(pod image import "$T/out-docker.tar" --name busybox:docker)
pod image inspect busybox:1 --json | jq -r '.layers[0].diff_id' >"$T/a"
pod image inspect "$d2" --json | jq -r '.layers[0].diff_id' >"$T/b"
cmp -s "$T/a" "$T/b" || fail "docker-archive export changed the layer content"
ls -A "$T" | grep -q '^\.out' && fail "export left a temporary file"

note "verify names damage"
pod image verify >/dev/null 2>&1 || fail "verify of an intact store failed"
layer=$(pod image inspect busybox:1 --json | jq -r '.layers[0].digest')
blob=$STORE/blobs/sha256/${layer#sha256:}
cp "$blob" "$T/blob.bak"
chmod u+w "$blob"; printf 'X' | dd of="$blob" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_fail 1 pod image verify
out=$(pod image verify 2>/dev/null || true)
assert_contains "$out" "blob $layer: content changed"
cp "$T/blob.bak" "$blob"; chmod 0444 "$blob"
tree=$STORE/trees/${layer#sha256:}/root
printf 'X' | dd of="$tree/etc/passwd" bs=1 seek=3 conv=notrunc 2>/dev/null   # same size, one byte
out=$(pod image verify busybox:1 2>/dev/null || true)
assert_contains "$out" "tree $layer: etc/passwd: content changed"
echo more >>"$tree/etc/passwd"
out=$(pod image verify busybox:1 2>/dev/null || true)
assert_contains "$out" "tree $layer: etc/passwd: size changed"
chmod 0600 "$tree/etc/group"
out=$(pod image verify busybox:1 2>/dev/null || true)
assert_contains "$out" "etc/group"
touch "$tree/extra"
out=$(pod image verify 2>/dev/null || true)
assert_contains "$out" "extra"

note "gc takes the store lock exclusively"
flock -s "$STORE/lock" sleep 3 &
sleep 0.5
rc=0; timeout 1 "$POD" --root "$STORE" image gc >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 124 "gc while an import holds the lock shared (124: still waiting)"
wait

note "rm and gc remove what nothing references"
pod image rm busybox:1 busybox:2 busybox:docker >/dev/null 2>&1
pod image gc >/dev/null 2>&1
assert_eq "$(ls "$STORE/blobs/sha256" | wc -l)" 0 "blobs after rm and gc"
assert_eq "$(ls "$STORE/trees" | wc -l)" 0 "trees after rm and gc"
assert_eq "$(jq '.manifests | length' "$STORE/index.json")" 0 "index entries"

note "kill -9 at any moment leaves nothing visible, and the next command removes the debris"
ROOTFS=$T/big; mkdir -p "$ROOTFS"
for i in $(seq 1 40); do head -c 4M /dev/urandom >"$ROOTFS/f$i"; done
tar -C "$ROOTFS" -czf "$T/big.tar.gz" .
for delay in 0.05 0.2 0.5 1.0; do
  "$POD" --root "$STORE" image import "$T/big.tar.gz" --name big:1 >/dev/null 2>&1 &
  pid=$!; sleep "$delay"; kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  if jq -e '.manifests | length > 0' "$STORE/index.json" >/dev/null; then
    pod image verify >/dev/null || fail "killed after ${delay}s: a ref points at damaged content"
    pod image rm big:1 >/dev/null 2>&1
  fi
  for b in "$STORE"/blobs/sha256/*; do
    [[ -e $b ]] || continue
    [[ $(sha256sum <"$b" | cut -d' ' -f1) == "$(basename "$b")" ]] || fail "killed after ${delay}s: a half-written blob is visible"
  done
  for t in "$STORE"/trees/*; do
    [[ -e $t ]] || continue
    [[ -f $t/tree.json ]] || fail "killed after ${delay}s: a tree without its record is visible"
  done
done
pod image list >/dev/null
[[ -z $(ls -A "$STORE/tmp") ]] || fail "the next command left tmp/ debris: $(ls -A "$STORE/tmp")"
pod image import "$T/big.tar.gz" --name big:1 >/dev/null 2>&1
pod image verify big:1 >/dev/null 2>&1 || fail "import after the kills"
