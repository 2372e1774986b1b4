# PVH boot (issue 3, "Done when"): rxen-domain, run by hand without xl, boots
# Debian 12's 6.1 bzImage as shipped with a busybox initramfs as a Xen PVH
# domain with 2 vCPUs and 256 MiB, against rxen's own xenstored.
#
# First boot: the console log (PV console ring + early console_io) shows the
# kernel's boot messages and the init script's output; the guest sees
# /sys/hypervisor/type = xen, nproc = 2 and MemTotal within the kernel's
# usual reservations of 256 MiB; the guest's XenStore traffic arrived (its
# control/feature-poweroff, read with rxen's xenstore client); the control
# channel reports it running; console input reaches the guest. Then the guest
# is told (through the console socket) to power off, reboot or crash, one boot
# each, and the domain process must exit 0 with that reason in `shutdown`.

source "$REPO/tests/lab/lib.sh"
XS=$RXEN_BIN/xenstore
[ -x "$RXEN_BIN/rxen-domain" ] || { echo "FAILED: no $RXEN_BIN/rxen-domain"; exit 1; }

start_xenstored
pids=()
finish() {
    status=$?
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    kill "$xsd" 2>/dev/null || true
    if [ $status -ne 0 ]; then
        for f in "$SCRATCH"/domain-*.log "$RXEN_LOG_DIR"/*.log; do
            [ -f "$f" ] && { echo "--- $f"; tail -n 60 "$f"; }
        done
    fi
}
trap finish EXIT

# boot DOMID NAME: start rxen-domain on a config.json like xl writes it.
boot() {
    start_domain "$1" "$2" "$RXEN_INITRD_PVH_BOOT" "console=hvc0 earlyprintk=xen"
    pids+=("$pid")
}
log() { echo "$RXEN_LOG_DIR/guest-$1.log"; }
# wait_log NAME TEXT PID: until the console log of NAME shows TEXT.
wait_log() {
    local end=$((SECONDS + 300))
    while [ $SECONDS -lt $end ]; do
        grep -qF -- "$2" "$(log "$1")" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || fail "rxen-domain exited before '$2' appeared"
        sleep 0.5
    done
    fail "no '$2' on $1's console after 300 s"
}
has() { grep -qF -- "$2" "$(log "$1")" || fail "$3 (no '$2' in $1's console log)"; }
# send DOMID TEXT: one line of input through the console socket.
send() {
    python3 - "$RXEN_RUN_DIR/domain/$1/console" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
s.close()
PY
}
# control DOMID JSON: one request on the control socket; prints the reply.
control() {
    python3 - "$RXEN_RUN_DIR/domain/$1/control" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
print(s.makefile().readline().strip())
PY
}
# ends DOMID PID REASON: the process exits 0 having written REASON.
ends() {
    local status=0
    for _ in $(seq 1200); do kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$2" 2>/dev/null && fail "domain $1 still running 120 s after being told to $3"
    wait "$2" || status=$?
    [ "$status" = 0 ] || fail "rxen-domain of domain $1 exited $status"
    local reason
    reason=$(cat "$RXEN_RUN_DIR/domain/$1/shutdown" 2>/dev/null || echo none)
    [ "$reason" = "$3" ] || fail "domain $1 shut down with reason '$reason', not '$3'"
    ok "domain $1 ended with reason $3, exit status 0"
}

# --- boot 1: what the guest sees, then poweroff --------------------------------
t0=$(date +%s)
boot 1 pvh1
p1=$pid
wait_log pvh1 "guest: waiting for a command" "$p1"
ok "booted to the init script in $(($(date +%s) - t0)) s"
has pvh1 "Linux version 6.1" "the early console (console_io) carries the kernel banner"
has pvh1 "kernel on Xen PVH" "the kernel booted as a Xen PVH guest"
has pvh1 "Xen HVM callback vector for event delivery is enabled" "event channels are delivered"
has pvh1 "printk: console [hvc0] enabled" "the PV console took over"
has pvh1 "smp: Brought up 1 node, 2 CPUs" "the second vCPU came up"
has pvh1 "Run /init as init process" "the initramfs ran"
ok "kernel boot messages on the console log"
has pvh1 "guest: init started" "the init script's output reaches the log"
has pvh1 "guest: hypervisor=xen" "/sys/hypervisor/type reads xen"
has pvh1 "guest: nproc=2" "nproc is 2"
mem=$(sed -n 's/^guest: memtotal_kb=\([0-9]*\).*/\1/p' "$(log pvh1)")
# The kernel keeps its image, page tables and early allocations out of
# MemTotal: a 256 MiB guest shows 190-256 MiB.
[ -n "$mem" ] && [ "$mem" -gt $((190 * 1024)) ] && [ "$mem" -le $((256 * 1024)) ] ||
    fail "MemTotal of ${mem:-?} kB is not 256 MiB less the usual reservations"
ok "guest: hypervisor=xen, nproc=2, MemTotal=$mem kB"

v=$("$XS" read /local/domain/1/control/feature-poweroff) || fail "xenstore read"
[ "$v" = 1 ] || fail "control/feature-poweroff is '$v'"
ok "the guest wrote control/feature-poweroff=1 in its XenStore home"

info=$(control 1 '{"op":"info"}')
python3 - "$info" <<'PY' || fail "control info: $info"
import json, sys
i = json.loads(sys.argv[1])
assert i["ok"] and i["state"] == "running" and i["reason"] is None, i
assert i["memory_kib"] == 262144, i
assert [v["id"] for v in i["vcpus"]] == [0, 1], i
assert all(v["online"] and v["cpu_time_ns"] > 0 for v in i["vcpus"]), i
PY
ok "control info: running, 256 MiB, vCPUs 0 and 1 online"

"$XS" watch -n 2 @releaseDomain >"$SCRATCH/release.log" 2>&1 &
watcher=$!
send 1 "hello"
wait_log pvh1 "guest: unknown command 'hello'" "$p1"
ok "console input reaches the guest"
send 1 poweroff
ends 1 "$p1" poweroff
has pvh1 "reboot: Power down" "the guest powered down"
for _ in $(seq 50); do kill -0 "$watcher" 2>/dev/null || break; sleep 0.1; done
[ "$(grep -c '@releaseDomain' "$SCRATCH/release.log")" = 2 ] ||
    fail "no @releaseDomain after the domain process ended: $(cat "$SCRATCH/release.log")"
ok "xenstored fired @releaseDomain when the domain process ended"

# --- boot 2: reboot; boot 3: crash --------------------------------------------
boot 2 pvh2
p2=$pid
wait_log pvh2 "guest: waiting for a command" "$p2"
send 2 reboot
ends 2 "$p2" reboot
has pvh2 "reboot: Restarting system" "the guest restarted"

boot 3 pvh3
p3=$pid
wait_log pvh3 "guest: waiting for a command" "$p3"
send 3 crash
ends 3 "$p3" crash
has pvh3 "Kernel panic - not syncing: sysrq triggered crash" "the guest panicked"
