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
}

# start_registry NAME [tls] [htpasswd FILE] [token REALM ISSUER SERVICE CERT]: sets
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

# blob_gets NAME: how many blob GETs the registry NAME has answered so far.
blob_gets() { grep -c '"GET /v2/[^"]*/blobs/sha256:' "$T/$1.log" || true; }

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

# The store holds exactly what skopeo sees in the registry: manifest digest, config, layers.
check_like_skopeo() {
  local image=$1 ref=$2; shift 2
  local theirs ours
  theirs=$(skopeo inspect --raw "$@" "$ref" | sha256sum | cut -d' ' -f1)
  ours=$(pod image inspect --json "$image" | jq -r .digest)
  assert_eq "$ours" "sha256:$theirs" "manifest digest of $image vs skopeo inspect of $ref"
  theirs=$(skopeo inspect "$@" "$ref" | jq -c '[.Layers[]]')
  ours=$(pod image inspect --json "$image" | jq -c '[.layers[].digest]')
  assert_eq "$ours" "$theirs" "layers of $image vs skopeo inspect of $ref"
}
