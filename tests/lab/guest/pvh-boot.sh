#!/bin/sh
# modules:
# Guest side of the PVH boot scenarios: report what a Xen PVH guest sees,
# then wait for one command on the console (hvc0, the PV console) and end
# the way it says: poweroff, reboot or crash.
echo "guest: init started"
echo "guest: hypervisor=$(cat /sys/hypervisor/type 2>/dev/null || echo none)"
echo "guest: nproc=$(nproc)"
echo "guest: memtotal_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
echo "guest: cmdline=$(cat /proc/cmdline)"
echo "guest: waiting for a command"
while read -r cmd; do
    case "$cmd" in
    poweroff) echo "guest: powering off"; poweroff -f ;;
    reboot) echo "guest: rebooting"; reboot -f ;;
    crash) echo "guest: crashing"; echo c > /proc/sysrq-trigger ;;
    *) echo "guest: unknown command '$cmd'" ;;
    esac
done
echo "guest: console closed"
sleep 1000000
