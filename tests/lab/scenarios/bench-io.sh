# I/O benchmark (issue 6): block and network throughput of one guest through
# rxen's backends (blkback, netback), next to the same guest under QEMU 10's
# Xen emulation (lab/qemu-xen-peer: xen-disk, xen-net-device) and the lab
# host doing the same I/O itself. Both guests boot the same ELF vmlinux
# (Debian 12's 6.1, PVH, 2 vCPUs, 512 MiB: the initramfs carries fio and
# iperf3 with their libraries) and the same initramfs (guest/bench-io.sh),
# which reads its work from the kernel command line and prints results.
#   - block: one 256 MiB raw image in $SCRATCH, xvda of both guests; fio
#     (libaio, O_DIRECT) sequential read and write, 1 MiB blocks, iodepth 4,
#     MB/s; 4k random read, iodepth 16, IOPS; each RXEN_BENCH_SECS (default
#     10) after 2 s ramp. "direct": the lab host runs the same jobs on the
#     image file, pinned to one lab CPU as each guest's process is (O_DIRECT
#     if the filesystem takes it; the output says which).
#   - network: a bridge made here (no uplink) with 169.254.1.1/16 for the lab
#     host, where an iperf3 server runs; rxen's vif and QEMU's TAP are on it.
#     TCP for RXEN_BENCH_SECS each way: guest -> host (tcp-tx), host -> guest
#     (tcp-rx, iperf3 -R).
# RXEN_BENCH_RUNS rounds (default 1: each round boots two guests), median
# when more. Prints a table with the ratios and the goals (block >= 0.8x
# direct and >= 1x QEMU, network >= 1x QEMU) as PASS/MISS: it reports, and
# fails only when a measurement could not be made.
#
# Slow: not in the default scenario list; `tests/lab/run bench-io`.

XL=$RXEN_BIN/xl
source "$REPO/tests/lab/lib.sh"
runs=${RXEN_BENCH_RUNS:-1}
secs=${RXEN_BENCH_SECS:-10}
BR=benchbr0 TAP=benchtap0 HOST=169.254.1.1
for t in fio iperf3; do
    command -v $t >/dev/null || fail "no $t on the lab host (the host's Debian package $t)"
done
[ -n "${RXEN_INITRD_BENCH_IO:-}" ] || fail "no RXEN_INITRD_BENCH_IO (guest/bench-io.sh's initramfs)"

