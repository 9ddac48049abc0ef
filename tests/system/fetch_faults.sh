#!/bin/bash
# pod image fetch against a registry that misbehaves on purpose (fixtures/registry/
# fake_registry.py): each bad response is refused with a clear error and exit status 1,
# and nothing partial becomes visible. Also: redirects, the bearer flow with token
# renewal, a kill -9 mid-fetch and the fetch after it that reuses verified blobs.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fetch_lib.sh"

# A two-layer image in an OCI layout, made by umoci.
small_rootfs "$T/rootfs" "fault fixture"
make_image "$T/layout" v1 "$T/rootfs"
b=$(mktemp -d "$T/bundle.XXXX")
umoci unpack --image "$T/layout:v1" "$b/bundle" >/dev/null
head -c 3000000 /dev/urandom >"$b/bundle/rootfs/etc/big"
umoci repack --image "$T/layout:v1" "$b/bundle" >/dev/null
rm -rf "$b"
manifest=$(jq -r '.manifests[0].digest' "$T/layout/index.json")
layers=($(jq -r '.layers[].digest' "$T/layout/blobs/sha256/${manifest#sha256:}"))
[[ ${#layers[@]} == 2 ]] || fail "fixture: want 2 layers, got ${#layers[@]}"

# start_fake MODE [ARGS…]: sets FAKE (host:port), FAKE_PID and FAKE_LOG.
start_fake() {
  local mode=$1; shift
  FAKE_LOG=$T/fake-$mode.log
  rm -f "$T/fake.port"
  python3 "$FIXTURES/fake_registry.py" --layout "$T/layout" --mode "$mode" --log "$FAKE_LOG" \
    --port-file "$T/fake.port" "$@" &
  FAKE_PID=$!
  at_exit "kill $FAKE_PID 2>/dev/null; wait $FAKE_PID 2>/dev/null"
  for _ in $(seq 100); do [[ -s $T/fake.port ]] && break; sleep 0.1; done
  [[ -s $T/fake.port ]] || fail "the fake registry ($mode) did not start"
  FAKE=127.0.0.1:$(cat "$T/fake.port")
}
stop_fake() { kill "$FAKE_PID" 2>/dev/null || true; wait "$FAKE_PID" 2>/dev/null || true; }

# Nothing of a failed fetch is visible: no image, no tree; every blob in the store is
# one that hashes to its name (verified layers may stay: a later fetch reuses them).
nothing_visible() {
  assert_eq "$(pod image list --json | jq length)" 0 "images after a failed fetch ($1)"
  [[ -z $(ls -A "$STORE/trees") ]] || fail "a tree is visible after a failed fetch ($1): $(ls "$STORE/trees")"
  local f
  for f in "$STORE"/blobs/sha256/*; do
    [[ -e $f ]] || continue
    assert_eq "$(sha256sum <"$f" | cut -d' ' -f1)" "$(basename "$f")" "blob left by a failed fetch ($1)"
  done
}

# fault MODE WANT [fake args…]: the fetch fails with exit 1 and an error containing WANT.
fault() {
  local mode=$1 want=$2; shift 2
  note "fault: $mode"
  rm -rf "$STORE"
  start_fake "$mode" "$@"
  expect_fail 1 pod image fetch --tls-verify=false "docker://$FAKE/test/busybox:v1"
  assert_contains "$ERR" "$want" "error for $mode"
  echo "    ${ERR##*$'\n'}" >&2
  nothing_visible "$mode"
  stop_fake
}

fault wrong-digest "digest mismatch"
fault short "size mismatch"
fault too-many-bytes "more than the"
# Stopped at the limit, not after: the fake could not send its 64 MiB of extra bytes.
lines=$(grep -c '^too-many-bytes: sent' "$FAKE_LOG" || true)
((lines > 0)) || fail "the fake did not log what it sent"
awk '/^too-many-bytes: sent/ { if ($3 >= $5 - 32 * 1024 * 1024) bad = 1 } END { exit bad }' "$FAKE_LOG" ||
  fail "the fetch did not stop at the limit: $(grep '^too-many-bytes: sent' "$FAKE_LOG")"
fault missing-tag "tag 'v1' in repository 'test/busybox' not found"
fault missing-repo "repository 'test/busybox' not found"
fault unauthorized "scope repository:test/busybox:pull"
fault forbidden "access denied to scope repository:test/busybox:pull"
fault redirect-loop "redirect loop"
fault redirect-ftp "other than http or https"
fault oversized-manifest "larger than 4194304 bytes"
fault unknown-media-type "unknown manifest media type 'application/vnd.example.thing.v1+json'"
fault malformed-manifest "is not valid JSON"
fault drop "connection dropped"

note "fault: the registry stops mid-download"
rm -rf "$STORE"
start_fake slow --slow "${layers[1]}"
pod image fetch --tls-verify=false "docker://$FAKE/test/busybox:v1" >/dev/null 2>"$T/err" &
fetch_pid=$!
for _ in $(seq 100); do grep -q "sent half" "$FAKE_LOG" && break; sleep 0.1; done
grep -q "sent half" "$FAKE_LOG" || fail "the fetch never reached the stalled layer"
kill -9 "$FAKE_PID"
rc=0; wait "$fetch_pid" || rc=$?
assert_eq "$rc" 1 "exit status when the registry stops"
assert_contains "$(cat "$T/err")" "the connection dropped"
nothing_visible "registry stopped"

note "fault: a registry that is not listening"
rm -rf "$STORE"
port=$(free_port)
expect_fail 1 pod image fetch --tls-verify=false "docker://127.0.0.1:$port/test/busybox:v1"
assert_contains "$ERR" "cannot connect to 127.0.0.1:$port"
nothing_visible "not listening"

note "a bare REPO:TAG is refused naming the form to use"
expect_fail 1 pod image fetch busybox:latest
assert_contains "$ERR" "docker://HOST[:PORT]/REPO"

note "redirects to blob storage are followed"
rm -rf "$STORE"
start_fake redirect
digest=$(pod image fetch --tls-verify=false "docker://$FAKE/test/busybox:v1" 2>"$T/err") || fail "fetch via redirects: $(cat "$T/err")"
assert_eq "$digest" "$manifest" "digest fetched via redirects"
grep -q '"GET /storage/' "$FAKE_LOG" || fail "the blobs did not come from the storage URL"
assert_eq "$(cat "$(layer_tree "$FAKE/test/busybox:v1")/etc/motd")" "fault fixture" "content via redirects"
stop_fake

note "bearer tokens: fetched with the credentials, renewed on 401"
rm -rf "$STORE"
start_fake bearer --user alice:wonderland
expect_fail 1 pod image fetch --tls-verify=false "docker://$FAKE/test/busybox:v1"
assert_contains "$ERR" "refused scope repository:test/busybox:pull"
mkdir -p "$T/run/containers"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$FAKE" "$(printf alice:wonderland | base64)" >"$T/run/containers/auth.json"
before=$(grep -c '^token request' "$FAKE_LOG")
# The default location, $XDG_RUNTIME_DIR/containers/auth.json.
XDG_RUNTIME_DIR=$T/run pod image fetch --tls-verify=false --parallel 1 "docker://$FAKE/test/busybox:v1" >/dev/null 2>"$T/err" ||
  fail "bearer fetch: $(cat "$T/err")"
tokens=$(($(grep -c '^token request' "$FAKE_LOG") - before))
# Each token is good for two requests; the fetch makes four with one (manifest, config,
# two layers): the first token runs out and must be renewed on the 401 that follows.
((tokens >= 2)) || fail "want the token renewed on 401 (2+ token requests), saw $tokens"
grep -q 'scope=repository%3Atest%2Fbusybox%3Apull' "$FAKE_LOG" || fail "the token was not asked for the pull scope"
stop_fake

note "kill -9 mid-fetch leaves nothing visible; the next fetch reuses the verified layer"
rm -rf "$STORE"
start_fake slow --slow "${layers[1]}"
pod image fetch --tls-verify=false "docker://$FAKE/test/busybox:v1" >/dev/null 2>&1 &
fetch_pid=$!
for _ in $(seq 100); do [[ -e $STORE/blobs/sha256/${layers[0]#sha256:} ]] && grep -q "sent half" "$FAKE_LOG" && break; sleep 0.1; done
[[ -e $STORE/blobs/sha256/${layers[0]#sha256:} ]] || fail "the first layer was not adopted while the second downloads"
kill -9 "$fetch_pid"
wait "$fetch_pid" 2>/dev/null || true
nothing_visible "kill -9"
stop_fake
start_fake normal
pod image fetch --tls-verify=false "docker://$FAKE/test/busybox:v1" >/dev/null 2>"$T/err" || fail "fetch after kill -9: $(cat "$T/err")"
grep -q "GET /v2/test/busybox/blobs/${layers[0]}" "$FAKE_LOG" && fail "the verified layer was downloaded again"
grep -q "GET /v2/test/busybox/blobs/${layers[1]}" "$FAKE_LOG" || fail "the second layer was not downloaded"
[[ -z $(ls -A "$STORE/tmp") ]] || fail "staging debris left: $(ls "$STORE/tmp")"
assert_eq "$(cat "$(layer_tree "$FAKE/test/busybox:v1")/etc/motd")" "fault fixture" "content after resuming"
pod image verify >/dev/null 2>&1 || fail "verify after resuming"
stop_fake
echo "fetch_faults: ok"
