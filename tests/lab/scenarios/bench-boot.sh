# Boot benchmark (issue 3): rxen-domain next to QEMU 10's Xen emulation
# (lab/qemu-xen-peer), both booting the same ELF vmlinux (Debian 12's 6.1,
# out of its bzImage) and the same busybox initramfs as a PVH guest with 2
# vCPUs and 256 MiB, in the same lab run. Printed for each, median of
# RXEN_BENCH_RUNS runs (default 3, alternating):
#   - process start -> first console byte, -> first kernel message, -> the
#     init script's first line ("guest: init started");
#   - resident memory once the guest waits at its prompt, and what of it is
#     beyond guest RAM. rxen's guest RAM is a memfd (RssShmem), so its own
#     memory is RssAnon + RssFile. QEMU's guest RAM is anonymous memory; its
#     share beyond guest RAM is estimated as its VmRSS less the guest RAM
#     rxen's identical guest touched (rxen's RssShmem).
# and the ratios QEMU / rxen. Both programs are started once (`--version`,
# `--help`) first, so neither pays for a cold page cache of its binary and
# libraries inside a measurement. rxen's console is the PV console (hvc0) and
# QEMU's the serial port (the peer offers no PVH console): each guest's
# first console byte is the replay of its kernel log when its console
# registers, the same point of the boot. One more rxen run boots the bzImage
# as shipped (its xz payload decompressed by rxen-domain), for information.
#
# Slow (each boot takes tens of seconds in the lab): not in the default
# scenario list; run it with `tests/lab/run bench-boot`.

source "$REPO/tests/lab/lib.sh"
start_xenstored
trap 'kill $xsd 2>/dev/null || true' EXIT

python3 - "$RXEN_BIN" "$REPO/lab/qemu-xen-peer" "$RXEN_GUEST_VMLINUX" "$RXEN_GUEST_KERNEL" \
    "$RXEN_INITRD_PVH_BOOT" "${RXEN_BENCH_RUNS:-3}" <<'PY'
import json, os, re, select, signal, socket, statistics, subprocess, sys, time

rxen_bin, peer, vmlinux, bzimage, initrd, runs = sys.argv[1:7]
runs = int(runs)
run_dir, log_dir = os.environ["RXEN_RUN_DIR"], os.environ["RXEN_LOG_DIR"]
INIT = b"guest: init started"
PROMPT = b"guest: waiting for a command"
KMSG = re.compile(rb"(^|\n)\[ *\d+\.\d+\] ")
TIMEOUT = 300


class Hung(Exception):
    """A boot that did not reach the prompt (the lab's nested KVM on TCG
    occasionally hangs a guest, QEMU's as well as rxen's)."""


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(v.split()[0])
    return out


def watch(read, t0, pid_of):
    """Poll console bytes from read(); return the milestones and RSS."""
    seen, first, kmsg, init = b"", None, None, None
    while True:
        now = time.monotonic()
        if now - t0 > TIMEOUT:
            raise Hung(f"no prompt after {TIMEOUT} s: {seen[-300:]!r}")
        chunk = read()
        if chunk is None:
            raise Hung(f"the guest's output ended: {seen[-300:]!r}")
        if chunk:
            seen += chunk
            if first is None:
                first = now - t0
            if kmsg is None and KMSG.search(seen):
                kmsg = now - t0
            if init is None and INIT in seen:
                init = now - t0
            if PROMPT in seen:
                return {"first": first, "kmsg": kmsg, "init": init, "rss": status(pid_of())}
        else:
            time.sleep(0.002)


