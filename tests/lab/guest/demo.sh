#!/bin/sh
# modules:
# The demo guest (demo/run): say hello from inside a Xen PVH domain, then power off.
echo
echo "Hello from an rxen guest: $(uname -sr) on $(cat /sys/hypervisor/type 2>/dev/null)" \
     "$(cat /sys/hypervisor/version/major 2>/dev/null).$(cat /sys/hypervisor/version/minor 2>/dev/null)"
echo "vCPUs: $(nproc)   memory: $(sed -n 's/^MemTotal: *//p' /proc/meminfo)"
echo "uuid: $(cat /sys/hypervisor/uuid 2>/dev/null)"
echo "kernel command line: $(cat /proc/cmdline)"
echo "powering off in 2 seconds"
sleep 2
poweroff -f
