#!/bin/sh
# modules: xen-blkfront
# Guest side of the lab self-test: report what a Xen guest sees, then power off.
echo "guest: hypervisor=$(cat /sys/hypervisor/type 2>/dev/null || echo none)"
i=0
while [ ! -b /dev/xvda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ -b /dev/xvda ]; then
    echo "guest: xvda sectors=$(cat /sys/block/xvda/size)"
    echo "guest: xvda md5=$(dd if=/dev/xvda bs=1M count=16 2>/dev/null | md5sum | cut -d' ' -f1)"
else
    echo "guest: no /dev/xvda"
fi
echo "guest: done"
poweroff -f
