//! The XMPP rows: `bash bench/run.sh` runs the one-sender benchmark of
//! `tests/smartsupp_bench.rs` (a real Prosody, one visitor, signed webhooks to a
//! loopback receiver) before `sb-bench all --xmpp FILE`, and these rows set its medians
//! beside matterbridge 1.26's figures from the same kind of run (issue 21).

use anyhow::Context;

use crate::{Row, row};

/// matterbridge's bursts of 2,000 and 10,000 messages, msg/s (median of 3).
const MATTERBRIDGE_BURSTS: [f64; 2] = [576.0, 611.0];
/// matterbridge paced at 200 msg/s: p50 and p99, ms.
const MATTERBRIDGE_PACED: (f64, f64) = (5.0, 42.0);

/// Rows from the `xmpp-one-sender k=v …` line in `path` (the benchmark's stderr).
pub fn rows(path: &str, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("xmpp-one-sender "))
        .with_context(|| format!("no xmpp-one-sender line in {path}"))?;
    let get = |key: &str| -> anyhow::Result<f64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .with_context(|| format!("no {key} in {line:?}"))?
            .parse()
            .with_context(|| format!("{key} in {line:?}"))
    };
    let runs = get("runs")?;
    for (n, (key, theirs)) in [
        (2_000, ("burst2000", MATTERBRIDGE_BURSTS[0])),
        (10_000, ("burst10000", MATTERBRIDGE_BURSTS[1])),
    ] {
        let ours = get(key)?;
        row(
            rows,
            format!(
                "XMPP (real Prosody) → signed webhook, one sender, burst of {n}: relayed msg/s, median of {runs} rounds"
            ),
            format!(
                "{ours:.0} msg/s ({:.1}× matterbridge's {theirs:.0})",
                ours / theirs
            ),
            &format!("≥ {:.0} (3× matterbridge)", 3.0 * theirs),
            Some(ours >= 3.0 * theirs),
        );
    }
    let (p50, p99) = (get("p50_ms")?, get("p99_ms")?);
    row(
        rows,
        format!(
            "XMPP, one sender paced at {:.0} msg/s: send → signed webhook p50 / p99, median of {runs} rounds",
            get("paced_rate")?
        ),
        format!(
            "{p50:.2} / {p99:.2} ms, every message delivered (matterbridge {:.0} / {:.0} ms)",
            MATTERBRIDGE_PACED.0, MATTERBRIDGE_PACED.1
        ),
        "keeps up; p99 ≤ matterbridge's",
        Some(p99 <= MATTERBRIDGE_PACED.1),
    );
    Ok(())
}
