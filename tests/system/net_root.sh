#!/bin/bash
# Root's pods on the CNI bridge (pod0): two pods talk TCP, --port serves HTTP to the
# host on 127.0.0.1, --net-rate holds a transfer near its rate, the namespace is bound
# for nsenter, a taken host port is refused, and stop + gc leave no veth, no
# firewall rule and no IPAM lease behind.
source "$(dirname "$0")/lib.sh"
need_root
[[ -x /usr/lib/cni/bridge ]] || skip "CNI plugins missing (Debian: containernetworking-plugins)"
command -v curl >/dev/null || skip "curl missing"
command -v jq >/dev/null || skip "jq missing"

keep_default_network_as_found
pod image import "$POD_DEFAULT_IMAGE" --name busybox >/dev/null
at_exit "'$POD' --root '$STORE' stop srv >/dev/null 2>&1; '$POD' --root '$STORE' stop web >/dev/null 2>&1; \
  '$POD' --root '$STORE' stop rate >/dev/null 2>&1; '$POD' --root '$STORE' stop k >/dev/null 2>&1; \
  '$POD' --root '$STORE' gc >/dev/null 2>&1"

veths() { ip -o link show type veth | awk -F': ' '{print $2}' | sed 's/@.*//' | sort; }
# A pod's own rules: the bridge's masquerade chain (CNI-<hash>) and its jumps, portmap's
# CNI-DN-<hash> chains, anything naming a pod address or container id. (portmap's shared
# CNI-HOSTPORT-* chains stay once made, as with every CNI runtime.)
rules() {
  { iptables-save 2>/dev/null; nft list ruleset 2>/dev/null; } |
    grep -E 'CNI-DN-|CNI-[0-9a-f]{20,}|10\.77\.0\.[0-9]+/32|id: "?[0-9a-f]{8}-' | sort || true
}
leases() { ls /run/pod/cni/networks/pod0 2>/dev/null | grep -E '^[0-9.]+$' | sort || true; }
veths_before=$(veths); rules_before=$(rules); leases_before=$(leases)
# iproute2 makes /run/netns a mount point of its own the first time `ip netns add` runs
# on a machine (below, for a peer outside pod): not pod's; undone at exit when it was ours.
mountpoint -q /run/netns || at_exit "umount /run/netns 2>/dev/null"
mounts() { grep -v ' /run/netns ' /proc/self/mountinfo | grep -c .; }
mounts_before=$(mounts)

# Waits until `$@` succeeds (10 s at most).
retry() { for _ in $(seq 50); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done; "$@"; }
address() { pod status "$1" --json | jq -r .net.address; }

note "--plan shows the mode; host mode warns about abstract sockets"
plan=$(pod run --plan --port 18080:80 busybox -- true)
assert_contains "$plan" "bridge: CNI network pod0"
assert_contains "$plan" "127.0.0.1:18080:80/tcp"
assert_contains "$(pod run --plan --net host busybox -- true)" "abstract unix sockets"
expect_fail 125 pod run --net host --port 18080:80 busybox -- true
assert_contains "$ERR" "--port"

note "a foreground pod's veth is gone when pod run returns"
pod run --rm busybox -- true
assert_eq "$(veths)" "$veths_before" "veth interfaces right after a pod"
assert_eq "$(leases)" "$leases_before" "IPAM leases right after a pod"

if [[ $(jq -r '.podMasquerade' /etc/pod/net.d/pod0.conflist) == true ]]; then
  note "pod0's subnet is masqueraded by one rule, put back when missing"
  iptables -w -t nat -C "${POD0_MASQUERADE[@]}" || fail "no masquerade rule for pod0"
  iptables -w -t nat -D "${POD0_MASQUERADE[@]}"
  # A peer beyond the host (a namespace of its own on a veth): it sees the host's
  # address, not the pod's, and could not answer the pod's otherwise.
  outside=podtout$$
  ip netns add $outside
  at_exit "ip netns del $outside 2>/dev/null; ip link del podtx$$ 2>/dev/null"
  ip link add podtx$$ type veth peer name eth0 netns $outside
  ip addr add 10.99.0.1/24 dev podtx$$ && ip link set podtx$$ up
  ip -n $outside addr add 10.99.0.2/24 dev eth0 && ip -n $outside link set eth0 up
  ip netns exec $outside python3 -c 'import socket; s = socket.socket(); s.bind(("10.99.0.2", 5001)); s.listen(1)
s.settimeout(20); c, a = s.accept(); print(a[0])' >"$T/peer" &
  peer=$!
  listening() { ip netns exec $outside ss -Hltn 'sport = :5001' | grep -q .; }
  retry listening
  pod run --rm busybox -- sh -c 'echo hi | nc -w 5 10.99.0.2 5001' || fail "the pod could not reach 10.99.0.2"
  wait $peer || fail "the peer saw no connection"
  assert_eq "$(cat "$T/peer")" 10.99.0.1 "the address the peer saw"
  iptables -w -t nat -C "${POD0_MASQUERADE[@]}" || fail "the masquerade rule was not put back"
  assert_eq "$(iptables -w -t nat -S POSTROUTING 2>/dev/null | grep -c 'pod network pod0')" 1 "pod0's masquerade rules"
  ip netns del $outside  # (its end of the veth goes with it)
fi
note "a list's podMasquerade that is not a boolean is refused, naming the list"
at_exit "rm -f /etc/pod/net.d/podtbad.conflist"
echo '{"cniVersion": "1.0.0", "name": "podtbad", "podMasquerade": "yes",
  "plugins": [{"type": "bridge", "bridge": "podtbad0", "ipam": {"type": "host-local", "subnet": "10.78.0.0/24"}}]}' \
  >/etc/pod/net.d/podtbad.conflist
