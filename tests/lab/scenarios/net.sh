# Network (issue 6): four Debian 12 PVH guests made with xl create, each with
# one vif served by netback in its domain process. The scenario makes a
# bridge xenbr0 (no uplink: nothing leaves the lab) with 169.254.1.1/16 for
# the lab host. Guests a and b are bridged (169.254.10.2 and .3) and must
# ping each other and the lab host, and the lab host them; guest r is routed
# (script=vif-route, ip=169.254.20.2, gatewaydev=xenbr0, its TAP named by
# vifname=rt-lab0) and guest n behind
# NAT (script=vif-nat, ip=169.254.30.2; its router 169.254.30.129), both must
# reach the lab host. Only link-local addresses are used. Checks the MACs the
# guests see against xl network-list, hotplug-status, the TAPs on the
# bridge, and that the TAPs are gone after xl destroy.

XL=$RXEN_BIN/xl
XS=$RXEN_BIN/xenstore
source "$REPO/tests/lab/lib.sh"
[ -x "$RXEN_BIN/rxen-domain" ] || { echo "FAILED: no $RXEN_BIN/rxen-domain"; exit 1; }

start_xenstored
finish() {
    status=$?
    destroy_domains
    kill "$xsd" 2>/dev/null || true
    ip link del xenbr0 2>/dev/null || true
    if [ $status -ne 0 ]; then
        ip -o link show || true
        ip route show || true
        for f in "$RXEN_LOG_DIR"/*.log; do
            [ -f "$f" ] || continue
            echo "--- $f"
            grep "guest:\|netfront\|vif\|xen_net" "$f" | head -n 40 || true
            grep -n -m1 -A60 "BUG\|Oops\|general protection\|unable to handle" "$f" || tail -n 30 "$f"
        done
    fi
}
trap finish EXIT

# The lab's kernel has TUN/TAP as a module; its device node appears once loaded.
[ -e /dev/net/tun ] || modprobe tun || true
[ -e /dev/net/tun ] || fail "no /dev/net/tun in the lab"
ip link add xenbr0 type bridge
ip addr add 169.254.1.1/16 dev xenbr0
ip link set xenbr0 up
ok "bridge xenbr0 with 169.254.1.1/16, no uplink"

guest() { # name, vif spec, kernel arguments
    cat >"$SCRATCH/$1.cfg" <<CFG
name = "$1"
type = "pvh"
kernel = "$RXEN_GUEST_KERNEL"
ramdisk = "$RXEN_INITRD_NET"
cmdline = "console=hvc0 $3"
memory = 128
vcpus = 1
vif = [ '$2' ]
CFG
    "$XL" create "$SCRATCH/$1.cfg" || fail "xl create $1"
}
guest a "bridge=xenbr0" "rxnet.addr=169.254.10.2/16 rxnet.ping=169.254.1.1,169.254.10.3"
guest b "bridge=xenbr0,mac=00:16:3e:00:0b:0b" "rxnet.addr=169.254.10.3/16 rxnet.ping=169.254.1.1,169.254.10.2"
guest r "script=vif-route,ip=169.254.20.2,gatewaydev=xenbr0,vifname=rt-lab0" "rxnet.addr=169.254.20.2/32 rxnet.via=169.254.1.1 rxnet.ping=169.254.1.1"
guest n "script=vif-nat,ip=169.254.30.2" "rxnet.addr=169.254.30.2/32 rxnet.via=169.254.30.129 rxnet.ping=169.254.30.129,169.254.1.1"
"$XL" list

domid_of() { "$XL" domid "$1"; }
for g in a b r n; do
    hs=$("$XS" read "/local/domain/0/backend/vif/$(domid_of $g)/0/hotplug-status")
    [ "$hs" = connected ] || fail "$g: hotplug-status is '$hs'"
done
ok "hotplug-status connected for all four vifs"
bridged=$(ip -o link show master xenbr0 | awk -F': ' '{print $2}' | sort | tr '\n' ' ')
[ "$bridged" = "vif$(domid_of a).0 vif$(domid_of b).0 " ] || fail "on xenbr0: '$bridged'"
ok "vif$(domid_of a).0 and vif$(domid_of b).0 are on xenbr0; routed and NAT vifs are not"
ip -o addr show dev "vif$(domid_of n).0" | grep -q "169.254.30.129/32" || fail "NAT vif has no router address"
ip route show | grep -q "169.254.20.2 dev rt-lab0" || fail "no host route to the routed guest through its vifname rt-lab0"

log() { echo "$RXEN_LOG_DIR/guest-$1.log"; }
done_() { grep -q "guest: done\|guest: no eth0" "$(log "$1")" 2>/dev/null; }
for g in a b r n; do wait_for 300 "guest $g's pings" done_ $g; done
for g in a b r n; do grep "guest: " "$(log $g)" | sed "s/^/$g: /"; done
"$XL" network-list a b r n

for g in a b r n; do
    grep -q "guest: ping .* failed\|guest: no eth0" "$(log $g)" && fail "guest $g"
    seen=$(sed -n 's/.*guest: eth0 mac=\([^ ]*\).*/\1/p' "$(log $g)" | tr -d '\r')
    listed=$("$XL" network-list $g | awk 'NR == 2 {print $3}')
    [ -n "$seen" ] && [ "$seen" = "$listed" ] || fail "$g: eth0 has $seen, network-list says $listed"
    st=$("$XL" network-list $g | awk 'NR == 2 {print $5}')
    [ "$st" = 4 ] || fail "$g: frontend state $st"
done
[ "$(sed -n 's/.*eth0 mac=\([^ ]*\).*/\1/p' "$(log b)" | tr -d '\r')" = 00:16:3e:00:0b:0b ] || fail "b's mac= not honoured"
ok "bridged a and b reached each other and the lab host; routed r and NAT n reached the lab host"
ok "each guest's eth0 MAC is the one xl network-list shows, frontends Connected"

# The lab has no iputils: busybox's ping (busybox-static, which the lab needs anyway).
for a in 169.254.10.2 169.254.10.3 169.254.20.2 169.254.30.2; do
    busybox ping -c 3 -W 2 "$a" >"$SCRATCH/ping" 2>&1 || { cat "$SCRATCH/ping"; fail "lab host cannot ping $a"; }
    echo "lab host -> $a: $(tail -n 1 "$SCRATCH/ping")"
done
ok "the lab host pings all four guests"

taps="vif$(domid_of a).0 vif$(domid_of b).0 rt-lab0 vif$(domid_of n).0"
for g in a b r n; do "$XL" destroy $g; done
for t in $taps; do
    ! ip link show "$t" >/dev/null 2>&1 || fail "$t left behind after xl destroy"
done
ip route show | grep -q "169.254.20.2" && fail "routed guest's host route left behind"
ok "xl destroy removed the TAPs and the routes"
