#!/bin/sh
# modules: xen-blkfront
# Guest side of the blk scenario: xen-blkfront's disks as blkback serves them.
# xvda (raw, rw), xvdb (qcow2 over a raw base, rw), xvdc (raw, access=r).
# Reports sizes and checksums, writes known data, checks the read-only disk
# refuses writes, syncs and powers off.
echo "guest: init started"
for _ in $(seq 100); do
    [ -b /dev/xvda ] && [ -b /dev/xvdb ] && [ -b /dev/xvdc ] && break
    sleep 0.1
done
for d in xvda xvdb xvdc; do
    [ -b /dev/$d ] || { echo "guest: no /dev/$d"; ls /sys/block; poweroff -f; }
    echo "guest: $d sectors=$(cat /sys/block/$d/size) ro=$(cat /sys/block/$d/ro)"
done
# What the host put there: one sector, one page, then 1 MiB (indirect
# requests) of each.
for bs in 512 4096 65536; do
    echo "guest: xvda $bs bytes md5=$(dd if=/dev/xvda bs=$bs count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
done
echo "guest: xvda head md5=$(dd if=/dev/xvda bs=1M count=1 2>/dev/null | md5sum | cut -d' ' -f1)"
echo "guest: xvdb head md5=$(dd if=/dev/xvdb bs=1M count=1 2>/dev/null | md5sum | cut -d' ' -f1)"
echo "guest: xvdc head md5=$(dd if=/dev/xvdc bs=1M count=1 2>/dev/null | md5sum | cut -d' ' -f1)"
# 4 MiB of new data at 1 MiB on both writable disks (direct I/O: it goes
# through blkback, not just the guest's page cache), then a flush.
dd if=/dev/urandom of=/tmp/data bs=1M count=4 2>/dev/null
echo "guest: data md5=$(md5sum </tmp/data | cut -d' ' -f1)"
for d in xvda xvdb; do
    if dd if=/tmp/data of=/dev/$d bs=1M seek=1 oflag=direct conv=fsync 2>/tmp/err; then
        echo "guest: wrote $d"
    else
        echo "guest: writing $d failed: $(cat /tmp/err)"
    fi
    echo 3 >/proc/sys/vm/drop_caches
    echo "guest: $d readback md5=$(dd if=/dev/$d bs=1M skip=1 count=4 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
done
if dd if=/tmp/data of=/dev/xvdc bs=4k count=1 oflag=direct conv=fsync 2>/dev/null; then
    echo "guest: xvdc accepted a write"
else
    echo "guest: xvdc refused a write"
fi
sync
echo "guest: done"
# Heartbeats while powering off (xen-blkfront's devices close first).
while :; do
    sleep 2
    echo "guest: heartbeat $(cut -d' ' -f1 /proc/uptime) states" $(cat /sys/bus/xen/devices/vbd-*/state 2>/dev/null)
done &
poweroff -f
