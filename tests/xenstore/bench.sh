#!/usr/bin/env bash
# XenStore READ/WRITE ops/s and p50/p99 latency with 1 and 32 clients, next
# to a unix-socket echo server measured in the same run; prints the ratio
# (goal: >= 0.8x echo) as the median of several rounds, with its spread, and
# each server thread's CPU time per operation.
# Usage: tests/xenstore/bench.sh [ops-per-client] [rounds]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
cargo run --quiet --release -p xenstore --example bench -- "${1:-4000}" "${2:-21}"
