# xl lifecycle with real guests (issue 5, "Done when"): xl create of a PVH kernel +
# ramdisk config, xl list with its memory and vCPUs, xl console through a pty,
# pause/unpause, a guest reboot restarting it under a new id (on_reboot="restart"),
# xl shutdown -w, and a crashed guest kept in state c (on_crash="preserve") until
# xl destroy. Runs rxen's own xenstored, on a socket in $SCRATCH.

XL=$RXEN_BIN/xl
source "$REPO/tests/lab/lib.sh"
[ -x "$RXEN_BIN/rxen-domain" ] || { echo "FAILED: no $RXEN_BIN/rxen-domain"; exit 1; }

start_xenstored
trap end_xl_scenario EXIT

cat >"$SCRATCH/demo.cfg" <<CFG
name = "demo"
type = "pvh"
kernel = "$RXEN_GUEST_KERNEL"
ramdisk = "$RXEN_INITRD_XL_LIFECYCLE"
cmdline = "console=hvc0 panic=1 xen_legacy_crash"
memory = 256
vcpus = 2
on_reboot = "restart"
on_crash = "preserve"
CFG

fail() { echo "FAILED: $*"; "$XL" list || true; exit 1; }
# The columns of demo's `xl list` line: name id mem vcpus state time.
line() { "$XL" list | awk -v n="$1" '$1 == n'; }
field() { line "$1" | awk -v f="$2" '{print $f}'; }
# xl console through a pty: send each line, wait for the text expected after it,
# then Ctrl-] and check xl exits 0.
console() { # domain, then pairs: text-to-send text-to-expect
    python3 - "$XL" "$@" <<'PY'
import os, pty, select, sys, time
xl, dom, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(xl, [xl, "console", dom])
seen = b""
def expect(text, timeout=60):
    global seen
    end = time.time() + timeout
    while text.encode() not in seen:
        left = end - time.time()
        if left <= 0:
            sys.exit(f"console: no {text!r} in {seen[-2000:]!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                sys.exit(f"console: closed before {text!r}: {seen[-2000:]!r}")
time.sleep(1)
os.write(fd, b"\r")
for send, want in zip(steps[::2], steps[1::2]):
    os.write(fd, send.encode() + b"\r")
    expect(want)
os.write(fd, b"\x1d")
_, status = os.waitpid(pid, 0)
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(f"xl console exited {status}")
print(seen.decode(errors="replace")[-400:])
PY
}

# create, list. The VCPUs column counts the vCPUs the guest has brought
# online, as Xen's does: it reads 2 once the guest runs its init.
"$XL" create "$SCRATCH/demo.cfg"
id=$(field demo 2)
[ "$(field demo 3)" = 256 ] || fail "demo has $(field demo 3) MiB, not 256"
# up [N]: the guest's init has started N times (default 1) in demo's console
# log, which every boot of "demo" appends to.
up() {
    local n
    n=$(grep -cF "guest: up" "$RXEN_LOG_DIR/guest-demo.log" 2>/dev/null) || true
    [ "${n:-0}" -ge "${1:-1}" ]
}
wait_for 180 "demo's init" up
[ "$(field demo 4)" = 2 ] || fail "demo has $(field demo 4) vCPUs, not 2"
ok "xl list shows demo ($id) with 256 MiB and 2 vCPUs: $(line demo)"
running() { case "$(field demo 5)" in r-----|-b----) true ;; *) false ;; esac; }
wait_for 180 "demo running" running

# console
console demo 'echo xl-console-$((6*7))' xl-console-42 || fail "xl console"
ok "xl console reached the guest's shell, Ctrl-] detached"

# pause / unpause
"$XL" pause demo
[ "$(field demo 5)" = --p--- ] || fail "paused demo is $(field demo 5)"
"$XL" unpause demo
wait_for 180 "demo running after unpause" running
ok "pause/unpause: --p--- then $(field demo 5)"

# A guest reboot: a new domain id (on_reboot = "restart").
console demo reboot 'guest: rebooting' || true
new_id() { [ -n "$(field demo 2)" ] && [ "$(field demo 2)" != "$id" ] && running; }
wait_for 180 "demo back under a new id" new_id
ok "guest reboot: demo came back as $(field demo 2) (was $id)"
# Its init must run before a shutdown request can reach it (the kernel hands
# control/shutdown to init, whose trap powers off).
wait_for 180 "demo's init after the reboot" up 2
id=$(field demo 2)
"$XL" vcpu-list demo

# xl shutdown -w: returns once the guest has shut down; the domain then goes.
"$XL" shutdown -w demo
gone() { [ -z "$(line demo)" ]; }
wait_for 180 "demo gone" gone
[ ! -e "$RXEN_RUN_DIR/domain/$id" ] || fail "runtime dir of $id left behind"
ok "xl shutdown -w returned and demo is gone"

# A crash, preserved: state c until xl destroy.
"$XL" create "$SCRATCH/demo.cfg"
id=$(field demo 2)
wait_for 180 "demo running" running
wait_for 180 "demo's init in its third boot" up 3
console demo 'echo c > /proc/sysrq-trigger' 'sysrq' || true
crashed() { [ "$(field demo 5)" = ---sc- ]; }
wait_for 180 "demo crashed" crashed
sleep 2
crashed || fail "crashed demo did not stay"
ok "crashed guest stays listed: $(line demo)"
"$XL" destroy demo
gone || fail "demo still listed after destroy"
if "$RXEN_BIN/xenstore" exists "/local/domain/$id"; then fail "/local/domain/$id left behind"; fi
[ ! -e "$RXEN_RUN_DIR/domain/$id" ] || fail "runtime dir of $id left behind"
ok "xl destroy removed the crashed domain"
