#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests need
# (idempotent), then runs the gates, the supply-chain audit, every test, the systemd
# unit checks and the Debian package build. README.md and .ci/run call this.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

# Builds go outside the clone so reruns on the same machine reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
step() { printf '\n==> %s\n' "$*"; }

# Debian packages the tests use: real servers and checkers, never mocks of our code.
#   prosody          the XMPP server the smartsupp tests run against
#   prometheus       promtool, which checks a live /metrics scrape
#   systemd          systemd-analyze verify / security for the unit
#   openssl          test certificates and keys (XMPP TLS, GBM service account)
#   chromium         the headless browser that drives the /status page (tests/operator.rs)
#   curl             the schemathesis run's seeding and readiness checks
#   postgresql       the server the PostgreSQL storage tests start their own cluster of
#                    (initdb + pg_ctl on a loopback port; the package's own cluster is
#                    not used)
apt_packages=()
command -v prosody >/dev/null 2>&1 || apt_packages+=(prosody)
command -v promtool >/dev/null 2>&1 || apt_packages+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || apt_packages+=(systemd)
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
command -v curl >/dev/null 2>&1 || apt_packages+=(curl)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || apt_packages+=(postgresql)
if [ ${#apt_packages[@]} -gt 0 ]; then
    step "installing ${apt_packages[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
# The packages' own daemons are not ours to run: the tests start their own instances.
for unit in prosody prometheus postgresql; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
        as_root systemctl stop "$unit" || true
    fi
done

# schemathesis (PyPI), pinned, in its own venv outside the clone.
schemathesis_version=4.32.5
schemathesis_venv="$HOME/.cache/switchboard/schemathesis-$schemathesis_version"
if [ ! -x "$schemathesis_venv/bin/schemathesis" ]; then
    step "installing schemathesis $schemathesis_version"
    python3 -m venv "$schemathesis_venv" 2>/dev/null || {
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        python3 -m venv "$schemathesis_venv"
    }
    "$schemathesis_venv/bin/pip" install -q "schemathesis==$schemathesis_version"
fi
export SCHEMATHESIS="$schemathesis_venv/bin/schemathesis"
# The browser and PostgreSQL tests must not skip in CI.
export SWITCHBOARD_REQUIRE_BROWSER=1
export SWITCHBOARD_REQUIRE_POSTGRES=1

rustup component add rustfmt clippy >/dev/null 2>&1 || true
command -v cargo-audit >/dev/null 2>&1 || { step "installing cargo-audit"; cargo install --locked cargo-audit; }
command -v cargo-deb >/dev/null 2>&1 || { step "installing cargo-deb"; cargo install --locked cargo-deb; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo audit"
# The workspace's RustSec snapshot when there is one (CI, this repository's own build
# machines: no network needed); otherwise cargo audit's own database, fetched as usual.
advisory_db="${SWITCHBOARD_ADVISORY_DB:-$root/../shared/advisory-db}"
if [ -d "$advisory_db" ]; then
    echo "advisory database: the snapshot at $advisory_db"
    cargo audit --db "$advisory_db" --no-fetch --stale -D warnings
elif [ -n "${SWITCHBOARD_ADVISORY_DB:-}" ]; then
    echo "SWITCHBOARD_ADVISORY_DB=$SWITCHBOARD_ADVISORY_DB is not a directory" >&2
    exit 1
else
    echo "advisory database: cargo audit's default (~/.cargo/advisory-db, fetched); no snapshot at $advisory_db"
    cargo audit -D warnings
fi
# .cargo/audit.toml ignores one advisory for a crate that is locked but never built;
# make sure it stays that way, and that no unmaintained crate we banned creeps in.
if cargo tree --locked --workspace -e normal,build,dev --prefix none | grep -E '^(rsa|backoff|instant) '; then
    echo "a crate that must not be built is in the build graph (see .cargo/audit.toml)" >&2
    exit 1
fi

step "cargo test"
cargo test --locked --workspace

step "the end-to-end suite again, stored on PostgreSQL"
SWITCHBOARD_TEST_STORAGE=postgres cargo test --locked -p switchboard --tests

step "schemathesis against a live daemon (/v1/openapi.json, every check)"
bash scripts/schemathesis/run.sh "$CARGO_TARGET_DIR/debug/switchboard"

step "systemd unit"
bash scripts/check-systemd.sh "$CARGO_TARGET_DIR/debug/switchboard"

step "Debian package"
bash scripts/package.sh

step "all checks passed"
