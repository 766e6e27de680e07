"""Draws docs/benchmarks-latency.png from the quantile curves sb-bench writes."""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src, dst = sys.argv[1], sys.argv[2]
series = defaultdict(lambda: ([], []))
with open(src) as f:
    for row in csv.DictReader(f):
        q, ms = series[row["series"]]
        q.append(float(row["quantile"]) * 100)
        ms.append(float(row["latency_ms"]))

fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
for name, (q, ms) in series.items():
    ax.plot(q, ms, label=name)
ax.set_yscale("log")
ax.set_xlabel("percentile")
ax.set_ylabel("latency (ms, log scale)")
ax.set_title("switchboard latency by percentile")
ax.set_xlim(0, 100)
ax.grid(True, which="both", alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(dst)
print(f"wrote {dst}")
