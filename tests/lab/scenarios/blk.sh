# Block devices (issue 6): rxen-domain, run by hand, serves three disks to a
# Debian 12 PVH guest through blkback: a raw image (xvda), a qcow2 overlay
# made by qemu-img over a raw base (xvdb), and a read-only raw image (xvdc,
# access=r). The guest (xen-blkfront) must see their sizes and contents,
# write 4 MiB with O_DIRECT and fsync to xvda and xvdb and read them back,
# and be refused writes to xvdc. After the guest powers off, the host checks
# the bytes: in the raw image, and in the qcow2 image through qemu-img check
# and convert, with the base and the read-only image untouched.
#
# Its disk I/O made the lab's guest crash (tests/lab/README.md) frequent:
# about two runs in five crashed before the lab pinned each guest's process
# to one lab CPU; none of eleven crashed since.

source "$REPO/tests/lab/lib.sh"
[ -x "$RXEN_BIN/rxen-domain" ] || { echo "FAILED: no $RXEN_BIN/rxen-domain"; exit 1; }
command -v qemu-img >/dev/null || { echo "FAILED: no qemu-img (qemu-utils)"; exit 1; }

start_xenstored
pid=
finish() {
    status=$?
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    kill "$xsd" 2>/dev/null || true
    if [ $status -ne 0 ]; then
        for f in "$SCRATCH"/domain-*.log; do
            [ -f "$f" ] && { echo "--- $f"; grep -v TRACE "$f" | tail -n 60; }
        done
        for f in "$RXEN_LOG_DIR"/*.log; do
            [ -f "$f" ] || continue
            echo "--- $f (the guest's messages, then its first oops)"
            grep "guest:\|blkfront\|xvd" "$f" | head -n 40
            grep -n -m1 -A70 "BUG\|Oops\|general protection\|unable to handle" "$f" || tail -n 40 "$f"
        done
    fi
}
trap finish EXIT

md5() { md5sum | cut -d' ' -f1; }

img=$SCRATCH/img
mkdir -p "$img"
head -c $((32 << 20)) /dev/urandom >"$img/a.raw"
head -c $((32 << 20)) /dev/urandom >"$img/base.raw"
head -c $((8 << 20)) /dev/urandom >"$img/ro.raw"
qemu-img create -q -f qcow2 -b "$img/base.raw" -F raw "$img/b.qcow2" || fail "qemu-img create"
a_head=$(head -c $((1 << 20)) "$img/a.raw" | md5)
base_head=$(head -c $((1 << 20)) "$img/base.raw" | md5)
base_all=$(md5 <"$img/base.raw")
ro_all=$(md5 <"$img/ro.raw")

mkdir -p "$RXEN_RUN_DIR/domain/1"
cat >"$RXEN_RUN_DIR/domain/1/config.json" <<JSON
{
    "c_info": { "type": "pvh", "name": "blk" },
    "b_info": {
        "max_vcpus": 2,
        "avail_vcpus": [0, 1],
        "max_memkb": 262144,
        "target_memkb": 262144,
        "kernel": "$RXEN_GUEST_KERNEL",
        "ramdisk": "$RXEN_INITRD_BLK",
        "cmdline": "console=hvc0",
        "type.pvh": {}
    },
    "disks": [
        { "pdev_path": "$img/a.raw", "vdev": "xvda", "format": "raw", "readwrite": 1 },
        { "pdev_path": "$img/b.qcow2", "vdev": "xvdb", "format": "qcow2", "readwrite": 1 },
        { "pdev_path": "$img/ro.raw", "vdev": "xvdc", "format": "raw" }
    ]
}
JSON
t0=$(date +%s)
RXEN_LOG=${RXEN_LOG:-info,backends=debug} "${RXEN_DOMAIN_BIN:-$RXEN_BIN/rxen-domain}" --domid 1 --config "$RXEN_RUN_DIR/domain/1/config.json" \
    >"$SCRATCH/domain-1.log" 2>&1 &
pid=$!
log=$RXEN_LOG_DIR/guest-blk.log
finished() { grep -q "guest: done\|guest: no /dev" "$log" 2>/dev/null || ! kill -0 "$pid" 2>/dev/null; }
wait_for 300 "the guest's checks" finished
for _ in $(seq 900); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
    for d in 51712 51728 51744; do
        echo "vbd $d: backend state $("$RXEN_BIN/xenstore" read /local/domain/0/backend/vbd/1/$d/state 2>&1)," \
            "frontend state $("$RXEN_BIN/xenstore" read /local/domain/1/device/vbd/$d/state 2>&1)"
    done
    fail "the guest did not power off"
fi
wait "$pid" || fail "rxen-domain exited $?"
pid=
ok "guest ran and powered off in $(($(date +%s) - t0)) s"
grep "^guest:" "$log" | sed 's/^/  /'
has() { grep -qF -- "$1" "$log" || fail "$2 (no '$1' in the console log)"; }

has "guest: xvda sectors=65536 ro=0" "xvda: 32 MiB, writable"
has "guest: xvdb sectors=65536 ro=0" "xvdb: 32 MiB (the qcow2's virtual size), writable"
has "guest: xvdc sectors=16384 ro=1" "xvdc: 8 MiB, read-only"
ok "the guest sees three disks of the right sizes, xvdc read-only"
for bs in 512 4096 65536; do
    has "guest: xvda $bs bytes md5=$(head -c $bs "$img/a.raw" | md5)" "xvda's first $bs bytes as on the host"
done
has "guest: xvda head md5=$a_head" "xvda's data as on the host"
has "guest: xvdb head md5=$base_head" "xvdb reads through to its base"
has "guest: xvdc head md5=$(head -c $((1 << 20)) "$img/ro.raw" | md5)" "xvdc's data as on the host"
ok "the guest reads what the host wrote (raw, qcow2 backing file, read-only)"

data=$(sed -n 's/^guest: data md5=\([0-9a-f]*\).*/\1/p' "$log")
[ -n "$data" ] || fail "no data checksum from the guest"
has "guest: wrote xvda" "the write to xvda"
has "guest: wrote xvdb" "the write to xvdb"
has "guest: xvda readback md5=$data" "xvda reads back what was written"
has "guest: xvdb readback md5=$data" "xvdb reads back what was written"
has "guest: xvdc refused a write" "the read-only disk refuses writes"
ok "writes land and read back; the read-only disk refuses them"

[ "$(tail -c +$(((1 << 20) + 1)) "$img/a.raw" | head -c $((4 << 20)) | md5)" = "$data" ] ||
    fail "the raw image does not hold the guest's data"
ok "the raw image holds the guest's 4 MiB at 1 MiB"
qemu-img check -q "$img/b.qcow2" || fail "qemu-img check of the qcow2 overlay"
qemu-img convert -f qcow2 -O raw "$img/b.qcow2" "$img/b.raw" || fail "qemu-img convert"
[ "$(tail -c +$(((1 << 20) + 1)) "$img/b.raw" | head -c $((4 << 20)) | md5)" = "$data" ] ||
    fail "the qcow2 image does not hold the guest's data"
[ "$(head -c $((1 << 20)) "$img/b.raw" | md5)" = "$base_head" ] ||
    fail "the qcow2 image lost its base's data"
[ "$(md5 <"$img/base.raw")" = "$base_all" ] || fail "the base image changed"
[ "$(md5 <"$img/ro.raw")" = "$ro_all" ] || fail "the read-only image changed"
ok "qcow2 consistent (qemu-img check) with the guest's data over its base; base and read-only image untouched"
