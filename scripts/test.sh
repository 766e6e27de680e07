#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests need
# (idempotent), then runs the gates and every test. README.md and .ci/run call this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Builds go outside the clone so reruns on the same machine reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages the tests use: real servers and checkers, never mocks of our own code.
apt_packages=()
command -v prosody >/dev/null 2>&1 || apt_packages+=(prosody)
# The smartsupp TLS test makes its CA and server certificate with the openssl CLI.
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
command -v promtool >/dev/null 2>&1 || apt_packages+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || apt_packages+=(systemd)
if [ ${#apt_packages[@]} -gt 0 ]; then
    echo "==> installing ${apt_packages[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
# A package's own daemon is not ours to run: the tests start their own instances.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prosody 2>/dev/null; then
    as_root systemctl stop prosody || true
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "==> cargo test"
cargo test --locked --workspace
echo "==> all tests passed"
