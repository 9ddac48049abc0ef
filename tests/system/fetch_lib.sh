# Helpers for the fetch tests: a real docker-registry on loopback (plain, TLS with a CA
# made here, htpasswd, token auth), fixture images pushed by skopeo. Source after lib.sh.

command -v docker-registry >/dev/null || skip "docker-registry missing (Debian: docker-registry)"
command -v skopeo >/dev/null || skip "skopeo missing"
command -v umoci >/dev/null || skip "umoci missing"
command -v openssl >/dev/null || skip "openssl missing"
command -v curl >/dev/null || skip "curl missing"
FIXTURES=$POD_TESTS_DIR/fixtures/registry

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT: until something accepts connections on 127.0.0.1:PORT (10 s).
wait_port() {
  for _ in $(seq 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  fail "nothing listens on 127.0.0.1:$1"
}

# make_ca: a CA and a certificate for 127.0.0.1 signed by it, in $T/pki.
make_ca() {
  local d=$T/pki
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pod test CA" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/ext" -out "$d/server.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=pod client" -keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$d/client-ext"
  openssl x509 -req -in "$d/client.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/client-ext" -out "$d/client.cert" 2>/dev/null
}

# start_registry NAME [tls|mtls] [htpasswd FILE] [token REALM ISSUER SERVICE CERT]: sets
# REG_<NAME>=127.0.0.1:PORT; the access log is $T/NAME.log; storage $T/NAME-storage.
start_registry() {
  local name=$1; shift
  local port; port=$(free_port)
  local cfg=$T/$name.yml
  {
    echo "version: 0.1"
    echo "log: {level: info, accesslog: {disabled: false}}"
    echo "storage: {filesystem: {rootdirectory: $T/$name-storage}, delete: {enabled: true}}"
    echo "http:"
    echo "  addr: 127.0.0.1:$port"
    echo "  secret: pod-test-secret"
    while (($#)); do
      case $1 in
        tls) echo "  tls: {certificate: $T/pki/server.crt, key: $T/pki/server.key}"; shift ;;
        mtls) echo "  tls: {certificate: $T/pki/server.crt, key: $T/pki/server.key, clientcas: [$T/pki/ca.crt]}"; shift ;;
        htpasswd) echo "auth: {htpasswd: {realm: pod-test, path: $2}}"; shift 2 ;;
        token) echo "auth: {token: {realm: \"$2\", issuer: $3, service: $4, rootcertbundle: $5}}"; shift 5 ;;
        *) fail "start_registry: unknown option $1" ;;
      esac
    done
  } >"$cfg"
  docker-registry serve "$cfg" >"$T/$name.log" 2>&1 &
  local pid=$!
  at_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
  wait_port "$port"
  printf -v "REG_${name^^}" '%s' "127.0.0.1:$port"
  printf -v "PID_${name^^}" '%s' "$pid"
}

# blob_gets NAME: how many blob GETs by pod the registry NAME has answered so far
# (its access log; skopeo's own requests are not counted).
blob_gets() { grep '"GET /v2/[^"]*/blobs/sha256:' "$T/$1.log" | grep -c '"pod/' || true; }

# make_image LAYOUT TAG ROOTFS [ARCH]: an OCI layout image made by umoci from ROOTFS.
make_image() {
  local layout=$1 tag=$2 rootfs=$3 arch=${4:-} b; b=$(mktemp -d "$T/bundle.XXXX")
  [[ -d $layout ]] || umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci config --image "$layout:$tag" --config.cmd /bin/sh ${arch:+--architecture "$arch"}
  umoci unpack --image "$layout:$tag" "$b/bundle" >/dev/null
  cp -a "$rootfs/." "$b/bundle/rootfs/"
  umoci repack --image "$layout:$tag" "$b/bundle" >/dev/null
  rm -rf "$b"
}

# small_rootfs DIR [EXTRA]: busybox and a file whose content is EXTRA.
small_rootfs() {
  mkdir -p "$1/bin" "$1/etc" "$1/home/app"
  cp /bin/busybox "$1/bin/busybox"
  ln -sf busybox "$1/bin/sh"
  echo "${2:-hello}" >"$1/etc/motd"
  echo "owned by app" >"$1/home/app/notes"
  chown -R 1234:5678 "$1/home/app"
}

# push LAYOUT:TAG docker://… [skopeo options]
push() {
  local src=$1 dst=$2; shift 2
  skopeo copy -q --dest-tls-verify=false "$@" "oci:$src" "$dst" >/dev/null ||
    fail "skopeo could not push $src to $dst"
}

# layer_tree IMAGE [N]: the unpacked tree of layer N (from 0) of IMAGE.
layer_tree() {
  local layer; layer=$(pod image inspect --json "$1" | jq -r ".layers[${2:-0}].digest")
  echo "$STORE/trees/${layer#sha256:}/root"
}

# check_like_skopeo IMAGE REF ARCH [skopeo options]: the store holds the image skopeo
# sees in the registry (REF) for ARCH: manifest digest (through an index), layers,
# platform, config bytes; read from the store's own files (it is an OCI layout), from
# skopeo when the manifest is an OCI one (skopeo reads no Docker types from a layout),
# and from pod image inspect.
check_like_skopeo() {
  local image=$1 ref=$2 arch=$3; shift 3
  local raw=$T/skopeo-raw want
  skopeo inspect --raw "$@" "$ref" >"$raw" || fail "skopeo inspect --raw $ref"
  if jq -e .manifests "$raw" >/dev/null; then
    want=$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' "$raw")
  else
    want=sha256:$(sha256sum <"$raw" | cut -d' ' -f1)
  fi
  skopeo inspect --override-arch "$arch" "$@" "$ref" >"$T/sk-registry" || fail "skopeo inspect $ref"
  local entry man cfg
  entry=$(jq -c --arg n "$image" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n)' \
    "$STORE/index.json")
  assert_eq "$(jq -r .digest <<<"$entry")" "$want" "manifest digest of $image: store vs registry ($arch)"
  assert_eq "$(pod image inspect --json "$image" | jq -r .digest)" "$want" "pod image inspect digest of $image"
  man=$STORE/blobs/sha256/${want#sha256:}
  cfg=$STORE/blobs/sha256/$(jq -r .config.digest "$man" | cut -d: -f2)
  assert_eq "$(jq -c '[.layers[].digest]' "$man")" "$(jq -c .Layers "$T/sk-registry")" "layers of $image"
  assert_eq "$(jq -r '.os + "/" + .architecture' "$cfg")" "$(jq -r '.Os + "/" + .Architecture' "$T/sk-registry")" \
    "platform of $image"
  assert_eq "$(sha256sum <"$cfg")" "$(skopeo inspect --config --raw --override-arch "$arch" "$@" "$ref" | sha256sum)" \
    "config bytes of $image: store vs registry"
  assert_eq "$(pod image inspect --json "$image" | jq -c '[.layers[].digest]')" "$(jq -c '[.layers[].digest]' "$man")" \
    "pod image inspect layers of $image"
  if [[ $(jq -r .mediaType <<<"$entry") == application/vnd.oci.* ]]; then
    skopeo inspect "oci:$STORE:$image" >"$T/sk-store" || fail "skopeo inspect of $image in the store"
    assert_eq "$(jq -r .Digest "$T/sk-store")" "$want" "skopeo's digest of $image in the store"
    local q='[.Layers, .Architecture, .Os] | tostring'
    assert_eq "$(jq -r "$q" "$T/sk-store")" "$(jq -r "$q" "$T/sk-registry")" "skopeo of $image: store vs registry"
  fi
}
