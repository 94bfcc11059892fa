#!/usr/bin/env bash
# Simulated hosts for the multi-host test (Tests/NodeTests/MultiHostTests.swift): Linux network namespaces, each
# with one veth link to a bridge and one address; the bridge holds the test's own address (the client host).
#
#   scripts/netns-hosts.sh probe                  exit 0 when namespaces, veth and bridges can be made here (root)
#   scripts/netns-hosts.sh create TAG SUBNET N    namespaces TAG-h1..hN at SUBNET.1..N/24, bridge TAGbr at SUBNET.254
#                                                 (exit 3 when the machine already routes SUBNET: pick another)
#   scripts/netns-hosts.sh cut TAG I | heal TAG I  take host I's link down (its bridge side) / up again
#   scripts/netns-hosts.sh destroy TAG            remove every namespace, link and bridge of TAG (also half-made ones)
#   scripts/netns-hosts.sh sweep                  destroy what runs tagged mq<PID>x<K> left behind when PID is gone (a
#                                                 test run killed before its clean-up); live runs are left alone
#
# TAG is at most 12 characters ([a-z0-9]; link names are TAG + 3); SUBNET is three octets (10.213.7). Every command
# is bounded: no loops wait on anything.
set -euo pipefail

command=${1:-}
case "$command" in
probe)
    command -v ip >/dev/null || { echo "netns-hosts: no ip command (iproute2)"; exit 1; }
    [ "$(id -u)" = 0 ] || { echo "netns-hosts: not root"; exit 1; }
    tag=mqp$$
    trap 'ip netns del "$tag" 2>/dev/null || true; ip link del "${tag}v" 2>/dev/null || true; ip link del "${tag}b" 2>/dev/null || true' EXIT
    ip netns add "$tag" && ip link add "${tag}v" type veth peer name "${tag}w" && ip link add "${tag}b" type bridge \
        && ip link set "${tag}w" netns "$tag" && ip netns exec "$tag" ip link set lo up \
        || { echo "netns-hosts: cannot create namespaces, veth links or bridges here"; exit 1; }
    ;;
create)
    tag=$2 subnet=$3 count=$4
    # A subnet this machine already reaches other than through its default gateway (its own network, another test's
    # hosts) is refused: exit 3, pick another.
    gateway=$(ip -4 route show default | awk '{print $3; exit}')
    route=$(ip -4 route get "$subnet.1" 2>/dev/null | head -1 || true)
    if [ -n "$route" ] && { [ -z "$gateway" ] || [[ "$route" != *" via $gateway "* ]]; }; then
        echo "netns-hosts: $subnet.0/24 is in use here ($route)"
        exit 3
    fi
    ip link add "${tag}br" type bridge
    ip addr add "$subnet.254/24" dev "${tag}br"
    ip link set "${tag}br" up
    for i in $(seq 1 "$count"); do
        ns="$tag-h$i"
        ip netns add "$ns"
        ip link add "${tag}h$i" type veth peer name "${tag}p$i"
        ip link set "${tag}p$i" netns "$ns"
        ip link set "${tag}h$i" master "${tag}br"
        ip link set "${tag}h$i" up
        ip netns exec "$ns" ip link set lo up
        ip netns exec "$ns" ip addr add "$subnet.$i/24" dev "${tag}p$i"
        ip netns exec "$ns" ip link set "${tag}p$i" up
    done
    # Bridged frames between hosts would otherwise cross the machine's iptables FORWARD chain (br_netfilter).
    if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && command -v iptables >/dev/null; then
        iptables -I FORWARD -i "${tag}br" -o "${tag}br" -j ACCEPT 2>/dev/null || true
    fi
    ;;
cut) ip link set "$2h$3" down ;;
heal) ip link set "$2h$3" up ;;
destroy)
    tag=$2
    # Exact names only: TAG mq12 must not take mq123's links.
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$tag-h[0-9]+$" || true); do ip netns del "$ns" || true; done
    for link in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^${tag}(br|h[0-9]+|p[0-9]+)$" || true); do
        ip link del "$link" 2>/dev/null || true
    done
    if command -v iptables >/dev/null; then
        iptables -D FORWARD -i "${tag}br" -o "${tag}br" -j ACCEPT 2>/dev/null || true
    fi
    ;;
sweep)
    for tag in $(ip netns list | awk '{print $1}' | sed -n 's/^\(mq[0-9][0-9]*x[0-9][0-9]*\)-h[0-9]*$/\1/p' | sort -u); do
        pid=${tag#mq}
        kill -0 "${pid%x*}" 2>/dev/null || "$0" destroy "$tag"
    done
    ;;
*) echo "usage: $0 probe | create TAG SUBNET N | cut TAG I | heal TAG I | destroy TAG | sweep" >&2; exit 2 ;;
esac
