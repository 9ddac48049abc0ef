#!/bin/bash
# Root imports every format; the unpacked tree must equal the rootfs the image was
# made from: owners, modes, setuid bits, capabilities, xattrs, links, devices.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fixtures.sh"
need_root

ROOTFS=$T/rootfs
make_rootfs "$ROOTFS"

# check_tree IMAGE LABEL [noxattrs]: the image's tree equals the rootfs (actool
# writes no xattrs into an ACI, so ACIs are compared without them).
check_tree() {
  local tree; tree=$(tree_of "$1")
  [[ -d $tree ]] || fail "$2: no tree at $tree"
  local want got; want=$(listing "$ROOTFS" "${3:-xattrs}"); got=$(listing "$tree" "${3:-xattrs}")
  if [[ $got != "$want" ]]; then
    diff <(echo "$want") <(echo "$got") >&2 || true
    fail "$2: the unpacked tree differs from the image's rootfs"
  fi
  if [[ ${3:-xattrs} == xattrs ]]; then
    [[ $(getcap "$tree/bin/ping") == *cap_net_raw=ep* ]] || fail "$2: file capability lost"
  fi
  [[ $(stat -c '%t:%T' "$tree/dev/null") == 1:3 ]] || fail "$2: device node not made"
  [[ $(stat -c %h "$tree/srv/data/hardlink") == 2 && $(stat -c %i "$tree/srv/data/hardlink") == $(stat -c %i "$tree/srv/data/file") ]] ||
    fail "$2: hard link not kept"
  note "$2: tree matches"
}

note "OCI layout directory (umoci)"
make_oci_layout "$ROOTFS" "$T/layout" v1
digest=$(pod image import "$T/layout" --name fixture:oci)
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "import printed '$digest', not a digest"
check_tree fixture:oci "oci layout"

note "oci-archive and docker-archive (skopeo)"
skopeo copy -q "oci:$T/layout:v1" "oci-archive:$T/fixture-oci.tar:v1"
skopeo copy -q "oci:$T/layout:v1" "docker-archive:$T/fixture-docker.tar:example/fixture:v1"
pod image import "$T/fixture-oci.tar" --name fixture:ociarchive >/dev/null
check_tree fixture:ociarchive "oci-archive"
pod image import "$T/fixture-docker.tar" >/dev/null   # named by the archive's RepoTags
check_tree example/fixture:v1 "docker-archive"

note "ACI (actool) in each compression"
make_aci "$ROOTFS" "$T/fixture.aci"
for z in gzip bzip2 xz zstd; do
  case $z in
    gzip) cp "$T/fixture.aci" "$T/fixture-$z.aci" ;;
    *) gzip -dc "$T/fixture.aci" | $z -c >"$T/fixture-$z.aci" ;;
  esac
  pod image import "$T/fixture-$z.aci" --name "fixture:aci-$z" >/dev/null
  check_tree "fixture:aci-$z" "ACI ($z)" noxattrs
done
cfg=$(pod image inspect --json fixture:aci-gzip)
assert_eq "$(jq -c '.config.config.Entrypoint' <<<"$cfg")" '["/bin/sh","-c","echo hi"]' "ACI exec"
assert_eq "$(jq -r '.config.config.WorkingDir' <<<"$cfg")" /home/app "ACI workingDirectory"
jq -e '.config.config.Env | index("GREETING=hello")' <<<"$cfg" >/dev/null || fail "ACI environment lost"

note "rootfs tarballs (tar), plain and compressed"
tar -C "$ROOTFS" --sparse --xattrs --xattrs-include='*' -cf "$T/rootfs.tar" .
for z in none gzip zstd xz; do
  f=$T/rootfs.tar
  [[ $z == none ]] || { $z -c "$T/rootfs.tar" >"$T/rootfs.tar.$z"; f=$T/rootfs.tar.$z; }
  pod image import "$f" --name "fixture:rootfs-$z" >/dev/null
  check_tree "fixture:rootfs-$z" "rootfs tar ($z)"
  tree=$(tree_of "fixture:rootfs-$z")
  [[ $(stat -c %b "$tree/usr/lib/sparse") -lt 1024 ]] || fail "rootfs tar ($z): the sparse file lost its holes"
done

note "census in inspect"
census=$(pod image inspect --json fixture:oci | jq -c '.layers[0].census')
assert_eq "$census" '{"gids":[0,43,5678,65534],"uids":[0,42,1234,65534]}' "census"
pod image inspect fixture:oci | grep -q 'uids \[0,42,1234,65534\]' || fail "human inspect lacks the census"

note "the same image, imported under another name, shares blobs and trees"
before=$(find "$STORE/blobs" "$STORE/trees" -maxdepth 2 | wc -l)
pod image import "$T/layout" --name fixture:again >/dev/null
after=$(find "$STORE/blobs" "$STORE/trees" -maxdepth 2 | wc -l)
assert_eq "$after" "$before" "store entries after a second name"
