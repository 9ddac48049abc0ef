# Fixture images for system tests, made by the tools people use (umoci, skopeo,
# actool, tar), never by pod. Source after lib.sh; needs root for the owners.

# make_rootfs DIR: a busybox rootfs with the things an importer can lose: owners
# other than root, a setuid binary, a file capability, xattrs, a hard link, symlinks,
# a fifo, a private directory, a device node, an empty file, a sparse file.
make_rootfs() {
  local r=$1
  mkdir -p "$r"/{bin,etc,tmp,srv/data,home/app,usr/lib,dev}
  cp /bin/busybox "$r/bin/busybox"
  for a in sh ls cat id stat; do ln -s busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1234:5678::/home/app:/bin/sh\n' >"$r/etc/passwd"
  printf 'root:x:0:\napp:x:5678:\n' >"$r/etc/group"
  echo "owned by app" >"$r/home/app/notes"
  chown -R 1234:5678 "$r/home/app"
  chmod 0700 "$r/home/app"
  cp /bin/busybox "$r/bin/suid-tool"; chmod 4755 "$r/bin/suid-tool"
  cp /bin/busybox "$r/bin/sgid-tool"; chown 0:5678 "$r/bin/sgid-tool"; chmod 2750 "$r/bin/sgid-tool"
  cp /bin/busybox "$r/bin/ping"; setcap cap_net_raw+ep "$r/bin/ping"
  echo data >"$r/srv/data/file"; chown 42:43 "$r/srv/data/file" "$r/srv/data"; chmod 0640 "$r/srv/data/file"
  setfattr -n user.comment -v "kept by pod" "$r/srv/data/file"
  ln "$r/srv/data/file" "$r/srv/data/hardlink"
  ln -s ../srv/data/file "$r/etc/data-link"
  ln -s /etc/passwd "$r/etc/abs-link"
  mkfifo "$r/tmp/fifo"
  chmod 1777 "$r/tmp"
  : >"$r/etc/empty"
  truncate -s 10M "$r/usr/lib/sparse"; echo end >>"$r/usr/lib/sparse"
  mknod "$r/dev/null" c 1 3; chmod 666 "$r/dev/null"
  chown 65534:65534 "$r/usr"
  touch -d '2020-02-02 02:02:02' "$r/etc/passwd"
}

# make_oci_layout ROOTFS LAYOUT TAG: an OCI image layout with one layer (umoci).
make_oci_layout() {
  local rootfs=$1 layout=$2 tag=$3 b; b=$(mktemp -d "$T/bundle.XXXX")
  [[ -d $layout ]] || umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci config --image "$layout:$tag" --config.cmd /bin/sh --config.user 1234:5678
  umoci unpack --image "$layout:$tag" "$b/bundle" >/dev/null
  cp -a "$rootfs/." "$b/bundle/rootfs/"
  umoci repack --image "$layout:$tag" "$b/bundle" >/dev/null
  rm -rf "$b"
}

# make_aci ROOTFS OUT.aci: an ACI built by appc's actool (gzip).
make_aci() {
  local rootfs=$1 out=$2 d; d=$(mktemp -d "$T/aci.XXXX")
  mkdir -p "$d/image"
  cp -a "$rootfs" "$d/image/rootfs"
  cat >"$d/image/manifest" <<'JSON'
{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/fixture",
 "labels":[{"name":"version","value":"1.0"},{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}],
 "app":{"exec":["/bin/sh","-c","echo hi"],"user":"1234","group":"5678","workingDirectory":"/home/app",
        "environment":[{"name":"GREETING","value":"hello"}]}}
JSON
  actool build "$d/image" "$out"
  rm -rf "$d"
}

# tree_of IMAGE: the directory holding the unpacked single layer of IMAGE.
tree_of() {
  local layer; layer=$(pod image inspect --json "$1" | jq -r '.layers[0].digest')
  echo "$STORE/trees/${layer#sha256:}/root"
}

# listing DIR [noxattrs]: owners, modes, types, sizes, link targets, hard-link counts,
# content hashes and (unless "noxattrs") xattrs of every inode, for comparing trees.
listing() {
  local dir=$1 xattrs=${2:-xattrs}
  (cd "$dir" && find . -mindepth 1 \( -type f -o -type l -o -type p -o -type c -o -type d \) \
      -printf '%p %y %#m %U:%G %n %l\n' | LC_ALL=C sort)
  (cd "$dir" && find . -type f -printf '%p %s\n' | LC_ALL=C sort)
  (cd "$dir" && find . -type f ! -name sparse -exec sha256sum {} + | LC_ALL=C sort)
  [[ $xattrs == xattrs ]] || return 0
  (cd "$dir" && find . -type f -o -type d | LC_ALL=C sort | while read -r f; do
     { getfattr -h -d -m '^(user|security)\.' -e hex "$f" 2>/dev/null || true; } | { grep -v -e '^#' -e '^$' || true; } | sed "s|^|$f |"
   done)
}
