#!/bin/sh
# modules: xen-blkfront crc32c_generic ext4
# binaries: mkfs.ext4
# Guest side of the disks scenario, a user's disks through xl: xvda (raw
# file), xvdb (qcow2 over a backing file), xvdc (raw, access=ro), xvdd (an
# LVM volume, `phy:`). The kernel command line picks the step:
#   rxdisk=make   ext4 (32 MiB) on xvda and xvdb, a file written on each;
#                 1 MiB written at 2 MiB of xvdd; sync, poweroff
#   rxdisk=check  both mounted again, the files' checksums; xvdd's MiB; poweroff
#   rxdisk=kill   4 MiB written at 40 MiB of xvda and xvdb (direct I/O) and
#                 flushed; "guest: flushed" tells the host to SIGKILL the
#                 domain process at once
# Every result is a "guest: ..." line the host reads from the console log.
echo "guest: init started"
step=
for w in $(cat /proc/cmdline); do
    case $w in rxdisk=*) step=${w#*=} ;; esac
done
for _ in $(seq 100); do
    [ -b /dev/xvda ] && [ -b /dev/xvdb ] && [ -b /dev/xvdc ] && [ -b /dev/xvdd ] && break
    sleep 0.1
done
for d in xvda xvdb xvdc xvdd; do
    [ -b /dev/$d ] || { echo "guest: no /dev/$d"; ls /sys/block; poweroff -f; }
    echo "guest: $d sectors=$(cat /sys/block/$d/size) ro=$(cat /sys/block/$d/ro)"
done
sum() { md5sum "$1" | cut -d' ' -f1; }
# lvmib: the md5 of xvdd's MiB at 2 MiB, read around the guest's page cache.
lvmib() { dd if=/dev/xvdd bs=1M skip=2 count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1; }
case $step in
make)
    dd if=/dev/urandom of=/tmp/file bs=64k count=16 2>/dev/null
    for d in xvda xvdb; do
        mkdir -p /mnt/$d
        # A 32 MiB filesystem (discarded first, as mkfs does): the disks'
        # upper half keeps what the host put there.
        if /usr/sbin/mkfs.ext4 -q -F /dev/$d 32M >/tmp/err 2>&1 && mount -t ext4 /dev/$d /mnt/$d 2>>/tmp/err; then
            cp /tmp/file /mnt/$d/file
            echo "guest: $d ext4 file md5=$(sum /mnt/$d/file)"
        else
            echo "guest: $d ext4 failed: $(tr '\n' ' ' </tmp/err)"
        fi
    done
    if dd if=/dev/zero of=/dev/xvdc bs=4k count=1 oflag=direct 2>/tmp/err; then
        echo "guest: xvdc accepted a write"
    else
        echo "guest: xvdc refused a write: $(head -n 1 /tmp/err)"
    fi
    dd if=/dev/urandom of=/tmp/mib bs=1M count=1 2>/dev/null
    if dd if=/tmp/mib of=/dev/xvdd bs=1M seek=2 oflag=direct conv=fsync 2>/tmp/err; then
        echo "guest: xvdd wrote md5=$(sum /tmp/mib) read md5=$(lvmib)"
    else
        echo "guest: xvdd write failed: $(tail -n 1 /tmp/err)"
    fi
    sync
    ;;
check)
    for d in xvda xvdb; do
        mkdir -p /mnt/$d
        if mount -t ext4 /dev/$d /mnt/$d 2>/tmp/err; then
            echo "guest: $d ext4 file md5=$(sum /mnt/$d/file)"
            umount /mnt/$d
        else
            echo "guest: $d mount failed: $(tr '\n' ' ' </tmp/err)"
        fi
    done
    echo "guest: xvdd data md5=$(lvmib)"
    ;;
kill)
    dd if=/dev/urandom of=/tmp/data bs=1M count=4 2>/dev/null
    echo "guest: data md5=$(sum /tmp/data)"
    ok=1
    for d in xvda xvdb; do
        dd if=/tmp/data of=/dev/$d bs=1M seek=40 oflag=direct conv=fsync 2>/tmp/err || {
            ok=
            echo "guest: writing $d failed: $(tail -n 1 /tmp/err)"
        }
    done
    [ -n "$ok" ] && echo "guest: flushed"
    while :; do sleep 1; done
    ;;
*)
    echo "guest: no rxdisk= step on the command line"
    ;;
esac
echo "guest: done"
poweroff -f
