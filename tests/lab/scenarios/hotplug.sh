# Device hot-plug: xl block-attach/-list/-detach and xl network-attach/-list/
# -detach on a running Debian 12 PVH guest made with xl create with no disk
# and no vif. A raw image (8 MiB, a known text at its start) is attached as
# xvdb: the guest must see /dev/xvdb with 16384 sectors and that text, and
# xl block-list must show it Connected. A vif on a bridge the scenario makes
# (xenbr-hp, link-local address, no uplink) is attached with a given MAC: the
# guest must see eth0 with it, xl network-list must list it and its TAP must
# be on the bridge. Both are detached: the guest must lose them, the lists
# must be empty, the XenStore directories and the TAP gone, config.json
# without them. Then an empty cdrom drive (xvdc) is attached, which the guest
# must see with 0 sectors, removable and read-only; xl cd-insert puts a 4 MiB
# medium in, which the guest must see (size, first bytes), and xl cd-eject
# takes it out (0 sectors again). Then xl destroy.

XL=$RXEN_BIN/xl
XS=$RXEN_BIN/xenstore
source "$REPO/tests/lab/lib.sh"
[ -x "$RXEN_BIN/rxen-domain" ] || { echo "FAILED: no $RXEN_BIN/rxen-domain"; exit 1; }

start_xenstored
finish() {
    status=$?
    destroy_domains
    kill "$xsd" 2>/dev/null || true
    ip link del xenbr-hp 2>/dev/null || true
    [ $status -eq 0 ] || show_logs
}
trap finish EXIT

[ -e /dev/net/tun ] || modprobe tun || true
[ -e /dev/net/tun ] || fail "no /dev/net/tun in the lab"
ip link add xenbr-hp type bridge
ip addr add 169.254.1.1/16 dev xenbr-hp
ip link set xenbr-hp up

img=$SCRATCH/xvdb.img
printf 'rxen-hotplug-xvdb-ok' >"$img"
truncate -s 8M "$img"

cat >"$SCRATCH/hp.cfg" <<CFG
name = "hp"
type = "pvh"
kernel = "$RXEN_GUEST_KERNEL"
ramdisk = "$RXEN_INITRD_HOTPLUG"
cmdline = "console=hvc0"
memory = 128
vcpus = 1
CFG
"$XL" create "$SCRATCH/hp.cfg" || fail "xl create"
domid=$("$XL" domid hp)
log=$RXEN_LOG_DIR/guest-hp.log
said() { grep -q "guest: $1" "$log" 2>/dev/null; }
wait_for 300 "the guest's init" said ready
grep "guest: " "$log"

# The disk.
"$XL" block-attach hp "format=raw, vdev=xvdb, access=rw, target=$img" || fail "xl block-attach"
wait_for 120 "the guest to see xvdb" said "xvdb\|no xvdb"
grep "guest: xvdb\|guest: no xvdb" "$log"
said "xvdb sectors=16384 head=rxen-hotplug-xvdb-ok" || fail "the guest's xvdb is not the image"
ok "the guest sees /dev/xvdb: 16384 sectors, the image's first bytes"
"$XL" block-list hp | tee "$SCRATCH/bl"
[ "$(head -n 1 "$SCRATCH/bl")" = "Vdev  BE  handle state evt-ch ring-ref BE-path                       " ] || fail "block-list header"
row=$(awk 'NR == 2' "$SCRATCH/bl")
set -- $row
[ "$1 $2 $3 $4" = "51728 0 $domid 4" ] && [ "$7" = "/local/domain/0/backend/vbd/$domid/51728" ] || fail "block-list row: $row"
[ "$(wc -l <"$SCRATCH/bl")" = 2 ] || fail "block-list has more than one disk"
ok "xl block-list shows xvdb (51728) Connected"
grep -q "\"vdev\": *\"xvdb\"" "$RXEN_RUN_DIR/domain/$domid/config.json" || fail "xvdb not in config.json"

