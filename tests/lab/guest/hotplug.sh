#!/bin/sh
# modules: xen-blkfront xen-netfront
# Guest side of the hotplug scenario: the guest boots with no disk and no
# network interface; the host hot-plugs a disk (xvdb) and a vif (eth0), then
# removes both; then attaches an empty cdrom drive (xvdc), inserts a medium
# and ejects it. Reports each change as it sees it: the disk's size and the
# first bytes the host put there, eth0's MAC, each device going away, the
# cdrom's size and first bytes after each media change.
echo "guest: init started"
wait_until() { # seconds, command...
    n=$1
    shift
    for _ in $(seq $((n * 10))); do "$@" && return 0; sleep 0.1; done
    return 1
}
gone() { ! [ -e "$1" ]; }
echo "guest: ready, disks: $(ls /sys/block | tr '\n' ' ')"
if wait_until 300 test -b /dev/xvdb; then
    echo "guest: xvdb sectors=$(cat /sys/block/xvdb/size) head=$(dd if=/dev/xvdb bs=512 count=1 2>/dev/null | head -c 20)"
else
    echo "guest: no xvdb"
fi
if wait_until 300 test -e /sys/class/net/eth0; then
    echo "guest: eth0 mac=$(cat /sys/class/net/eth0/address)"
else
    echo "guest: no eth0"
fi
if wait_until 300 gone /sys/block/xvdb; then
    echo "guest: xvdb gone"
else
    echo "guest: xvdb still there"
fi
if wait_until 300 gone /sys/class/net/eth0; then
    echo "guest: eth0 gone"
else
    echo "guest: eth0 still there"
fi
echo "guest: detached"
# A cdrom drive attached empty (0 sectors), a medium inserted, then ejected:
# blkfront sees each change as a new capacity.
size() { cat /sys/block/xvdc/size 2>/dev/null; }
sized() { [ "$(size)" "$1" 0 ]; }
if wait_until 300 test -b /dev/xvdc; then
    echo "guest: xvdc sectors=$(size) removable=$(cat /sys/block/xvdc/removable) ro=$(cat /sys/block/xvdc/ro)"
else
    echo "guest: no xvdc"
fi
if wait_until 300 sized -ne; then
    echo "guest: xvdc inserted sectors=$(size) head=$(dd if=/dev/xvdc bs=512 count=1 2>/dev/null | head -c 18)"
else
    echo "guest: xvdc no medium"
fi
if wait_until 300 sized -eq; then
    echo "guest: xvdc ejected sectors=$(size)"
else
    echo "guest: xvdc not ejected"
fi
echo "guest: done"
while :; do sleep 1; done