def rxen(domid, kernel):
    name = f"bench{domid}"
    d = f"{run_dir}/domain/{domid}"
    os.makedirs(d, exist_ok=True)
    cfg = {"c_info": {"type": "pvh", "name": name},
           "b_info": {"max_vcpus": 2, "avail_vcpus": [0, 1], "max_memkb": 262144,
                      "target_memkb": 262144, "kernel": kernel, "ramdisk": initrd,
                      "cmdline": "console=hvc0", "type.pvh": {}}}
    with open(f"{d}/config.json", "w") as f:
        json.dump(cfg, f)
    log = f"{log_dir}/guest-{name}.log"
    t0 = time.monotonic()
    p = subprocess.Popen([os.environ.get("RXEN_DOMAIN_BIN", f"{rxen_bin}/rxen-domain"), "--domid", str(domid), "--config",
                          f"{d}/config.json"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=open(f"{d}.stderr", "w"))
    pos = [0]

    def read():
        if p.poll() is not None:
            return None
        try:
            with open(log, "rb") as f:
                f.seek(pos[0])
                b = f.read()
        except FileNotFoundError:
            return b""
        pos[0] += len(b)
        return b

    try:
        r = watch(read, t0, lambda: p.pid)
    except Hung as e:
        print(f"bench: rxen boot failed: {e}", flush=True)
        p.kill()
        p.wait()
        return None
    s = socket.socket(socket.AF_UNIX)
    s.connect(f"{d}/control")
    s.sendall(b'{"op":"destroy"}\n')
    s.makefile().readline()
    p.wait(timeout=60)
    return r


def qemu():
    t0 = time.monotonic()
    p = subprocess.Popen([peer, "--kernel", vmlinux, "--initrd", initrd, "--memory", "256",
                          "--cpus", "2", "--timeout", str(TIMEOUT)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    fd = p.stdout.fileno()

    def read():
        r, _, _ = select.select([fd], [], [], 0.002)
        if not r:
            return b""
        b = os.read(fd, 65536)
        return b if b else None

    def qemu_pid():
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().split(b"\0")
                except OSError:
                    continue
                if cmd and cmd[0].endswith(b"qemu-system-x86_64") and vmlinux.encode() in cmd:
                    return int(pid)
        raise SystemExit("bench: QEMU's process not found")

    try:
        r = watch(read, t0, qemu_pid)
    except Hung as e:
        print(f"bench: QEMU boot failed: {e}", flush=True)
        r = None
    try:
        os.kill(qemu_pid(), signal.SIGTERM)
    except SystemExit:
        pass
    p.wait(timeout=60)
    return r


def med(rs, key):
    return statistics.median(r[key] for r in rs)


def medrss(rs, key):
    return statistics.median(r["rss"].get(key, 0) for r in rs)


subprocess.run(["qemu-system-x86_64", "--version"], stdout=subprocess.DEVNULL, check=True)
subprocess.run([f"{rxen_bin}/rxen-domain", "--help"], stdout=subprocess.DEVNULL, check=True)
rx, qe = [], []
domid = 1
for i in range(runs):
    r = rxen(domid, vmlinux)
    domid += 1
    print(f"bench: rxen run {i + 1}: {r}", flush=True)
    rx += [r] if r else []
    r = qemu()
    print(f"bench: qemu run {i + 1}: {r}", flush=True)
    qe += [r] if r else []
bz = rxen(domid, bzimage)
print(f"bench: rxen bzImage run: {bz}", flush=True)
if not rx or not qe:
    raise SystemExit("bench: no successful boot of one of the two")

print(f"\nboot of Debian 12 6.1 + busybox initramfs, PVH, 2 vCPUs, 256 MiB; median of the "
      f"boots that reached the prompt: rxen {len(rx)}/{runs}, QEMU {len(qe)}/{runs} "
      "(lab: nested KVM on TCG, times are the lab's, ratios are what counts)")
print(f"{'':36} {'rxen':>10} {'QEMU 10':>10} {'QEMU/rxen':>10}")
for key, what in (("first", "start -> first console byte (s)"),
                  ("kmsg", "start -> first kernel message (s)"),
                  ("init", "start -> init's first line (s)")):
    a, b = med(rx, key), med(qe, key)
    print(f"{what:36} {a:10.2f} {b:10.2f} {b / a:10.2f}")
rx_own = med([{"v": r["rss"]["RssAnon"] + r["rss"]["RssFile"]} for r in rx], "v")
rx_total = medrss(rx, "VmRSS")
guest = medrss(rx, "RssShmem")
qe_total = medrss(qe, "VmRSS")
qe_own = max(qe_total - guest, 0)
print(f"{'resident memory, total (MiB)':36} {rx_total / 1024:10.1f} {qe_total / 1024:10.1f} "
      f"{qe_total / rx_total:10.2f}")
print(f"{'resident beyond guest RAM (MiB)':36} {rx_own / 1024:10.1f} {qe_own / 1024:10.1f} "
      f"{qe_own / rx_own:10.2f}")
print(f"(guest RAM touched: {guest / 1024:.1f} MiB; rxen's own = RssAnon + RssFile, goal <= 5 MiB; "
      "QEMU's own = VmRSS - that guest RAM)")
if bz:
    print(f"rxen, bzImage as shipped (xz payload decoded in-process): first byte "
          f"{bz['first']:.2f} s, init {bz['init']:.2f} s")
PY
