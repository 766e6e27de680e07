#!/usr/bin/env bash
# Checks the systemd unit: `systemd-analyze verify` must be clean and the offline
# security exposure score at most 2.0. Usage: check-systemd.sh PATH-TO-switchboard-BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "$1")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The unit names /usr/bin/switchboard; point it at the binary under test.
sed "s#/usr/bin/switchboard#${bin}#g" systemd/switchboard.service > "$work/switchboard.service"
(cd "$work" && systemd-analyze verify ./switchboard.service)
report="$(cd "$work" && systemd-analyze security --offline=yes ./switchboard.service)"
score="$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for switchboard.service: \([0-9.]*\).*/\1/p')"
echo "systemd-analyze verify: clean; security exposure: ${score}"
if [ -z "$score" ] || ! awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
    printf '%s\n' "$report" | grep '✗' || true
    echo "exposure score ${score:-unknown} is above 2.0" >&2
    exit 1
fi
