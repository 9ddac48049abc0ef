#!/bin/bash
# pod image fetch against a real registry (Debian's docker-registry on loopback):
# plain HTTP, TLS with a CA made here, htpasswd basic auth, token auth with a token
# server, a multi-platform index; each result compared with what skopeo sees.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fetch_lib.sh"
make_ca

# Images: v1 for this machine, and an index of an amd64 and an arm64 image (umoci
# builds them, the index is written here, skopeo copy --all pushes all three).
small_rootfs "$T/r-amd" "amd64 image"
small_rootfs "$T/r-arm" "arm64 image"
make_image "$T/layout" v1 "$T/r-amd"
make_image "$T/layout" amd64 "$T/r-amd" amd64
make_image "$T/layout" arm64 "$T/r-arm" arm64
entry() {
  jq -c --arg t "$1" --arg a "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t)
    | {mediaType, digest, size, platform: {os: "linux", architecture: $a}}' "$T/layout/index.json"
}
jq -nc --argjson a "$(entry amd64 amd64)" --argjson b "$(entry arm64 arm64)" \
  '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [$a, $b]}' >"$T/index-blob"
idx=$(sha256sum <"$T/index-blob" | cut -d' ' -f1)
cp "$T/index-blob" "$T/layout/blobs/sha256/$idx"
jq --arg d "sha256:$idx" --argjson s "$(stat -c %s "$T/index-blob")" \
  '.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
                   annotations: {"org.opencontainers.image.ref.name": "multi"}}]' \
  "$T/layout/index.json" >"$T/index.new" && mv "$T/index.new" "$T/layout/index.json"

note "plain HTTP: fetch by tag, compared with skopeo"
start_registry plain
push "$T/layout:v1" "docker://$REG_PLAIN/test/busybox:v1"
push "$T/layout:multi" "docker://$REG_PLAIN/test/multi:v1" --all
ref=docker://$REG_PLAIN/test/busybox:v1
digest=$(pod image fetch --tls-verify=false "$ref" 2>"$T/err") || fail "fetch by tag: $(cat "$T/err")"
assert_contains "$(cat "$T/err")" "--tls-verify=false"   # said on stderr
check_like_skopeo "$REG_PLAIN/test/busybox:v1" "$ref" amd64 --tls-verify=false
assert_eq "$(pod image list --json | jq -r '.[0].name')" "$REG_PLAIN/test/busybox:v1" "the image's name"
assert_eq "$(pod image list --json | jq -r '.[0].digest')" "$digest" "the printed digest"
tree=$(layer_tree "$REG_PLAIN/test/busybox:v1")
assert_eq "$(cat "$tree/etc/motd")" "amd64 image" "content of etc/motd"
assert_eq "$(stat -c %u:%g "$tree/home/app/notes")" "1234:5678" "owner of home/app/notes"
cmp "$tree/bin/busybox" /bin/busybox || fail "bin/busybox differs"
gets=$(blob_gets plain)
((gets == 2)) || fail "want 2 blob GETs (config, layer), saw $gets"

note "a second fetch downloads no blob"
out=$(pod image fetch --tls-verify=false "$ref" 2>&1 >/dev/null) || fail "second fetch: $out"
assert_eq "$(blob_gets plain)" "$gets" "blob GETs after the second fetch"
assert_contains "$out" "0 blobs downloaded"

note "fetch by digest: unnamed, the same image"
rm -rf "$STORE"
got=$(pod image fetch --tls-verify=false "docker://$REG_PLAIN/test/busybox@$digest" 2>"$T/err") ||
  fail "fetch by digest: $(cat "$T/err")"
assert_eq "$got" "$digest" "digest fetched by digest"
assert_eq "$(pod image list --json | jq -r '.[0].name')" "null" "name of an image fetched by digest"
pod image verify >/dev/null 2>&1 || fail "verify after fetch by digest"
expect_fail 1 pod image fetch --tls-verify=false "docker://$REG_PLAIN/test/busybox@sha256:$(printf x | sha256sum | cut -d' ' -f1)"
assert_contains "$ERR" "in repository 'test/busybox' not found"
expect_fail 1 pod image fetch --tls-verify=false "docker://$REG_PLAIN/test/busybox:nope"
assert_contains "$ERR" "tag 'nope' in repository 'test/busybox' not found"
expect_fail 1 pod image fetch --tls-verify=false "docker://$REG_PLAIN/test/nothing:v1"
assert_contains "$ERR" "repository 'test/nothing' not found"

