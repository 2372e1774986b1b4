#!/bin/sh
# modules: xen-netfront
# Guest side of the net scenario: xen-netfront's eth0 as netback serves it.
# The kernel command line says what to do: rxnet.addr=ADDR/LEN (eth0's
# address), rxnet.via=GW (a host route to GW on eth0, and routes to the
# ping targets through it), rxnet.ping=A,B,... (addresses to reach, each
# retried for up to 90 s). Reports eth0's MAC and each ping's outcome, then
# stays up for the host and its peers to ping it.
echo "guest: init started"
addr= via= targets=
for w in $(cat /proc/cmdline); do
    case $w in
    rxnet.addr=*) addr=${w#*=} ;;
    rxnet.via=*) via=${w#*=} ;;
    rxnet.ping=*) targets=$(echo "${w#*=}" | tr , ' ') ;;
    esac
done
for _ in $(seq 100); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
[ -e /sys/class/net/eth0 ] || { echo "guest: no eth0"; ls /sys/class/net; while :; do sleep 1; done; }
echo "guest: eth0 mac=$(cat /sys/class/net/eth0/address) mtu=$(cat /sys/class/net/eth0/mtu)"
ip link set lo up
ip link set eth0 up
ip addr add "$addr" dev eth0
if [ -n "$via" ]; then
    ip route add "$via" dev eth0
    for t in $targets; do [ "$t" = "$via" ] || ip route add "$t" via "$via" dev eth0; done
fi
echo "guest: net up addr=$addr"
for t in $targets; do
    ok=
    for _ in $(seq 45); do
        if ping -c 1 -W 2 "$t" >/tmp/ping 2>&1; then ok=1; break; fi
        sleep 0.1
    done
    if [ -n "$ok" ]; then
        echo "guest: ping $t ok: $(grep -o 'time=[^ ]* ms' /tmp/ping)"
    else
        echo "guest: ping $t failed: $(tail -n 2 /tmp/ping | tr '\n' ' ')"
    fi
done
echo "guest: done"
while :; do sleep 1; done
