#!/usr/bin/env bash
# Runs every benchmark against a release build and writes docs/benchmarks.md,
# docs/benchmarks-latency.csv and docs/benchmarks-latency.png: sb-bench's figures, and
# first the XMPP one-sender runs of tests/smartsupp_bench.rs when Prosody is installed.
# Usage: bash bench/run.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
# Two builds: together, the bench's test-kit feature of switchboard-core would be
# unified into the daemon's build and rebuild every connector.
cargo build --release --locked -p switchboard
cargo build --release --locked -p switchboard-bench
mkdir -p docs
xmpp=()
if command -v prosody >/dev/null; then
    log="$CARGO_TARGET_DIR/xmpp-bench.txt"
    runs=3
    if [ "${1:-}" = "--quick" ]; then runs=1; fi
    BENCH_RUNS=$runs cargo test --release --locked --test smartsupp_bench -- \
        --ignored --nocapture one_sender 2>"$log" || { tail -50 "$log" >&2; exit 1; }
    grep -E '^(round|one sender)' "$log" >&2
    xmpp=(--xmpp "$log")
else
    echo "prosody not found: skipping the XMPP rows" >&2
fi
"$CARGO_TARGET_DIR/release/sb-bench" all --out docs/benchmarks.md "${xmpp[@]}" "$@"
venv="$HOME/.cache/switchboard/bench-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet matplotlib
fi
"$venv/bin/python" bench/plot.py docs/benchmarks-latency.csv docs/benchmarks-latency.png