start_xenstored
iperf_pid= qemu_pid=
finish() {
    status=$?
    "$XL" destroy bench-io 2>/dev/null || true
    [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
    [ -z "$iperf_pid" ] || kill "$iperf_pid" 2>/dev/null || true
    kill "$xsd" 2>/dev/null || true
    ip link del "$TAP" 2>/dev/null || true
    ip link del "$BR" 2>/dev/null || true
    if [ $status -ne 0 ]; then
        for f in "$SCRATCH"/*.console; do
            [ -f "$f" ] || continue
            echo "--- $f (its lines from the guest and the program, then the last 40)"
            tr -d '\r' <"$f" | grep -v '^ *\[ *[0-9]' | head -n 30
            tail -n 40 "$f"
        done
    fi
}
trap finish EXIT

# The network: a bridge with no uplink, link-local addresses only.
[ -e /dev/net/tun ] || modprobe tun || true
ip link add "$BR" type bridge
ip addr add $HOST/16 dev "$BR"
ip link set "$BR" up
ip tuntap add dev "$TAP" mode tap
ip link set "$TAP" master "$BR" up
iperf3 -s -B $HOST >"$SCRATCH/iperf3-server.log" 2>&1 &
iperf_pid=$!

# The image, allocated (zeros written, not a sparse file) so that every read
# finds data where the filesystem keeps it.
img=$SCRATCH/bench.raw
dd if=/dev/zero of="$img" bs=1M count=256 conv=fsync 2>/dev/null
fs=$(findmnt -n -o FSTYPE,SOURCE -T "$img" | head -n1)
direct=1
if ! dd if="$img" of=/dev/null bs=1M count=1 iflag=direct 2>/dev/null; then
    direct=0
fi
echo "image: 256 MiB raw file on $fs; O_DIRECT on it: $([ $direct = 1 ] && echo yes || echo "refused (direct runs buffered, caches dropped first)")"

res=$SCRATCH/results
: >"$res"
pin=
[ "${RXEN_LAB_PIN:-0}" = 1 ] && pin="taskset -c 0"

# The lab host's own fio on the image: the same jobs the guest runs.
host_fio() { # run, name, read|write, bw|iops, fio args...
    local run=$1 name=$2 dir=$3 what=$4 v
    shift 4
    sync
    echo 3 >/proc/sys/vm/drop_caches
    $pin fio --name="$name" --filename="$img" --ioengine=libaio --direct=$direct --time_based \
        --ramp_time=2 --runtime="$secs" --output-format=json "$@" >"$SCRATCH/fio-$name.json" 2>"$SCRATCH/fio.err" ||
        fail "fio $name on the lab host: $(tail -n 3 "$SCRATCH/fio.err")"
    v=$(python3 -c 'import json, sys; j = json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]
print(j[sys.argv[3]], j["io_bytes"])' "$SCRATCH/fio-$name.json" "$dir" "$what") ||
        fail "fio $name on the lab host: no result in its output"
    echo "$run direct $name ${v% *}" >>"$res"
    echo "direct run $run: $name $v ($what, bytes)"
}

# Collect a guest's "guest: bench" lines from its console into $res; the
# names of the measurements it did not make in $missing.
collect() { # run, side, console file
    local name v
    tr -d '\r' <"$3" | grep "^guest: " | sed "s/^/$2 run $1: /"
    while read -r _ _ name v _; do
        case $v in failed:) continue ;; esac
        echo "$1 $2 $name $v" >>"$res"
    done < <(tr -d '\r' <"$3" | grep "^guest: bench ")
    missing=
    for name in seqread seqwrite randread tcp-tx tcp-rx; do
        grep -q "^$1 $2 $name " "$res" || missing+=" $name"
    done
    [ -z "$missing" ] || echo "$2 run $1: not measured:$missing"
}
# What the guest is told to do: everything, or what a crashed boot left.
guest_args() { # ADDR: the guest's address
    local a="rxio.server=$HOST rxio.secs=$secs"
    case "${missing:- seqread tcp-tx}" in *read* | *write*) a+=" rxio.disk=/dev/xvda" ;; esac
    case "${missing:- seqread tcp-tx}" in *tcp*) a+=" rxio.addr=$1" ;; esac
    echo "$a"
}

# wait_done FILE SECONDS ALIVE...: until FILE shows "guest: done" (0), or
# the command ALIVE fails (the guest is gone) or time runs out (1).
done_in() { tr -d '\r' <"$1" 2>/dev/null | grep -q "^guest: done"; }
wait_done() {
    local f=$1 n=$2
    shift 2
    for _ in $(seq $((n * 5))); do
        done_in "$f" && return 0
        "$@" || { sleep 1; done_in "$f"; return; }
        sleep 0.2
    done
    return 1
}
limit=$((300 + 8 * secs))

rxen_run() { # run, boot
    local run=$1 boot=$2 log=$RXEN_LOG_DIR/guest-bench-io.log con=$SCRATCH/rxen-$1-$2.console t0
    cat >"$SCRATCH/bench-io.cfg" <<CFG
name = "bench-io"
type = "pvh"
kernel = "$RXEN_GUEST_VMLINUX"
ramdisk = "$RXEN_INITRD_BENCH_IO"
cmdline = "console=hvc0 $(guest_args 169.254.10.2/16)"
memory = 512
vcpus = 2
disk = [ 'format=raw, vdev=xvda, access=rw, target=$img' ]
vif = [ 'bridge=$BR' ]
CFG
    rm -f "$log"
    sync
    echo 3 >/proc/sys/vm/drop_caches
    t0=$(date +%s)
    "$XL" create "$SCRATCH/bench-io.cfg" >/dev/null || fail "xl create"
    wait_done "$log" $limit "$XL" domid bench-io >/dev/null ||
        echo "rxen run $run: the guest did not finish (gone, or not within ${limit}s)"
    cp "$log" "$con" 2>/dev/null || : >"$con"
    for _ in $(seq 300); do "$XL" domid bench-io >/dev/null 2>&1 || break; sleep 0.2; done
    "$XL" destroy bench-io 2>/dev/null || true
    echo "rxen run $run, boot $boot: $(($(date +%s) - t0)) s"
    collect "$run" rxen "$con"
}

qemu_run() { # run, boot
    local run=$1 boot=$2 con=$SCRATCH/qemu-$1-$2.console t0
    sync
    echo 3 >/proc/sys/vm/drop_caches
    t0=$(date +%s)
    "$REPO/lab/qemu-xen-peer" --kernel "$RXEN_GUEST_VMLINUX" --initrd "$RXEN_INITRD_BENCH_IO" \
        --memory 512 --cpus 2 --append "$(guest_args 169.254.10.3/16)" \
        --disk "$img,vdev=xvda" --tap "$TAP" --timeout $limit >"$con" 2>&1 &
    qemu_pid=$!
    wait_done "$con" $limit kill -0 $qemu_pid 2>/dev/null ||
        echo "QEMU run $run: the guest did not finish: $(grep -a "qemu-xen-peer:" "$con" | tail -n 1)"
    for _ in $(seq 300); do kill -0 $qemu_pid 2>/dev/null || break; sleep 0.2; done
    kill $qemu_pid 2>/dev/null || true
    wait $qemu_pid 2>/dev/null || true
    qemu_pid=
    echo "QEMU run $run, boot $boot: $(($(date +%s) - t0)) s"
    collect "$run" qemu "$con"
}

# A guest that dies or hangs (the lab's nested KVM on TCG does that now and
# then, to QEMU's guests too) gets one more boot for what it left.
for run in $(seq "$runs"); do
    host_fio "$run" seqread read bw --rw=read --bs=1M --iodepth=4
    host_fio "$run" seqwrite write bw --rw=write --bs=1M --iodepth=4
    host_fio "$run" randread read iops --rw=randread --bs=4k --iodepth=16
    for side in rxen qemu; do
        missing=
        ${side}_run "$run" 1
        [ -z "$missing" ] || ${side}_run "$run" 2
    done
done

python3 - "$res" "$runs" "$secs" "$fs" "$direct" <<'PY'
import statistics, sys

path, runs, secs, fs, direct = sys.argv[1:6]
vals = {}
for line in open(path):
    _, side, name, v = line.split()
    vals.setdefault((side, name), []).append(float(v))


def med(side, name):
    v = vals.get((side, name))
    return statistics.median(v) if v else None


rows = [("seqread", "seq read 1M qd4 (MB/s)", 1024 / 1e6, True),
        ("seqwrite", "seq write 1M qd4 (MB/s)", 1024 / 1e6, True),
        ("randread", "4k rand read qd16 (IOPS)", 1, True),
        ("tcp-tx", "TCP guest->host (Mbit/s)", 1, False),
        ("tcp-rx", "TCP host->guest (Mbit/s)", 1, False)]
print(f"\nI/O of one guest (Debian 12 6.1, PVH, 2 vCPUs, 512 MiB), median of {runs} run(s), "
      f"{secs} s per measurement; image on {fs}, direct runs with O_DIRECT={'on' if direct == '1' else 'off'}")
print("(lab: nested KVM on TCG, each guest's process and the direct fio on one lab CPU; "
      "figures are the lab's, ratios are what counts)")
fmt = "{:28} {:>9} {:>9} {:>9} {:>11} {:>10}  {}"
print(fmt.format("metric", "rxen", "QEMU", "direct", "rxen/direct", "rxen/QEMU", "goal"))
missing = []


def show(x):
    return "-" if x is None else f"{x:.1f}" if x < 100 else f"{x:.0f}"


for key, what, scale, block in rows:
    r, q, d = (med(s, key) for s in ("rxen", "qemu", "direct"))
    r, q, d = (None if x is None else x * scale for x in (r, q, d))
    for side, x in (("rxen", r), ("QEMU", q)) + ((("direct", d),) if block else ()):
        if x is None:
            missing.append(f"{side} {key}")
    rd = r / d if r is not None and d else None
    rq = r / q if r is not None and q else None
    if block:
        goal = "n/a" if rd is None or rq is None else \
            ("PASS" if rd >= 0.8 and rq >= 1 else "MISS") + " (>= 0.8x direct, >= 1x QEMU)"
    else:
        goal = "n/a" if rq is None else ("PASS" if rq >= 1 else "MISS") + " (>= 1x QEMU)"
    print(fmt.format(what, show(r), show(q), show(d) if block else "-",
                     "-" if rd is None else f"{rd:.2f}", "-" if rq is None else f"{rq:.2f}", goal))
if missing:
    print("FAILED: not measured: " + ", ".join(missing))
    sys.exit(1)
PY