expect_fail 125 pod run --net podtbad busybox -- true
assert_contains "$ERR" "CNI config list 'podtbad': \"podMasquerade\" is not true or false"
ip link show podtbad0 >/dev/null 2>&1 && fail "a bridge was made for the refused list"

note "a list with the bridge plugin's own ipMasq: DEL runs with the namespace, nothing left"
at_exit "rm -f /etc/pod/net.d/podtmasq.conflist; ip link del podtmasq0 2>/dev/null; rm -rf /run/pod/cni/networks/podtmasq"
echo '{"cniVersion": "1.0.0", "name": "podtmasq", "plugins": [{"type": "bridge", "bridge": "podtmasq0",
  "isGateway": true, "ipMasq": true, "ipam": {"type": "host-local", "subnet": "10.79.0.0/24",
  "dataDir": "/run/pod/cni/networks"}}]}' >/etc/pod/net.d/podtmasq.conflist
assert_eq "$(pod run --rm --net podtmasq busybox -- sh -c 'ip -o -4 addr show eth0 | grep -c 10.79.0.')" 1 \
  "the pod's address on podtmasq"
assert_eq "$(veths)" "$veths_before" "veth interfaces after a pod on podtmasq"
assert_eq "$(rules)" "$rules_before" "firewall rules after a pod on podtmasq"
[[ -z $(ls /run/pod/cni/networks/podtmasq 2>/dev/null | grep -E '^[0-9.]+$') ]] || fail "a lease left on podtmasq"

note "two pods on the bridge exchange TCP"
pod run -d --name srv busybox -- sh -c 'while :; do nc -l -p 5000; done' >/dev/null
srv_ip=$(address srv)
[[ $srv_ip == 10.77.0.* ]] || fail "server address '$srv_ip' is not on pod0"
uuid=$(pod status srv --json | jq -r .uuid)
# (sent again until the server's log shows it: the server may not listen yet)
delivered() {
  pod run --rm busybox -- sh -c "echo hello-over-bridge | nc $srv_ip 5000" && sleep 0.3 &&
    grep -q hello-over-bridge "$STORE/pods/$uuid/log"
}
retry delivered
assert_eq "$(pod run --rm busybox -- sh -c 'grep -c nameserver /etc/resolv.conf')" \
  "$(grep -c nameserver /etc/resolv.conf)" "the host's name servers"

note "the namespace is bound at pods/<uuid>/ns/net for nsenter"
assert_eq "$(pod status srv --json | jq -r .netns)" "$STORE/pods/$uuid/ns/net" "netns path"
assert_contains "$(nsenter --net="$STORE/pods/$uuid/ns/net" ip -o -4 addr show eth0)" "$srv_ip"

note "--port serves HTTP to the host on 127.0.0.1"
pod run -d --name web --port 18080:80 busybox -- \
  sh -c 'mkdir /www && echo hi-from-pod > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
retry curl -sf http://127.0.0.1:18080/
assert_eq "$(curl -sf http://127.0.0.1:18080/)" hi-from-pod "HTTP through the port"
expect_fail 125 pod run --port 18080:80 busybox -- true
assert_contains "$ERR" "host port 18080/tcp on 127.0.0.1 is already in use"

note "--net-rate 1mbit holds a transfer near 1 Mbit/s"
pod run -d --name rate --net-rate 1mbit --port 18081:80 busybox -- \
  sh -c 'mkdir /www && dd if=/dev/zero of=/www/big bs=1024 count=384 2>/dev/null && exec httpd -f -p 80 -h /www' >/dev/null
retry curl -s -o /dev/null http://127.0.0.1:18081/
secs=$(curl -sf -o /dev/null -w '%{time_total}' http://127.0.0.1:18081/big)
bits=$((384 * 1024 * 8))
rate=$(awk -v b=$bits -v s="$secs" 'BEGIN { printf "%d", b / s }')
note "384 KiB in ${secs}s: $rate bit/s"
((rate > 600000 && rate < 1400000)) || fail "transfer at $rate bit/s, not near 1 Mbit/s"

note "stop and gc leave no veth, firewall rule, lease or mount"
for p in srv web rate; do pod stop "$p" --timeout 2; done
[[ -z $(curl -s -m 2 http://127.0.0.1:18080/ || true) ]] || fail "port 18080 still answers after stop"
pod gc >/dev/null
assert_eq "$(pod list --json)" "[]" "pods after gc"
assert_eq "$(veths)" "$veths_before" "veth interfaces"
assert_eq "$(rules)" "$rules_before" "firewall rules"
assert_eq "$(leases)" "$leases_before" "IPAM leases"
assert_eq "$(mounts)" "$mounts_before" "mounts"

note "a pod killed with its pod run: gc undoes its network"
(exec "$POD" --root "$STORE" run --name k busybox -- sleep 30 >/dev/null 2>&1) &
runner=$!
net_up() { [[ $(pod status k --json 2>/dev/null | jq -r '"\(.state) \(.net.active)"') == "running true" ]]; }
retry net_up
kill -9 $runner; wait $runner 2>/dev/null || true
pod stop k --timeout 1 >/dev/null 2>&1 || true
pod gc >/dev/null
assert_eq "$(veths)" "$veths_before" "veth interfaces after kill -9"
assert_eq "$(rules)" "$rules_before" "firewall rules after kill -9"
assert_eq "$(leases)" "$leases_before" "IPAM leases after kill -9"
echo ok
