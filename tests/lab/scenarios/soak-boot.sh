# Boot soak (issue 3): RXEN_SOAK_RUNS (default 6) back-to-back boots of the
# PVH boot guest (Debian 12's 6.1 bzImage, 2 vCPUs, 256 MiB), each told to
# power off at its prompt. Every boot must reach the prompt and end with
# reason poweroff; a boot that crashes or hangs (180 s) is reported with the
# tails of its logs. Bounded: at most RXEN_SOAK_RUNS boots. Not in the
# default list; run it with `tests/lab/run soak-boot`.
#
# RXEN_SOAK_PEER=1 soaks QEMU 10's Xen emulation (lab/qemu-xen-peer's
# command line) with the same guest as a PVH ELF instead: the measure of how
# often the lab's nested KVM fails a guest that is not rxen's.

if [ "${RXEN_SOAK_PEER:-0}" = 1 ]; then
    exec python3 - "$REPO/lab/qemu-xen-peer" "$RXEN_GUEST_VMLINUX" "$RXEN_INITRD_PVH_BOOT" \
        "${RXEN_SOAK_RUNS:-6}" <<'PY'
import importlib.machinery, importlib.util, os, select, signal, subprocess, sys, time
peer, vmlinux, initrd, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
loader = importlib.machinery.SourceFileLoader("peer", peer)
mod = importlib.util.module_from_spec(importlib.util.spec_from_loader("peer", loader))
loader.exec_module(mod)
args = type("A", (), dict(xen_version="0x4000a", memory=256, cpus=2, kernel=vmlinux,
                          initrd=initrd, append="", disk=[], net=False, trace=[]))
bad = 0
for i in range(1, runs + 1):
    t0 = time.monotonic()
    p = subprocess.Popen(mod.qemu_command(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    seen, outcome = b"", "hang"
    while time.monotonic() - t0 < 180:
        r, _, _ = select.select([p.stdout], [], [], 1)
        if r:
            b = os.read(p.stdout.fileno(), 65536)
            if not b:
                outcome = "ended"
                break
            seen += b
            if b"guest: waiting for a command" in seen:
                outcome = "prompt"
                p.stdin.write(b"poweroff\n"); p.stdin.flush()
                break
    try:
        rc = p.wait(timeout=60 if outcome == "prompt" else 0.1)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL); rc = p.wait()
    while True:
        b = os.read(p.stdout.fileno(), 65536)
        if not b:
            break
        seen += b
    ok = outcome == "prompt" and b"reboot: Power down" in seen
    print(f"peer boot {i}: {outcome}, QEMU status {rc}, {time.monotonic() - t0:.0f} s", flush=True)
    if not ok:
        bad += 1
        print("--- console tail"); print(seen.decode(errors="replace")[-3000:], flush=True)
print(f"soak: {runs - bad} of {runs} QEMU peer boots reached the prompt and powered off")
sys.exit(1 if bad else 0)
PY
fi

source "$REPO/tests/lab/lib.sh"
start_xenstored
trap 'kill $xsd 2>/dev/null || true' EXIT

runs=${RXEN_SOAK_RUNS:-6}
bad=0
for i in $(seq "$runs"); do
    domid=$i name=soak$i
    t0=$(date +%s)
    start_domain "$domid" "$name" "$RXEN_INITRD_PVH_BOOT" "console=hvc0 earlyprintk=xen"
    log=$RXEN_LOG_DIR/guest-$name.log
    outcome=hang
    for _ in $(seq 1800); do
        if grep -qF "guest: waiting for a command" "$log" 2>/dev/null; then outcome=prompt; break; fi
        kill -0 "$pid" 2>/dev/null || { outcome=ended; break; }
        sleep 0.1
    done
    if [ $outcome = prompt ]; then
        printf 'poweroff\n' | python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())' \
            "$RXEN_RUN_DIR/domain/$domid/console"
        for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    reason=$(cat "$RXEN_RUN_DIR/domain/$domid/shutdown" 2>/dev/null || echo none)
    echo "boot $i: $outcome, reason $reason, $(($(date +%s) - t0)) s"
    if [ $outcome != prompt ] || [ "$reason" != poweroff ]; then
        bad=$((bad + 1))
        echo "--- domain log"; tail -n 20 "$SCRATCH/domain-$domid.log"
        echo "--- guest console"; tail -n 60 "$log" 2>/dev/null || true
    fi
done
echo "soak: $((runs - bad)) of $runs boots reached the prompt and powered off"
[ $bad = 0 ]
