#!/bin/bash
# Malicious archives: each bad input must give one clear line on stderr naming the
# entry or descriptor and the reason, exit status 1, no staging left, refs unchanged,
# and nothing outside the store touched. Run as root, then as an ordinary user with
# subordinate ids and a store in its home. The archives come from
# tests/fixtures/evil-archives.py; a good image imports fine before and after.
#
# MALICIOUS_ONLY=REGEX runs only the matching cases; MALICIOUS_SHOW=1 prints each
# case's stderr.
source "$(dirname "$0")/lib.sh"
need_root
command -v python3 >/dev/null || skip "python3 missing"
command -v zstd >/dev/null || skip "zstd missing"

VICTIM=$T/victim
EVIL=$T/evil

# The victim: files, a subdirectory, a symlink, a private file, known owners and modes.
make_victim() {
  mkdir -p "$VICTIM/subdir"
  echo "victim file" >"$VICTIM/file"
  echo "inner" >"$VICTIM/subdir/inner"
  echo "secret" >"$VICTIM/secret"
  ln -s file "$VICTIM/link"
  chown 1234:5678 "$VICTIM/file"; chmod 0644 "$VICTIM/file"
  chown 42:43 "$VICTIM/subdir" "$VICTIM/subdir/inner"; chmod 0750 "$VICTIM/subdir"
  chmod 0600 "$VICTIM/secret"
  chmod 0755 "$VICTIM"
  touch -h -d '2021-01-01 00:00:00' "$VICTIM"/* "$VICTIM"/subdir/* "$VICTIM"
}
make_victim
[[ ! -e /etc/pod-pwned ]] || fail "/etc/pod-pwned exists before the test; remove it"
python3 "$POD_TESTS_DIR/fixtures/evil-archives.py" "$EVIL" "$VICTIM" >/dev/null
chmod 755 "$EVIL"

GOOD=$T/good.tar
if [[ -n ${POD_DEFAULT_IMAGE:-} && -f $POD_DEFAULT_IMAGE ]]; then
  cp "$POD_DEFAULT_IMAGE" "$GOOD"
else
  command -v umoci >/dev/null || skip "no default image and no umoci"
  umoci init --layout "$T/good-layout" && umoci new --image "$T/good-layout:latest"
  b=$T/good-bundle
  umoci unpack --image "$T/good-layout:latest" "$b" >/dev/null
  mkdir -p "$b/rootfs/etc" && echo good >"$b/rootfs/etc/hostname"
  umoci repack --image "$T/good-layout:latest" "$b" >/dev/null
  tar -C "$T/good-layout" -cf "$GOOD" .
fi
chmod 644 "$GOOD"

# Each case: archive (without .tar) | extra flags | expected substrings of stderr,
# separated by ';' (all must appear). The substrings are what a user needs: the entry
# or descriptor at fault, and the reason.
VICTIM_REL=${VICTIM#/}
UP=$(printf '../%.0s' {1..24})
CASES=(
  "01-dotdot||@LAYER@: entry '../victim/pwned': the name has a '..' component, which leaves the root"
  "01b-dotdot-deep||@LAYER@: entry '$UP$VICTIM_REL/pwned': the name has a '..' component"
  "01c-dotdot-inner||@LAYER@: entry 'etc/../../$UP$VICTIM_REL/pwned': the name has a '..' component"
  "02-absolute||@LAYER@: entry '$VICTIM/pwned': the name is absolute"
  "03-symlink-abs||@LAYER@: entry 'escape/pwned': its parent 'escape' passes through a symlink"
  "04-symlink-rel||@LAYER@: entry 'escape/pwned': its parent 'escape' passes through a symlink"
  "04c-symlink-chmod||@LAYER@: entry 'escape/subdir;its parent 'escape' passes through a symlink"
  "04d-dir-then-symlink||@LAYER@: entry 'usr/lib/pwned': its parent 'usr/lib' passes through a symlink"
  "05-hardlink-rel||@LAYER@: entry 'hl': hard link target '../victim/file': the name has a '..' component"
  "05b-hardlink-rel-deep||@LAYER@: entry 'hl': hard link target '$UP$VICTIM_REL/file': the name has a '..' component"
  "06-hardlink-abs||@LAYER@: entry 'hl': hard link target '$VICTIM/file': the name is absolute"
  "06b-hardlink-then-write||@LAYER@: entry 'hl': hard link target '$VICTIM/file': the name is absolute"
  "06c-hardlink-via-symlink||@LAYER@: entry 'hl': hard link target 'escape/file' passes through a symlink"
  "07-etc-symlink||@LAYER@: entry 'etc/pod-pwned': its parent 'etc' passes through a symlink"
  "07b-etc-symlink-hardlink||@LAYER@: entry 'stolen': hard link target 'etc/passwd' passes through a symlink"
  "07c-whiteout-escape||@LAYER@: entry '../victim/.wh.file': the name has a '..' component"
  "07d-opaque-escape||@LAYER@: entry 'escape/.wh..wh..opq': its parent 'escape' passes through a symlink"
  "08-digest-mismatch||member 'blobs/sha256/;@LAYER@: digest mismatch: the content hashes to sha256:"
  "09-size-larger||blob @LAYER@: size mismatch;the descriptor says"
  "09b-size-smaller||blob @LAYER@: size mismatch;the descriptor says"
  "09c-digest-is-a-path||manifest layer 0: 'sha256:../../../../victim/file' is not a digest"
  "09d-missing-blob||layer 0 @LAYER@ is not in the archive"
  "10-truncated-gzip||@LAYER@: decompressing the layer: truncated gzip input"
  "11-corrupt-zstd||@LAYER@: decompressing the layer:;Zstd decompression failed"
  "11b-not-a-tar||@LAYER@: Unrecognized archive format"
  "12-malformed-manifest||manifest @MANIFEST@;is not valid JSON"
  "12b-manifest-wrong-types||manifest @MANIFEST@;'schemaVersion' is not 2"
  "13-oversized-manifest||manifest @MANIFEST@;more than the limit of 4194304"
  "14-unknown-layer-type||manifest @MANIFEST@;layer 0: unknown media type 'application/vnd.evil.layer.v1+exe'"
  "14b-unknown-manifest-type||descriptor @MANIFEST@: unknown media type 'application/vnd.evil.manifest+json'"
  "15-index-too-deep||image indexes nested deeper than 8 levels"
  "15b-index-cycle||blob sha256:$(printf %s 'the index that contains itself' | sha256sum | cut -d' ' -f1): digest mismatch"
  "16-bomb-bytes|--max-layer-bytes 10M|@LAYER@: entry 'usr/bin/zeros': the layer unpacks to more than 10485760 bytes;--max-layer-bytes"
  "17-many-entries|--max-entries 100|@LAYER@;the layer has more than 100 entries;--max-entries"
  "18-too-deep|--max-depth 20|@LAYER@: entry 'd00/d01/d02/;more than the limit of 20;--max-depth"
  "19-diffid-mismatch||@LAYER@: layer content does not match diff_id sha256:1111111111111111111111111111111111111111111111111111111111111111"
  "19b-diffid-count||lists 1 diff_ids but the manifest has 2 layers"
  "20-docker-layer-path||manifest.json: layer '../../victim/file' is not a plain member name"
  "20b-docker-layer-abs||manifest.json: layer '$VICTIM/file' is not a plain member name"
  "20c-docker-config-path||manifest.json: config '../../victim/file' is not a plain member name"
  "20d-docker-dotdot||@LAYER@: entry '../victim/pwned': the name has a '..' component"
  "21-rootfs-dotdot||@LAYER@: entry '../victim/pwned': the name has a '..' component"
  "21b-rootfs-symlink||@LAYER@: entry 'escape/pwned': its parent 'escape' passes through a symlink"
  "21c-rootfs-hardlink||@LAYER@: entry 'hl': hard link target '$VICTIM/file': the name is absolute"
  "22-symlink-as-root||@LAYER@: entry '.': the root of the layer is not a directory"
  "22b-whiteout-dotdot||@LAYER@: entry 'etc/.wh...': a whiteout of '..' names nothing"
  "22c-hardlink-to-dir||@LAYER@: entry 'hl': hard link target 'etc' is not a regular file"
  "22d-hardlink-to-symlink||@LAYER@: entry 'hl': hard link target 's' is not a regular file"
  "22e-symlink-named-dotdot||@LAYER@: entry 'etc/..': the name has a '..' component"
  "23-layout-blob-symlink||layer 0 @LAYER@: 'blobs/sha256/@LAYERHEX@' passes through a symlink"
  "23b-layout-index-symlink||'index.json' passes through a symlink"
  "23c-layout-blob-fifo||manifest @MANIFEST@;'blobs/sha256/@MANIFESTHEX@' is not a regular file"
  "23d-layout-blobs-symlink||passes through a symlink"
)

# The digests the importer should name, read from the archive as a user would:
# @MANIFEST@ is the manifest's, @LAYER@ the first layer's (for a docker-archive, of
# its layer member; for a rootfs tar, of the file).
manifest_of() {
  if [[ -d $EVIL/$1 ]]; then jq -r '.manifests[0].digest' "$EVIL/$1/index.json"; return; fi
  tar -xOf "$EVIL/$1.tar" index.json | jq -r '.manifests[0].digest'
}
layer_of() {
  local f=$EVIL/$1.tar m
  if [[ -d $EVIL/$1 ]]; then
    m=$(manifest_of "$1")
    jq -r '.layers[0].digest' "$EVIL/$1/blobs/sha256/${m#sha256:}"
  elif tar -tf "$f" 2>/dev/null | grep -x index.json >/dev/null; then
    m=$(manifest_of "$1")
    tar -xOf "$f" "blobs/sha256/${m#sha256:}" | jq -r '.layers[0].digest' 2>/dev/null || echo "(no layer)"
  elif tar -tf "$f" 2>/dev/null | grep -x manifest.json >/dev/null; then
    m=$(tar -xOf "$f" manifest.json | jq -r '.[0].Layers[0]')
    echo "sha256:$(tar -xOf "$f" "$m" 2>/dev/null | sha256sum | cut -d' ' -f1)"
  else
    echo "sha256:$(sha256sum <"$f" | cut -d' ' -f1)"
  fi
}

PROBLEMS=()
problem() { PROBLEMS+=("$*"); echo "PROBLEM: $*" >&2; }

# Whatever an escape could have made outside the store: stray names under $T, and
# /etc/pod-pwned.
strays() {
  local store=$1
  find "$T" -path "$STORE" -prune -o -path "$store" -prune -o -name '*pwned*' -print
  [[ -e /etc/pod-pwned || -L /etc/pod-pwned ]] && echo /etc/pod-pwned
  find "$store" -name '*pwned*' -print 2>/dev/null
  true
}

# run_case RUNNER STORE LABEL CASE
run_case() {
  local runner=$1 store=$2 label=$3 spec=$4
  local name flags expects
  IFS='|' read -r name flags expects <<<"$spec"
  local victim_before index_before victim_after index_after rc=0 err
  victim_before=$(snapshot "$VICTIM")
  index_before=$(cat "$store/index.json")
  local input=$EVIL/$name.tar
  [[ -d $EVIL/$name ]] && input=$EVIL/$name
  # shellcheck disable=SC2086
  err=$($runner "$POD" --root "$store" image import "$input" --name "evil:${name%%-*}" $flags 2>&1 >/dev/null) ||
    rc=$?
  [[ ${MALICIOUS_SHOW:-0} == 1 ]] && echo "[$label $name] rc=$rc: $err" >&2
  local what="$label $name"
  [[ $rc == 1 ]] || problem "$what: exit status $rc, want 1; stderr: $err"
  [[ $err == "pod: "* ]] || problem "$what: stderr does not start with 'pod: ': $err"
  [[ $(wc -l <<<"$err") -le 2 ]] || problem "$what: more than one line (and a hint) on stderr: $err"
  local IFS=';' want
  for want in $expects; do
    [[ $want == *@LAYERHEX@* ]] && want=${want//@LAYERHEX@/$(layer_of "$name" | cut -d: -f2)}
    [[ $want == *@LAYER@* ]] && want=${want//@LAYER@/$(layer_of "$name")}
    [[ $want == *@MANIFESTHEX@* ]] && want=${want//@MANIFESTHEX@/$(manifest_of "$name" | cut -d: -f2)}
    [[ $want == *@MANIFEST@* ]] && want=${want//@MANIFEST@/$(manifest_of "$name")}
    [[ $err == *"$want"* ]] || problem "$what: stderr lacks '$want': $err"
  done
  unset IFS
  victim_after=$(snapshot "$VICTIM")
  if [[ $victim_after != "$victim_before" ]]; then
    problem "$what: the victim directory changed: $(diff <(echo "$victim_before") <(echo "$victim_after") | tr '\n' ' ')"
    make_victim_again "$runner"
  fi
  index_after=$(cat "$store/index.json")
  [[ $index_after == "$index_before" ]] || problem "$what: the store's index.json changed"
  if [[ -n $(ls -A "$store/tmp" 2>/dev/null) ]]; then
    problem "$what: staging left in $store/tmp: $(ls -A "$store/tmp" | tr '\n' ' ')"
    find "$store/tmp" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  fi
  local s; s=$(strays "$store")
  if [[ -n $s ]]; then
    problem "$what: files appeared: $s"
    rm -rf /etc/pod-pwned
    find "$T" -path "$STORE" -prune -o -path "$store" -prune -o -name '*pwned*' -exec rm -rf {} + 2>/dev/null || true
  fi
}

# After a failed case, put the victim back so later cases are judged on their own.
make_victim_again() {
  rm -rf "$VICTIM"
  make_victim
  [[ $1 == as_user ]] && chown -R "$TEST_USER:" "$VICTIM"
  true
}

run_all() {  # run_all RUNNER STORE LABEL
  local runner=$1 store=$2 label=$3 spec
  local out rc=0
  out=$($runner "$POD" --root "$store" image import "$GOOD" --name good:before 2>&1) || rc=$?
  [[ $rc == 0 ]] || fail "$label: the good image does not import: $out"
  for spec in "${CASES[@]}"; do
    [[ -z ${MALICIOUS_ONLY:-} || ${spec%%|*} =~ $MALICIOUS_ONLY ]] || continue
    run_case "$runner" "$store" "$label" "$spec"
  done
  out=$($runner "$POD" --root "$store" image import "$GOOD" --name good:after 2>&1) || fail "$label: the good image no longer imports: $out"
  $runner "$POD" --root "$store" image list --json | jq -e 'map(.name) | index("good:before") and index("good:after")' >/dev/null ||
    problem "$label: the good images are not both listed"
  $runner "$POD" --root "$store" image verify >/dev/null 2>&1 || problem "$label: 'pod image verify' fails after the cases"
}

# Hostile but legal: a later entry replaces an earlier one of the same name (a symlink
# to a victim file, a hard link to a file of the layer), never writing through it.
legal_replacements() {  # legal_replacements RUNNER STORE LABEL
  local runner=$1 store=$2 label=$3 out tree before
  before=$(snapshot "$VICTIM")
  out=$($runner "$POD" --root "$store" image import "$EVIL/legal-symlink-replaced.tar" --name legal:symlink 2>&1) ||
    problem "$label legal-symlink-replaced: refused: $out"
  if tree=$(tree_root "$runner" "$store" legal:symlink); then
    [[ -f $tree/usr/bin/tool && ! -L $tree/usr/bin/tool && $(cat "$tree/usr/bin/tool") == pwned ]] ||
      problem "$label legal-symlink-replaced: usr/bin/tool is not the later regular file"
  fi
  [[ $(snapshot "$VICTIM") == "$before" ]] || { problem "$label legal-symlink-replaced: the victim changed"; make_victim_again "$runner"; }
  out=$($runner "$POD" --root "$store" image import "$EVIL/legal-hardlink-replaced.tar" --name legal:hardlink 2>&1) ||
    problem "$label legal-hardlink-replaced: refused: $out"
  if tree=$(tree_root "$runner" "$store" legal:hardlink); then
    [[ $(cat "$tree/etc/orig") == orig && $(cat "$tree/etc/hl") == new ]] ||
      problem "$label legal-hardlink-replaced: etc/orig='$(cat "$tree/etc/orig")' etc/hl='$(cat "$tree/etc/hl")', want orig and new"
  fi
  [[ -z $(ls -A "$store/tmp" 2>/dev/null) ]] || problem "$label legal: staging left in $store/tmp"
}

# The unpacked tree of an image's first layer.
tree_root() {  # tree_root RUNNER STORE IMAGE
  local d
  d=$($1 "$POD" --root "$2" image inspect --json "$3" 2>/dev/null | jq -r '.layers[0].digest') || return 1
  [[ -d $2/trees/${d#sha256:}/root ]] || return 1
  echo "$2/trees/${d#sha256:}/root"
}

# Each limit is the flag's: the same archives import when the limit allows them.
limits_are_flags() {  # limits_are_flags RUNNER STORE LABEL
  local runner=$1 store=$2 label=$3 out
  local -a ok=(
    "13-oversized-manifest|--max-json-bytes 8M"
    "16-bomb-bytes|--max-layer-bytes 64M"
    "17-many-entries|--max-entries 2000"
    "18-too-deep|--max-depth 40"
  )
  local spec name flags
  for spec in "${ok[@]}"; do
    IFS='|' read -r name flags <<<"$spec"
    # shellcheck disable=SC2086
    out=$($runner "$POD" --root "$store" image import "$EVIL/$name.tar" --name "ok:${name%%-*}" $flags 2>&1) ||
      problem "$label $name: does not import with $flags: $out"
  done
}

note "as root"
mkdir -p "$STORE"
run_all env "$STORE" root
legal_replacements env "$STORE" root
limits_are_flags env "$STORE" root

note "as an ordinary user with subordinate ids"
make_test_user 500000 65536
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
chown -R "$TEST_USER:" "$VICTIM"   # an escape would succeed on permissions alone
run_all as_user "$home/store" user
legal_replacements as_user "$home/store" user

if ((${#PROBLEMS[@]})); then
  printf '  %s\n' "${PROBLEMS[@]}" >&2
  fail "${#PROBLEMS[@]} problems"
fi
note "all cases refused cleanly"
