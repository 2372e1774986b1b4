#!/bin/sh
# modules: xen-blkfront xen-netfront
# binaries: fio iperf3
# Guest side of the bench-io scenario, the same image under rxen and under
# QEMU's Xen emulation. The kernel command line says what to measure:
#   rxio.disk=/dev/xvda   fio on it: sequential read and write (1 MiB
#                         blocks, iodepth 4) and 4k random read (iodepth 16),
#                         libaio, O_DIRECT, each rxio.secs after 2 s ramp
#   rxio.addr=ADDR/LEN    eth0's address; rxio.server=ADDR: an iperf3 server
#                         there, TCP both ways for rxio.secs each
#   rxio.secs=N           seconds per measurement (default 10)
# Each result is one line "guest: bench METRIC VALUE UNIT" (or "guest: bench
# METRIC failed: ..."), then "guest: done" and poweroff.
echo "guest: init started"
disk= addr= server= secs=10
for w in $(cat /proc/cmdline); do
    case $w in
    rxio.disk=*) disk=${w#*=} ;;
    rxio.addr=*) addr=${w#*=} ;;
    rxio.server=*) server=${w#*=} ;;
    rxio.secs=*) secs=${w#*=} ;;
    esac
done
for _ in $(seq 100); do
    { [ -z "$disk" ] || [ -b "$disk" ]; } && { [ -z "$addr" ] || [ -e /sys/class/net/eth0 ]; } && break
    sleep 0.1
done

# fio NAME FIELD ARGS...: one job on $disk; FIELD is the terse (v3) field of
# the result: 7/8 read KiB/s / IOPS, 48/49 write KiB/s / IOPS.
fio_job() {
    name=$1 field=$2 unit=$3
    shift 3
    if fio --name="$name" --filename="$disk" --ioengine=libaio --direct=1 --time_based \
        --ramp_time=2 --runtime="$secs" --output-format=terse "$@" >/tmp/fio.out 2>/tmp/fio.err; then
        v=$(awk -F';' -v f="$field" '/^3;/ {print $f; exit}' /tmp/fio.out)
        echo "guest: bench $name $v $unit"
    else
        echo "guest: bench $name failed: $(tail -n 2 /tmp/fio.err | tr '\n' ' ')"
    fi
}
if [ -n "$disk" ]; then
    if [ -b "$disk" ]; then
        echo "guest: $disk sectors=$(cat /sys/block/${disk#/dev/}/size)"
        fio_job seqread 7 KiB/s --rw=read --bs=1M --iodepth=4
        fio_job seqwrite 48 KiB/s --rw=write --bs=1M --iodepth=4
        fio_job randread 8 IOPS --rw=randread --bs=4k --iodepth=16
    else
        echo "guest: bench block failed: no $disk"
    fi
fi

# iperf NAME ARGS...: a TCP run to the server; the receiver's bit rate.
iperf() {
    name=$1
    shift
    if iperf3 -c "$server" -t "$secs" -O 1 -f m "$@" >/tmp/iperf.out 2>&1; then
        v=$(awk '/receiver/ {for (i = 2; i <= NF; i++) if ($i == "Mbits/sec") print $(i - 1)}' /tmp/iperf.out)
        echo "guest: bench $name ${v:-?} Mbit/s"
    else
        echo "guest: bench $name failed: $(tail -n 2 /tmp/iperf.out | tr '\n' ' ')"
    fi
}
if [ -n "$addr" ]; then
    if [ -e /sys/class/net/eth0 ]; then
        ip link set lo up
        ip link set eth0 up
        ip addr add "$addr" dev eth0
        for _ in $(seq 60); do ping -c 1 -W 1 "$server" >/dev/null 2>&1 && break; done
        iperf tcp-tx
        iperf tcp-rx -R
    else
        echo "guest: bench network failed: no eth0"
    fi
fi
echo "guest: done"
poweroff -f
