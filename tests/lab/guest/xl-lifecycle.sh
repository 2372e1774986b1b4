#!/bin/sh
# modules:
# Guest side of the xl lifecycle scenario: a shell on the Xen console (hvc0), and
# init's answers to the kernel's poweroff and reboot requests (the kernel acts on
# Xen's control/shutdown by running /sbin/poweroff or /sbin/reboot, which busybox
# turns into SIGUSR2 or SIGTERM to init, this script).
trap 'echo "guest: powering off"; poweroff -f' USR2
trap 'echo "guest: rebooting"; reboot -f' TERM
echo "guest: up, hypervisor=$(cat /sys/hypervisor/type 2>/dev/null || echo none)"
while :; do setsid sh -c 'exec sh -i </dev/hvc0 >/dev/hvc0 2>&1'; sleep 1; done &
while :; do sleep 1; done
