#!/usr/bin/env bash
# Runs Debian's xenstore-utils (Xen's C clients over libxenstore) and rxen's
# own `xenstore` multi-call tool against rxen's xenstored on a private socket
# and compares what both print (stdout and exit status) for the same
# operations on the same tree. Exits non-zero on any mismatch.
#
# Usage: tests/xenstore/compat.sh [path/to/target/dir]   (default: build --release)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v xenstore-read >/dev/null 2>&1 || ! command -v xenstore-ls >/dev/null 2>&1; then
    echo "compat: installing Debian's xenstore-utils"
    apt-get install -y xenstore-utils >/dev/null
fi

if [ $# -ge 1 ]; then
    bindir=$(cd "$1" && pwd)  # absolute: the tools are reached through symlinks
else
    (cd "$repo" && cargo build --release -p xenstore --bins >&2)
    bindir=${CARGO_TARGET_DIR:-$repo/target}/release
fi

work=$(mktemp -d)
daemon_pid=
cleanup() {
    local rc=$?
    # xenstored dies of the SIGTERM (status 143); that is not the test's result.
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT

export XENSTORED_PATH=$work/socket
"$bindir/xenstored" -N --state-dir "$work/state" 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$XENSTORED_PATH" ] && break; sleep 0.05; done
[ -S "$XENSTORED_PATH" ] || { echo "compat: xenstored did not start"; cat "$work/daemon.log"; exit 1; }

# Our tools under Xen's names, for the argv[0] dispatch.
mkdir -p "$work/bin"
for m in read write ls list rm exists chmod watch; do
    ln -s "$bindir/xenstore" "$work/bin/xenstore-$m"
done

# Debian's clients must really talk to this daemon through XENSTORED_PATH.
xenstore-write /compat/probe debian
[ "$(xenstore-read /compat/probe)" = debian ] || { echo "compat: Debian client cannot reach the socket"; exit 1; }
grep -q . "$work/daemon.log" || true

fails=0
checks=0
# run NAME CMD...: runs `xenstore-CMD ...` from Debian and from rxen
# (alternating as xenstore-CMD and `xenstore CMD`) after resetting the tree
# with the same setup; compares stdout and exit code.
setup() {
    xenstore-rm /t >/dev/null 2>&1 || true
    xenstore-write /t/a 1 /t/b/c "hello world" /t/b/d "tab	nl
x" /t/e "" /t/long "$(printf 'v%.0s' $(seq 120))" >/dev/null
    xenstore-chmod /t/b/c b0 r3 >/dev/null
}
compare() {
    local name=$1; shift
    local tool=$1; shift
    checks=$((checks + 1))
    setup
    local d_out d_rc r_out r_rc m_out m_rc d_tree r_tree
    d_out=$("xenstore-$tool" "$@" 2>/dev/null) && d_rc=0 || d_rc=$?
    d_tree=$(xenstore-ls -f -p /t 2>&1 || true)
    setup
    r_out=$("$work/bin/xenstore-$tool" "$@" 2>/dev/null) && r_rc=0 || r_rc=$?
    r_tree=$(xenstore-ls -f -p /t 2>&1 || true)
    setup
    m_out=$("$bindir/xenstore" "$tool" "$@" 2>/dev/null) && m_rc=0 || m_rc=$?
    if [ "$d_out" != "$r_out" ] || [ "$d_rc" != "$r_rc" ] || [ "$d_out" != "$m_out" ] || [ "$d_rc" != "$m_rc" ] || [ "$d_tree" != "$r_tree" ]; then
        fails=$((fails + 1))
        echo "MISMATCH $name: xenstore-$tool $*"
        echo "--- debian (rc $d_rc)"; printf '%s\n' "$d_out"
        echo "--- rxen xenstore-$tool (rc $r_rc)"; printf '%s\n' "$r_out"
        echo "--- rxen xenstore $tool (rc $m_rc)"; printf '%s\n' "$m_out"
        if [ "$d_tree" != "$r_tree" ]; then
            echo "--- tree after debian"; printf '%s\n' "$d_tree"
            echo "--- tree after rxen"; printf '%s\n' "$r_tree"
        fi
    else
        echo "ok $name"
    fi
}

compare read-one read /t/a
compare read-many read /t/a /t/b/c
compare read-prefix read -p /t/a /t/b/c
compare read-escapes read /t/b/d
compare read-raw read -R /t/b/d
compare read-missing read /t/nope
compare read-partly-missing read /t/a /t/nope /t/b/c
compare read-dir read /t/b
compare read-bad-path read /t//a
compare write-one write /t/new v
compare write-many write /t/n1 v1 /t/n2/deep v2
compare write-escapes write /t/esc 'a\tb\x41\101\\z\q'
compare write-raw write -R /t/raw 'a\tb'
compare write-odd write /t/x
compare ls-root ls
compare ls-sub ls /t
compare ls-flat ls -f /t
compare ls-perms ls -p /t
compare ls-flat-perms ls -f -p /t
compare ls-missing ls /t/nope
compare list list /t
compare list-prefix list -p /t /t/b
compare list-missing list /t/nope
compare rm-leaf rm /t/a
compare rm-tree rm /t/b
compare rm-missing rm /t/nope
compare rm-missing-parent rm /t/nope/deeper
compare rm-tidy rm -t /t/b/c
compare exists-yes exists /t/b
compare exists-no exists /t/nope
compare chmod chmod /t/b/c n0 r5 w6 b7
compare chmod-recurse chmod -r /t/b n0 r1
compare chmod-upto chmod -u /t/b/c b0 r2
compare chmod-bad chmod /t/a x1
compare usage-read read

# watch: both clients see the initial event and the changes, in order.
watch_run() {
    local out=$1; shift
    timeout 5 "$@" -n 4 /t/w >"$out" &
    local pid=$!
    sleep 0.3
    xenstore-write /t/w/x 1
    xenstore-write /t/w/y 2
    xenstore-rm /t/w
    wait "$pid" || true
}
checks=$((checks + 1))
setup
xenstore-write /t/w "" >/dev/null
watch_run "$work/watch.debian" xenstore-watch
xenstore-write /t/w "" >/dev/null
watch_run "$work/watch.rxen" "$work/bin/xenstore-watch"
if diff -u "$work/watch.debian" "$work/watch.rxen" && [ "$(wc -l <"$work/watch.rxen")" = 4 ]; then
    echo "ok watch"
else
    fails=$((fails + 1))
    echo "MISMATCH watch"
fi

# Round trip across clients: what one writes the other reads.
checks=$((checks + 1))
xenstore-write /x/from-debian "$(printf 'a\tb')"
"$work/bin/xenstore-write" /x/from-rxen 'c\nd'
if [ "$("$work/bin/xenstore-read" /x/from-debian)" = 'a\tb' ] && [ "$(xenstore-read /x/from-rxen)" = 'c\nd' ]; then
    echo "ok cross-client"
else
    fails=$((fails + 1))
    echo "MISMATCH cross-client"
fi

echo "$((checks - fails)) passed, $fails failed"
[ "$fails" = 0 ]
