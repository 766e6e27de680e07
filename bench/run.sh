#!/usr/bin/env bash
# Runs every benchmark against a release build and writes docs/benchmarks.md,
# docs/benchmarks-latency.csv and docs/benchmarks-latency.png.
# Usage: bash bench/run.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
cargo build --release --locked -p switchboard -p switchboard-bench
mkdir -p docs
"$CARGO_TARGET_DIR/release/sb-bench" all --out docs/benchmarks.md "$@"
venv="$HOME/.cache/switchboard/bench-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet matplotlib
fi
"$venv/bin/python" bench/plot.py docs/benchmarks-latency.csv docs/benchmarks-latency.png