note "a multi-platform index: this machine's image, or --platform's"
rm -rf "$STORE"
mref=docker://$REG_PLAIN/test/multi:v1
pod image fetch --tls-verify=false --name multi:amd "$mref" >/dev/null 2>"$T/err" || fail "fetch index: $(cat "$T/err")"
check_like_skopeo multi:amd "$mref" amd64 --tls-verify=false
assert_eq "$(cat "$(layer_tree multi:amd)/etc/motd")" "amd64 image" "default platform's content"
pod image fetch --tls-verify=false --platform linux/arm64 --name multi:arm "$mref" >/dev/null 2>"$T/err" ||
  fail "fetch --platform linux/arm64: $(cat "$T/err")"
assert_eq "$(pod image inspect --json multi:arm | jq -r .config.architecture)" arm64 "architecture fetched"
check_like_skopeo multi:arm "$mref" arm64 --tls-verify=false
assert_eq "$(cat "$(layer_tree multi:arm)/etc/motd")" "arm64 image" "arm64 content"
expect_fail 1 pod image fetch --tls-verify=false --platform linux/s390x "$mref"
assert_contains "$ERR" "no image for platform linux/s390x (available: linux/amd64, linux/arm64)"

note "Docker schema 2: a manifest and a manifest list"
rm -rf "$STORE"
push "$T/layout:v1" "docker://$REG_PLAIN/test/docker:v1" --format v2s2
push "$T/layout:multi" "docker://$REG_PLAIN/test/dockerlist:v1" --all --format v2s2
dref=docker://$REG_PLAIN/test/docker:v1
assert_eq "$(skopeo inspect --raw --tls-verify=false "$dref" | jq -r .mediaType)" \
  application/vnd.docker.distribution.manifest.v2+json "media type skopeo pushed"
pod image fetch --tls-verify=false --name docker:v1 "$dref" >/dev/null 2>"$T/err" || fail "fetch Docker schema 2: $(cat "$T/err")"
check_like_skopeo docker:v1 "$dref" amd64 --tls-verify=false
assert_eq "$(cat "$(layer_tree docker:v1)/etc/motd")" "amd64 image" "Docker schema 2 content"
lref=docker://$REG_PLAIN/test/dockerlist:v1
assert_eq "$(skopeo inspect --raw --tls-verify=false "$lref" | jq -r .mediaType)" \
  application/vnd.docker.distribution.manifest.list.v2+json "media type skopeo pushed"
pod image fetch --tls-verify=false --platform linux/arm64 --name dockerlist:arm "$lref" >/dev/null 2>"$T/err" ||
  fail "fetch from a Docker manifest list: $(cat "$T/err")"
check_like_skopeo dockerlist:arm "$lref" arm64 --tls-verify=false
assert_eq "$(cat "$(layer_tree dockerlist:arm)/etc/motd")" "arm64 image" "arm64 content from a manifest list"

