# tests/lab/lib.sh: what the lab scenarios share; `source "$REPO/tests/lab/lib.sh"`.

# start_xenstored: rxen's xenstored on a socket in $SCRATCH, with the domains'
# runtime and log directories there too (exported for xl and rxen-domain);
# its pid in $xsd. Fails if the socket does not appear within 10 s.
start_xenstored() {
    export XENSTORED_PATH=$SCRATCH/xenstored.sock
    export RXEN_RUN_DIR=$SCRATCH/run RXEN_LOG_DIR=$SCRATCH/log
    "$RXEN_BIN/xenstored" -N --no-persist 2>"$SCRATCH/xenstored.log" &
    xsd=$!
    for _ in $(seq 100); do [ -S "$XENSTORED_PATH" ] && return 0; sleep 0.1; done
    echo "FAILED: xenstored did not start: $(cat "$SCRATCH/xenstored.log")"
    return 1
}

# start_domain DOMID NAME INITRD CMDLINE: rxen-domain, run by hand as xl would
# run it, on a config.json like xl writes (PVH, 2 vCPUs, 256 MiB, the lab's
# guest kernel); its output in $SCRATCH/domain-DOMID.log, its pid in $pid.
start_domain() {
    local domid=$1 name=$2 initrd=$3 cmdline=$4
    mkdir -p "$RXEN_RUN_DIR/domain/$domid"
    cat >"$RXEN_RUN_DIR/domain/$domid/config.json" <<JSON
{
    "c_info": { "type": "pvh", "name": "$name" },
    "b_info": {
        "max_vcpus": 2,
        "avail_vcpus": [0, 1],
        "max_memkb": 262144,
        "target_memkb": 262144,
        "kernel": "$RXEN_GUEST_KERNEL",
        "ramdisk": "$initrd",
        "cmdline": "$cmdline",
        "type.pvh": {}
    }
}
JSON
    "${RXEN_DOMAIN_BIN:-$RXEN_BIN/rxen-domain}" --domid "$domid" --config "$RXEN_RUN_DIR/domain/$domid/config.json" \
        >"$SCRATCH/domain-$domid.log" 2>&1 &
    pid=$!
}

# destroy_domains: `xl destroy` of every domain still in $RXEN_RUN_DIR.
destroy_domains() {
    local d
    for d in "$RXEN_RUN_DIR"/domain/*; do
        [ -d "$d" ] && "$XL" destroy "$(basename "$d")" 2>/dev/null || true
    done
}

# show_logs: the last 40 lines of every log in $RXEN_LOG_DIR.
show_logs() {
    local f
    for f in "$RXEN_LOG_DIR"/*.log; do
        [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }
    done
    return 0
}

# end_xl_scenario: the EXIT trap of a scenario that runs guests through xl
# ($XL) on start_xenstored's daemon: destroys what is left, stops xenstored
# and, if the scenario failed, shows the logs. `trap end_xl_scenario EXIT`.
end_xl_scenario() {
    local status=$?
    destroy_domains
    kill "$xsd" 2>/dev/null || true
    [ "$status" -eq 0 ] || show_logs
}

ok() { echo "ok: $*"; }
# fail MESSAGE: the scenario's failed check (tests/lab/inside repeats the first
# FAILED line in its summary). A scenario may define its own after sourcing this.
fail() { echo "FAILED: $*"; exit 1; }

# What a guest killed by the lab's known QEMU TCG bug leaves in its logs
# (tests/lab/README.md): the interrupt entry's recursive faults on %gs:0x1fb80
# ("ENTRY_TRAMPOLINE stack guard page was hit", CR2 0x1fb80), or a triple fault.
lab_bug_signs=(-e "ENTRY_TRAMPOLINE stack guard page was hit" -e "CR2: 000000000001fb80"
    -e "WARN hypervisor::vcpus: triple fault")

# lab_bug DIR: prints the first line of a log under DIR (*.log), else of
# DIR.out, that shows a guest killed by that bug; status 1 if there is none.
lab_bug() {
    local line
    line=$({ grep -rhs --include='*.log' "${lab_bug_signs[@]}" "$1"; grep -hs "${lab_bug_signs[@]}" "$1.out"; } | head -n1)
    [ -n "$line" ] && echo "$line"
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND five times a second;
# `fail`s after SECONDS ("timed out"), or as soon as a guest of the scenario
# died of the lab's QEMU bug (its logs are checked every 5 s), rather than waiting on a
# guest that is gone.
wait_for() {
    local n=$1 what=$2 i bug
    shift 2
    for i in $(seq $((n * 5))); do
        "$@" && return 0
        if [ $((i % 25)) = 0 ] && bug=$(lab_bug "$SCRATCH"); then
            fail "a guest died of the lab's QEMU bug while waiting for $what: $bug"
        fi
        sleep 0.2
    done
    fail "timed out after ${n}s: $what"
}
