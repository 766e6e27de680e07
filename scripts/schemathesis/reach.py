"""Every status the OpenAPI document gives an operation was answered during the
schemathesis runs (read from their HAR reports), or is explained in unreached.toml with
the Rust test that reaches it; notes explanations that no longer apply.
    usage: reach.py OPENAPI.json UNREACHED.toml HAR.json...
"""
import json
import re
import sys
import tomllib
from urllib.parse import unquote, urlsplit

doc = json.load(open(sys.argv[1]))
explained = tomllib.load(open(sys.argv[2], "rb"))
hars = sys.argv[3:]

operations = []
for path, item in doc["paths"].items():
    pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")) + "$")
    for method, op in item.items():
        operations.append((method.upper(), path, pattern, set(op["responses"])))

seen = {}
for har in hars:
    for entry in json.load(open(har))["log"]["entries"]:
        method = entry["request"]["method"]
        path = urlsplit(entry["request"]["url"]).path
        for m, p, pattern, _ in operations:
            if m == method and pattern.match(path):
                seen.setdefault((m, p), set()).add(str(entry["response"]["status"]))

problems = []
used = set()
for method, path, _, documented in operations:
    for status in sorted(documented - seen.get((method, path), set())):
        for key in (f"{method} {path} {status}", f"* {status}"):
            if key in explained:
                used.add(key)
                break
        else:
            problems.append(f"{method} {path}: documented {status} was never answered and is not explained")
    for status in sorted(seen.get((method, path), set()) - documented):
        problems.append(f"{method} {path}: answered {status}, which the document does not give")
# A stale explanation is worth a look, not a failure: a run that happens to reach an
# answer (or a change elsewhere that makes it reachable) is not a regression.
for key in sorted(set(explained) - used):
    print(f"note: unreached.toml: {key!r} explains nothing in this run (reached, or no such answer)")

reached = sum(len(s) for s in seen.values())
total = sum(len(d) for *_, d in operations)
print(f"documented answers: {total}; answered in the runs: {reached}; explained: {len(used)}")
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