note "a blob corrupted on the registry's disk is refused"
rm -rf "$STORE"
layer=$(skopeo inspect --tls-verify=false "$ref" | jq -r '.Layers[0]')
data=$T/plain-storage/docker/registry/v2/blobs/sha256/${layer:7:2}/${layer#sha256:}/data
[[ -f $data ]] || fail "no blob file $data"
cp "$data" "$T/blob.orig"
printf 'X' | dd of="$data" bs=1 seek=100 conv=notrunc status=none
cmp -s "$data" "$T/blob.orig" && fail "the blob was not corrupted"
expect_fail 1 pod image fetch --tls-verify=false "$ref"
assert_contains "$ERR" "digest mismatch"
assert_eq "$(pod image list --json | jq length)" 0 "images after a corrupt blob"
[[ ! -e $STORE/blobs/sha256/${layer#sha256:} ]] || fail "the corrupt blob entered the store"
cp "$T/blob.orig" "$data"

note "TLS: the system CAs refuse the test CA; --cert-dir trusts it"
start_registry tls tls
push "$T/layout:v1" "docker://$REG_TLS/test/busybox:v1"
rm -rf "$STORE"
expect_fail 1 pod image fetch "docker://$REG_TLS/test/busybox:v1"
assert_contains "$ERR" "TLS with $REG_TLS failed"
assert_contains "$ERR" "certificate"
mkdir -p "$T/certs.d"
cp "$T/pki/ca.crt" "$T/certs.d/ca.crt"
pod image fetch --cert-dir "$T/certs.d" "docker://$REG_TLS/test/busybox:v1" >/dev/null 2>"$T/err" ||
  fail "fetch with --cert-dir: $(cat "$T/err")"
check_like_skopeo "$REG_TLS/test/busybox:v1" "docker://$REG_TLS/test/busybox:v1" amd64 --cert-dir "$T/certs.d"
[[ $(cat "$T/err") != *"tls-verify"* ]] || fail "a verified fetch warned about --tls-verify"
rm -rf "$STORE"
pod image fetch --tls-verify=false "docker://$REG_TLS/test/busybox:v1" >/dev/null 2>"$T/err" ||
  fail "fetch with --tls-verify=false: $(cat "$T/err")"
assert_contains "$(cat "$T/err")" "--tls-verify=false"
expect_fail 1 pod image fetch "http://$REG_PLAIN/test/busybox:v1"
assert_contains "$ERR" "needs --tls-verify=false"

note "TLS with client certificates: client.cert and client.key from --cert-dir"
start_registry mtls mtls
mkdir -p "$T/push-certs" && cp "$T/pki/client.cert" "$T/pki/client.key" "$T/pki/ca.crt" "$T/push-certs/"
push "$T/layout:v1" "docker://$REG_MTLS/test/busybox:v1" --dest-cert-dir "$T/push-certs"
rm -rf "$STORE"
expect_fail 1 pod image fetch --cert-dir "$T/certs.d" "docker://$REG_MTLS/test/busybox:v1"
assert_contains "$ERR" "TLS with $REG_MTLS failed"
cp "$T/pki/client.cert" "$T/pki/client.key" "$T/certs.d/"
pod image fetch --cert-dir "$T/certs.d" "docker://$REG_MTLS/test/busybox:v1" >/dev/null 2>"$T/err" ||
  fail "fetch with a client certificate: $(cat "$T/err")"
rm "$T/certs.d/client.key"
expect_fail 1 pod image fetch --cert-dir "$T/certs.d" "docker://$REG_MTLS/test/busybox:v1"
assert_contains "$ERR" "client certificate client.cert has no key client.key"

note "plain HTTP written as http:// with --tls-verify=false"
rm -rf "$STORE"
pod image fetch --tls-verify=false "http://$REG_PLAIN/test/busybox:v1" >/dev/null 2>"$T/err" ||
  fail "fetch http://: $(cat "$T/err")"

note "basic auth (htpasswd): refused without credentials, accepted from an auth file"
htpasswd -Bbn alice wonderland >"$T/htpasswd" 2>/dev/null
start_registry basic htpasswd "$T/htpasswd"
push "$T/layout:v1" "docker://$REG_BASIC/test/busybox:v1" --dest-creds alice:wonderland
rm -rf "$STORE"
expect_fail 1 pod image fetch --tls-verify=false "docker://$REG_BASIC/test/busybox:v1"
assert_contains "$ERR" "authentication required for scope repository:test/busybox:pull"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$REG_BASIC" "$(printf alice:wrong | base64)" >"$T/bad-auth.json"
expect_fail 1 pod image fetch --tls-verify=false --authfile "$T/bad-auth.json" "docker://$REG_BASIC/test/busybox:v1"
assert_contains "$ERR" "the credentials of 'alice' were refused"
printf '{"auths":{"http://%s/v1/":{"auth":"%s"}}}' "$REG_BASIC" "$(printf alice:wonderland | base64)" >"$T/auth.json"
pod image fetch --tls-verify=false --authfile "$T/auth.json" "docker://$REG_BASIC/test/busybox:v1" >/dev/null 2>"$T/err" ||
  fail "fetch with --authfile: $(cat "$T/err")"
check_like_skopeo "$REG_BASIC/test/busybox:v1" "docker://$REG_BASIC/test/busybox:v1" amd64 --tls-verify=false --creds alice:wonderland
rm -rf "$STORE"
mkdir -p "$T/home/.docker" && cp "$T/auth.json" "$T/home/.docker/config.json"
HOME=$T/home XDG_RUNTIME_DIR=$T/none pod image fetch --tls-verify=false "docker://$REG_BASIC/test/busybox:v1" >/dev/null 2>"$T/err" ||
  fail "fetch with ~/.docker/config.json: $(cat "$T/err")"

note "token auth: a bearer token from the token server, for the pull scope"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pod test token" \
  -keyout "$T/pki/token.key" -out "$T/pki/token.crt" 2>/dev/null
rm -f "$T/token.port"
python3 "$FIXTURES/token_server.py" --key "$T/pki/token.key" --cert "$T/pki/token.crt" --issuer pod-test \
  --user alice:wonderland --log "$T/token.log" --port-file "$T/token.port" &
tpid=$!
at_exit "kill $tpid 2>/dev/null; wait $tpid 2>/dev/null"
for _ in $(seq 100); do [[ -s $T/token.port ]] && break; sleep 0.1; done
[[ -s $T/token.port ]] || fail "the token server did not start"
start_registry bearer token "http://127.0.0.1:$(cat "$T/token.port")/token" pod-test pod-registry "$T/pki/token.crt"
push "$T/layout:v1" "docker://$REG_BEARER/test/busybox:v1" --dest-creds alice:wonderland
rm -rf "$STORE"
expect_fail 1 pod image fetch --tls-verify=false "docker://$REG_BEARER/test/busybox:v1"
assert_contains "$ERR" "refused scope repository:test/busybox:pull"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$REG_BEARER" "$(printf alice:wonderland | base64)" >"$T/auth.json"
: >"$T/token.log"
pod image fetch --tls-verify=false --authfile "$T/auth.json" "docker://$REG_BEARER/test/busybox:v1" >/dev/null 2>"$T/err" ||
  fail "bearer fetch: $(cat "$T/err")"
grep -q 'GET /token?service=pod-registry&scope=repository%3Atest%2Fbusybox%3Apull ' "$T/token.log" ||
  fail "no token asked for the pull scope: $(cat "$T/token.log")"
# One token serves the whole fetch (four GETs, two threads): it is cached for the scope.
assert_eq "$(grep -c 'GET /token' "$T/token.log")" 1 "token requests of one fetch"
check_like_skopeo "$REG_BEARER/test/busybox:v1" "docker://$REG_BEARER/test/busybox:v1" amd64 --tls-verify=false --creds alice:wonderland
note "an ordinary user fetches into its own store, owners in its subordinate range"
make_test_user 500000 65536
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
out=$(as_user "$POD" image fetch --tls-verify=false "docker://$REG_PLAIN/test/busybox:v1" 2>&1) ||
  fail "rootless fetch: $out"
ustore=$home/.local/share/pod
layer=$(jq -r '.layers[0].digest' "$ustore/blobs/sha256/$(jq -r '.manifests[0].digest' "$ustore/index.json" | cut -d: -f2)")
utree=$ustore/trees/${layer#sha256:}/root
assert_eq "$(stat -c %u:%g "$utree/home/app/notes")" "$((500000 + 1233)):$((500000 + 5677))" "rootless owner of home/app/notes"
assert_eq "$(cat "$utree/etc/motd")" "amd64 image" "rootless content"
as_user "$POD" image verify >/dev/null 2>&1 || fail "verify as the user"
echo "fetch_registry: ok"
