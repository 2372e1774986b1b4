# A user's disks through xl (issue 6, "Done when"): a raw file (xvda), a
# qcow2 image over a backing file made by qemu-img (xvdb), a read-only raw
# file (xvdc) and an LVM logical volume given the old way,
# 'phy:/dev/rxenlab/guest,xvdd,w' (LVM on a loop device the scenario makes,
# without udev). Three creates of one config:
#   1. the guest makes ext4 on xvda and xvdb, writes a file on each, syncs and
#      powers off; xvdc refuses its write; 1 MiB written to xvdd is on the
#      volume (read by the host);
#   2. after `xl create` again, the files read back with the same checksums,
#      and xvdd's MiB;
#   3. data safety: the guest writes 4 MiB to both disks with direct I/O and
#      flushes; the host SIGKILLs the domain process as soon as the guest says
#      the flush completed, then finds the data in the raw file and, through
#      qemu-img, in the qcow2 image (which `qemu-img check` finds consistent).
# The backing file and the read-only image are unchanged at the end, and the
# backing file's data still shows through where the guest did not write.

XL=$RXEN_BIN/xl
source "$REPO/tests/lab/lib.sh"
command -v qemu-img >/dev/null || { echo "FAILED: no qemu-img (qemu-utils)"; exit 1; }

start_xenstored
loopdev=
# The EXIT trap: end_xl_scenario (domains, xenstored, logs on failure), then
# the volume group and loop device go (errors there must not hide the rest).
finish() {
    end_xl_scenario
    if [ -n "$loopdev" ]; then
        lvm vgremove -q -y -ff "${lvmcfg[@]}" rxenlab >/dev/null 2>&1 || true
        losetup -d "$loopdev" || true
    fi
}
trap finish EXIT

img=$SCRATCH/img
mkdir -p "$img"
truncate -s 64M "$img/a.raw"
truncate -s 64M "$img/base.raw"
# The backing file holds a pattern the overlay must keep showing where the
# guest did not write (checked at the end through qemu-img).
dd if=/dev/urandom of="$img/base.raw" bs=1M seek=60 count=2 conv=notrunc 2>/dev/null
qemu-img create -q -f qcow2 -b "$img/base.raw" -F raw "$img/b.qcow2"
dd if=/dev/urandom of="$img/c.raw" bs=1M count=8 2>/dev/null
# The volume group: one 64 MiB loop device; the volume 16 MiB. The lab has no
# udev, so LVM and device-mapper make the device nodes themselves.
command -v lvm >/dev/null || fail "no lvm (the host's Debian package lvm2)"
modprobe loop 2>/dev/null || true
modprobe dm-mod 2>/dev/null || true
export DM_DISABLE_UDEV=1 LVM_SUPPRESS_FD_WARNINGS=1
lvmcfg=(--config 'activation { udev_sync = 0 udev_rules = 0 } devices { obtain_device_list_from_udev = 0 }')
truncate -s 64M "$img/pv.img"
loopdev=$(losetup -f --show "$img/pv.img") || fail "losetup"
lvm pvcreate -q "${lvmcfg[@]}" "$loopdev" >/dev/null || fail "pvcreate $loopdev"
lvm vgcreate -q "${lvmcfg[@]}" rxenlab "$loopdev" >/dev/null || fail "vgcreate rxenlab"
lvm lvcreate -q "${lvmcfg[@]}" -Zn -Wn -L 16M -n guest rxenlab >/dev/null || fail "lvcreate rxenlab/guest"
lv=/dev/rxenlab/guest
[ -b "$lv" ] || fail "no $lv after lvcreate"
dd if=/dev/zero of="$lv" bs=1M count=16 oflag=direct 2>/dev/null
lvmib() { dd if="$lv" bs=1M skip=2 count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1; }
ok "LVM volume $lv (16 MiB) on $loopdev"
base_md5=$(md5sum <"$img/base.raw")
c_md5=$(md5sum <"$img/c.raw")

cat >"$SCRATCH/disks.cfg" <<CFG
name = "disks"
type = "pvh"
kernel = "$RXEN_GUEST_KERNEL"
ramdisk = "$RXEN_INITRD_DISKS"
memory = 256
vcpus = 2
disk = [ 'format=raw, vdev=xvda, access=rw, target=$img/a.raw',
         'format=qcow2, vdev=xvdb, access=rw, target=$img/b.qcow2',
         'format=raw, vdev=xvdc, access=ro, target=$img/c.raw',
         'phy:$lv,xvdd,w' ]
CFG