# The network interface.
"$XL" network-attach hp bridge=xenbr-hp mac=00:16:3e:00:0c:0c || fail "xl network-attach"
wait_for 120 "the guest to see eth0" said "eth0\|no eth0"
grep "guest: eth0\|guest: no eth0" "$log"
said "eth0 mac=00:16:3e:00:0c:0c" || fail "the guest's eth0 has another MAC"
"$XL" network-list hp | tee "$SCRATCH/nl"
set -- $(awk 'NR == 2' "$SCRATCH/nl")
[ "$1 $3" = "0 00:16:3e:00:0c:0c" ] || fail "network-list row: $*"
ip -o link show master xenbr-hp | grep -q "vif$domid.0" || fail "vif$domid.0 is not on xenbr-hp"
[ "$("$XS" read "/local/domain/0/backend/vif/$domid/0/hotplug-status")" = connected ] || fail "hotplug-status"
ok "the guest sees eth0 with 00:16:3e:00:0c:0c, as xl network-list says; vif$domid.0 is on xenbr-hp"

# Both go.
"$XL" block-detach hp xvdb || fail "xl block-detach"
"$XL" network-detach hp 0 || fail "xl network-detach"
wait_for 120 "the guest to lose xvdb and eth0" said detached
grep "guest: xvdb gone\|guest: eth0 gone\|still there" "$log"
said "xvdb gone" || fail "the guest still has xvdb"
said "eth0 gone" || fail "the guest still has eth0"
[ "$("$XL" block-list hp | wc -l)" = 1 ] || fail "block-list not empty"
[ "$("$XL" network-list hp | wc -l)" = 1 ] || fail "network-list not empty"
for p in /local/domain/0/backend/vbd/$domid/51728 /local/domain/$domid/device/vbd/51728 \
    /local/domain/0/backend/vif/$domid/0 /local/domain/$domid/device/vif/0; do
    ! "$XS" read "$p" >/dev/null 2>&1 || fail "$p left behind"
done
! ip link show "vif$domid.0" >/dev/null 2>&1 || fail "vif$domid.0 left behind"
grep -q "xvdb\|00:16:3e:00:0c:0c" "$RXEN_RUN_DIR/domain/$domid/config.json" && fail "config.json still has them"
ok "detached: the guest lost xvdb and eth0, lists empty, nodes and TAP gone"

# A detach of what is not there changes nothing.
"$XL" block-detach hp xvdb 2>"$SCRATCH/err" && fail "detaching xvdb twice succeeded"
grep -q "Error: Device xvdb not connected." "$SCRATCH/err" || fail "block-detach error: $(cat "$SCRATCH/err")"
# A removable drive: attached empty, a medium inserted, ejected.
iso=$SCRATCH/cd.iso
printf 'rxen-hotplug-cd-ok' >"$iso"
truncate -s 4M "$iso"
"$XL" block-attach hp ",,xvdc:cdrom,r" || fail "xl block-attach of an empty cdrom drive"
wait_for 120 "the guest to see xvdc" said "xvdc sectors\|no xvdc"
said "xvdc sectors=0 removable=1 ro=1" || fail "the guest's xvdc is not an empty read-only removable drive: $(grep "guest: .*xvdc" "$log")"
ok "an empty cdrom drive appears in the guest as xvdc: 0 sectors, removable, read-only"
"$XL" cd-insert hp xvdc "$iso" || fail "xl cd-insert"
wait_for 120 "the guest to see the medium" said "xvdc inserted\|xvdc no medium"
said "xvdc inserted sectors=8192 head=rxen-hotplug-cd-ok" || fail "the guest's xvdc is not the medium: $(grep "guest: xvdc" "$log")"
[ "$("$XS" read "/local/domain/0/backend/vbd/$domid/51744/params")" = "$iso" ] || fail "params is not the medium"
ok "xl cd-insert: the guest sees the medium's 8192 sectors and its first bytes"
"$XL" cd-eject hp xvdc || fail "xl cd-eject"
wait_for 120 "the guest to see the drive empty" said "xvdc ejected\|xvdc not ejected"
said "xvdc ejected sectors=0" || fail "the medium is still in the guest's xvdc"
[ -z "$("$XS" read "/local/domain/0/backend/vbd/$domid/51744/params")" ] || fail "params still names the medium"
ok "xl cd-eject: the guest sees the drive empty again"
wait_for 30 "the guest's end" said done

"$XL" destroy hp || fail "xl destroy"
ok "xl destroy"
