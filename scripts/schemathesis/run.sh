#!/usr/bin/env bash
# schemathesis against a live daemon: the real binary on a fresh SQLite file on
# loopback, a token with every scope, seeded with a conversation so that links and
# path parameters reach real objects. Every check, every operation; bounded in time.
#   usage: scripts/schemathesis/run.sh BINARY [MAX_EXAMPLES]
# A second, shorter pass uses a token without the scopes; reach.py then checks that
# every documented answer was given or is explained (unreached.toml).
# Exits non-zero on any failure schemathesis finds (a 5xx, a response that does not
# conform to /v1/openapi.json, an accepted bad request, an ignored credential, …).
set -euo pipefail
bin="$1"
max_examples="${2:-${SCHEMATHESIS_MAX_EXAMPLES:-300}}"
st="${SCHEMATHESIS:-$HOME/.cache/switchboard/schemathesis-4.32.5/bin/schemathesis}"
token="schemathesis-token-0123456789"
ingest_token="schemathesis-ingest-0123456789"

work="$(mktemp -d)"
daemon=""
receiver=""
cleanup() {
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
    [ -n "$receiver" ] && kill "$receiver" 2>/dev/null && wait "$receiver" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Twilio's account lookup (GET /2010-04-01/Accounts/{sid}.json with HTTP basic auth),
# so the sms service connects and /readyz can answer 200.
fake_twilio() {
    python3 - "$1" <<'PY'
import base64, http.server, sys
SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "f0e1d2c3b4a5968778695a4b3c2d1e0f"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        good = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if self.path != f"/2010-04-01/Accounts/{SID}.json":
            code, body = 404, b'{"code":20404,"message":"not found"}'
        elif self.headers.get("Authorization") != good:
            code, body = 401, b'{"code":20003,"message":"Authenticate"}'
        else:
            code, body = 200, ('{"sid":"%s","status":"active"}' % SID).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
}

report_dir="${SCHEMATHESIS_REPORT_DIR:-$work/report}"
mkdir -p "$report_dir"
log="$report_dir/daemon.log"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
base="http://127.0.0.1:$port"
twilio_port="$(free_port)"
fake_twilio "$twilio_port" &
receiver=$!
for _ in $(seq 1 100); do
    curl -sS -o /dev/null "http://127.0.0.1:$twilio_port/" 2>/dev/null && break
    sleep 0.1
done

cat >"$work/switchboard.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
shutdown_timeout = "5s"

[storage]
url = "sqlite://$work/switchboard.db"

[log]
level = "warn"

[services.api]
type = "api"
[services.api.params.tokens.all]
token = "$token"
scopes = ["read", "reply", "ingest", "admin"]

# A webhook whose target refuses everything (the fake has no POST: 501): each
# event dies at once, so there are dead deliveries to list and retry.
[services.hook]
type = "webhook"
[services.hook.params]
url = "http://127.0.0.1:$twilio_port/refused"
secret = "whsec_c2NoZW1hdGhlc2lzLXdlYmhvb2stc2VjcmV0LTEyMzQ1"
max_attempts = 1

[services.other]
type = "api"
[services.other.params.tokens.ingest]
token = "$ingest_token"
scopes = ["ingest"]

# A provider hook to aim at: every request schemathesis makes is unsigned, so every
# one must be refused (401) and nothing stored.
[services.sms]
type = "twilio"
[services.sms.params]
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
from = "+15005550006"
api_base = "http://127.0.0.1:$twilio_port"
EOF

"$bin" run --config "$work/switchboard.toml" 2>"$log" &
daemon=$!
for _ in $(seq 1 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null || { cat "$log" >&2; exit 1; }
for _ in $(seq 1 100); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$base/readyz" >&2 || { echo "not ready" >&2; cat "$log" >&2; exit 1; }

# Something to find: a conversation with an inbound message and a reply.
auth=(-H "Authorization: Bearer $token" -H "Content-Type: application/json")
curl -fsS "${auth[@]}" "$base/v1/services/api/messages" \
    -d '{"external_id":"seed-1","contact":{"external_id":"c-1","name":"Seed"},"text":"hello"}' >"$work/seed.json"
conversation="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["conversation_id"])' "$work/seed.json")"
curl -fsS "${auth[@]}" "$base/v1/conversations/$conversation/messages" -d '{"text":"hi back"}' >/dev/null
for _ in $(seq 1 100); do
    dead="$(curl -fsS "${auth[@]}" "$base/v1/admin/deliveries?state=dead" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))')"
    [ "$dead" -gt 0 ] && break
    sleep 0.1
done
[ "$dead" -gt 0 ] || { echo "no dead delivery to test with" >&2; exit 1; }

curl -fsS "$base/v1/openapi.json" >"$report_dir/openapi.json"
here="$(dirname "$0")"
status=0
# $1: pass name, $2: token, $3: examples per operation; the rest: schemathesis options.
# One worker: with two, Hypothesis's lambda descriptions hit CPython 3.11's
# thread-unsafe AST constructor ("recursion depth mismatch") now and then.
pass() {
    local name="$1" bearer="$2" examples="$3"
    shift 3
    echo "==> schemathesis: $name"
    "$st" --config-file "$here/schemathesis.toml" run "$base/v1/openapi.json" \
        --checks all \
        --max-examples "$examples" \
        --seed "${SCHEMATHESIS_SEED:-20261101}" \
        --workers 1 \
        --request-timeout 10 \
        --max-redirects 0 \
        -H "Authorization: Bearer $bearer" \
        --report junit,har --report-dir "$report_dir" \
        --report-junit-path "$report_dir/$name.xml" --report-har-path "$report_dir/$name.har.json" \
        "$@" || status=1
}
# Every operation with a token that has every scope.
pass all-scopes "$token" "$max_examples"
# The API and the status page again with another api service's ingest-only token:
# every read, reply, admin action, page and ingest through someone else's service
# must be 403.
pass other-scope "$ingest_token" "$(( (max_examples + 9) / 10 ))" --include-path-regex '^/(v1/|status)'

if ! kill -0 "$daemon" 2>/dev/null; then
    echo "the daemon died during the run:" >&2
    cat "$log" >&2
    exit 1
fi
# Errors other than the deliveries the refusing webhook kills on purpose.
if grep -E 'panicked|ERROR' "$log" | grep -v 'delivery is dead' >&2; then
    echo "the daemon logged errors during the run (above)" >&2
    status=1
fi
python3 "$here/reach.py" "$report_dir/openapi.json" "$here/unreached.toml" \
    "$report_dir/all-scopes.har.json" "$report_dir/other-scope.har.json" || status=1
exit "$status"
