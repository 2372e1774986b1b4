#!/usr/bin/env bash
# The toolstack's share of `xl create`: from the moment `xl create` is started to the
# moment the domain process is exec'd, with 1 and with 20 domains already running
# (each with its monitor), and the ratio of the two medians (goal: <= 1.2; Xen's own xl
# slows tenfold as domains accumulate).
#
# Runs on the host, no guest: the domain process is the toolstack's test stand-in
# (crates/toolstack/examples/fake-domain.rs), which logs CLOCK_MONOTONIC as its first
# act; xenstored is rxen's, on a socket of its own. The rest of `xl create` after the
# exec (waiting for the domain process to answer on its control socket, daemonising the
# monitor) is printed too, for information.
#
# Usage: tests/bench/xl-create.sh [runs-per-point]   (default 30)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
runs=${1:-30}

cargo build --quiet --release -p toolstack --bin xl --example fake-domain
cargo build --quiet --release -p xenstore --bin xenstored
bin=$(realpath "${CARGO_TARGET_DIR:-target}")/release

work=$(mktemp -d /tmp/xl-create-bench.XXXX)
export XENSTORED_PATH=$work/xenstored.sock
export RXEN_RUN_DIR=$work/run RXEN_LOG_DIR=$work/log RXEN_CONFIG_DIR=$work
export RXEN_DOMAIN_BIN=$bin/examples/fake-domain
export FAKE_DOMAIN_EXEC_LOG=$work/exec.log
"$bin/xenstored" -N --no-persist 2>"$work/xenstored.log" &
xsd=$!
cleanup() {
    for d in "$RXEN_RUN_DIR"/domain/*; do
        [ -d "$d" ] && "$bin/xl" destroy "$(basename "$d")" 2>/dev/null || true
    done
    kill "$xsd" 2>/dev/null || true
    wait "$xsd" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$XENSTORED_PATH" ] && break; sleep 0.05; done

cat >"$work/bench.cfg" <<'EOF'
name = "bench"
type = "pvh"
kernel = "/boot/vmlinuz"
memory = 128
vcpus = 2
vif = ['bridge=xenbr0']
EOF

XL=$bin/xl RUNS=$runs WORK=$work python3 - <<'EOF'
import os, statistics, subprocess, time

xl, runs, work = os.environ["XL"], int(os.environ["RUNS"]), os.environ["WORK"]
cfg = os.path.join(work, "bench.cfg")
log = os.environ["FAKE_DOMAIN_EXEC_LOG"]
running = []

def create(name):
    """Starts `xl create`; returns (exec delay, whole command) in ms."""
    before = os.path.getsize(log) if os.path.exists(log) else 0
    t0 = time.monotonic_ns()
    subprocess.run([xl, "create", "-q", cfg, f'name="{name}"'], check=True)
    t1 = time.monotonic_ns()
    with open(log) as f:
        f.seek(before)
        lines = f.read().split()
    exec_ns = int(lines[-1])
    return (exec_ns - t0) / 1e6, (t1 - t0) / 1e6

def domid(name):
    return subprocess.run([xl, "domid", name], check=True, capture_output=True, text=True).stdout.strip()

def point(n):
    while len(running) < n:
        name = f"idle{len(running)}"
        create(name)
        running.append(name)
    share, whole = [], []
    for i in range(runs):
        s, w = create("bench")
        share.append(s)
        whole.append(w)
        subprocess.run([xl, "destroy", "bench"], check=True)
    return statistics.median(share), statistics.median(whole)

create("warmup"); subprocess.run([xl, "destroy", "warmup"], check=True)
s1, w1 = point(1)
s20, w20 = point(20)
listed = subprocess.run([xl, "list"], check=True, capture_output=True, text=True).stdout
assert len(listed.splitlines()) == 22, listed
print(f"xl create, toolstack share (command start -> domain process exec), median of {runs}:")
print(f"  with  1 domain running:  {s1:7.2f} ms   (whole command {w1:7.2f} ms)")
print(f"  with 20 domains running: {s20:7.2f} ms   (whole command {w20:7.2f} ms)")
print(f"  ratio 20/1: {s20 / s1:.2f} (goal <= 1.2); whole command {w20 / w1:.2f}")
EOF
