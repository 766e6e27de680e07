#!/usr/bin/env bash
# Builds the Debian package and checks that it holds what an operator needs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
command -v cargo-deb >/dev/null 2>&1 || cargo install --locked cargo-deb
deb="$(cargo deb --locked --strip 2>/dev/null | tail -n 1)"
[ -f "$deb" ] || deb="$(ls -t "$CARGO_TARGET_DIR"/debian/switchboard_*.deb | head -n 1)"
echo "==> $deb"
contents="$(dpkg-deb --contents "$deb")"
printf '%s\n' "$contents"
for f in ./usr/bin/switchboard ./usr/lib/systemd/system/switchboard.service \
         ./usr/lib/sysusers.d/switchboard.conf ./usr/lib/tmpfiles.d/switchboard.conf \
         ./etc/switchboard/switchboard.toml ./etc/switchboard/switchboard.example.toml; do
    grep -q " ${f}\$" <<<"$contents" || { echo "missing from the package: $f" >&2; exit 1; }
done
# Captured first: under pipefail, `dpkg-deb | grep -q` fails whenever grep
# exits before dpkg-deb has written everything (SIGPIPE), which CI hit.
info="$(dpkg-deb --info "$deb")"
grep -q " conffiles" <<<"$info" || { echo "no conffiles in the package" >&2; exit 1; }
size="$(sed -n 's/^ *Installed-Size: *//p' <<<"$info")"
echo "installed size: ${size} KiB"
# The packaged config must be valid as shipped.
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
dpkg-deb --extract "$deb" "$tmp"
"$tmp/usr/bin/switchboard" check-config --config "$tmp/etc/switchboard/switchboard.toml"
echo "==> package contents as expected"