log=$RXEN_LOG_DIR/guest-disks.log
# run STEP: xl create with rxdisk=STEP; the guest's lines of this boot go to
# $SCRATCH/STEP.out. Returns once the guest printed "guest: done" (or, for
# the kill step, "guest: flushed").
run() {
    local step=$1 until=$2 from=0 t0=$SECONDS
    [ -f "$log" ] && from=$(stat -c %s "$log")
    "$XL" create "$SCRATCH/disks.cfg" "cmdline=\"console=hvc0 rxdisk=$step\"" >/dev/null || fail "xl create ($step)"
    said() {
        tail -c +$((from + 1)) "$log" 2>/dev/null | tr -d '\r' >"$SCRATCH/$step.out"
        grep -q "^guest: \($until\|no \)" "$SCRATCH/$step.out"
    }
    wait_for 240 "'guest: $until' ($step)" said
    grep -q "^guest: $until" "$SCRATCH/$step.out" || { cat "$SCRATCH/$step.out"; fail "$step: the guest gave up"; }
    echo "step $step: 'guest: $until' after $((SECONDS - t0)) s"
}
gone() { ! "$XL" domid disks >/dev/null 2>&1; }
wait_gone() { wait_for 60 "disks to go after its $1" gone; }
line() { sed -n "s/^guest: $1 //p" "$SCRATCH/$2.out" | head -n1; }

run make done
grep "^guest: " "$SCRATCH/make.out"
wait_gone poweroff
for d in xvda xvdb; do
    [ -n "$(line "$d ext4 file" make)" ] || fail "$d: no ext4 file written"
done
grep -q "^guest: xvda sectors=131072 ro=0" "$SCRATCH/make.out" || fail "xvda: not 64 MiB writable"
grep -q "^guest: xvdb sectors=131072 ro=0" "$SCRATCH/make.out" || fail "xvdb: not 64 MiB writable"
grep -q "^guest: xvdc sectors=16384 ro=1" "$SCRATCH/make.out" || fail "xvdc: not 8 MiB read-only"
grep -q "^guest: xvdc refused a write" "$SCRATCH/make.out" || fail "xvdc: the read-only disk took a write"
grep -q "^guest: xvdd sectors=32768 ro=0" "$SCRATCH/make.out" || fail "xvdd: not the 16 MiB writable volume"
lv_md5=$(lvmib)
[ "$(line "xvdd wrote" make)" = "md5=$lv_md5 read md5=$lv_md5" ] || fail "xvdd: the volume holds $lv_md5, the guest said '$(line "xvdd wrote" make)'"
ok "the guest made ext4 on xvda (raw) and xvdb (qcow2), wrote a file on each and powered off; xvdc refused a write; its MiB on xvdd is on the LVM volume"

run check done
grep "^guest: " "$SCRATCH/check.out"
wait_gone poweroff
for d in xvda xvdb; do
    a=$(line "$d ext4 file" make) b=$(line "$d ext4 file" check)
    [ "$a" = "$b" ] || fail "$d: the file read back as '$b', was written as '$a'"
done
[ "$(line "xvdd data" check)" = "md5=$lv_md5" ] || fail "xvdd: read back as '$(line "xvdd data" check)', the volume holds $lv_md5"
ok "after xl create again both files read back with their checksums, and xvdd's MiB"

run kill flushed
pid=$(cat "$RXEN_RUN_DIR/domain/$("$XL" domid disks)/pid")
kill -9 "$pid"
data=$(line "data" kill)
grep "^guest: " "$SCRATCH/kill.out"
sleep 1
gone || "$XL" destroy disks 2>/dev/null || true
wait_gone SIGKILL
got_a=$(dd if="$img/a.raw" bs=1M skip=40 count=4 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$got_a" = "${data#md5=}" ] || fail "raw: the flushed data is not in the file after SIGKILL ($got_a, wrote ${data#md5=})"
qemu-img check -q "$img/b.qcow2" || fail "qcow2: qemu-img check after SIGKILL"
qemu-img convert -O raw "$img/b.qcow2" "$SCRATCH/b.raw"
got_b=$(dd if="$SCRATCH/b.raw" bs=1M skip=40 count=4 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$got_b" = "${data#md5=}" ] || fail "qcow2: the flushed data is not in the image after SIGKILL ($got_b)"
[ "$(dd if="$SCRATCH/b.raw" bs=1M skip=60 count=2 2>/dev/null | md5sum)" = \
  "$(dd if="$img/base.raw" bs=1M skip=60 count=2 2>/dev/null | md5sum)" ] || fail "qcow2: the backing file's data does not show through"
ok "data flushed by the guest survived SIGKILL of its domain process (raw, and qcow2 consistent)"

[ "$(md5sum <"$img/base.raw")" = "$base_md5" ] || fail "the backing file changed"
[ "$(md5sum <"$img/c.raw")" = "$c_md5" ] || fail "the read-only image changed"
ok "the backing file and the read-only image are unchanged"
