//! The status page's HTML, rendered on the server: every value is escaped here, so the
//! page's script only swaps in what this module wrote. Sparklines are inline SVG.

use std::fmt::Write;

use jiff::Timestamp;
use switchboard_core::ConnState;

use super::snapshot::{BUCKET_MINUTES, BUCKETS, ServiceRow, Snapshot};

/// Seconds between the page's refreshes of its live part.
pub const REFRESH_SECONDS: u32 = 2;

/// Escapes text for HTML content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/status/assets/status.css\">\
         <link rel=\"icon\" href=\"data:,\"></head><body>{body}</body></html>\n",
        esc(title)
    )
}

/// The login form, with a problem to show when a login failed.
pub fn login(problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p class=\"problem\" role=\"alert\">{}</p>", esc(p)))
        .unwrap_or_default();
    document(
        "switchboard · sign in",
        &format!(
            "<main class=\"login\"><h1>switchboard</h1>\
             <form method=\"post\" action=\"/status/login\">\
             <label for=\"token\">Admin token</label>\
             <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
             <button type=\"submit\">Sign in</button></form>{problem}\
             <p class=\"hint\">A token with the <code>admin</code> scope of an api service. \
             It stays on the server; the browser keeps only a session cookie.</p></main>"
        ),
    )
}

/// The whole page: a header and the live part, which the script refreshes.
pub fn page(s: &Snapshot, signed_in: bool) -> String {
    let logout = if signed_in {
        "<form method=\"post\" action=\"/status/logout\"><button type=\"submit\">Sign out</button></form>"
    } else {
        ""
    };
    document(
        "switchboard · status",
        &format!(
            "<header><h1>switchboard</h1><span class=\"org\">organization {}</span>\
             <a href=\"/status/dead\">Dead deliveries</a>{logout}</header>\
             <main id=\"live\" data-refresh=\"{REFRESH_SECONDS}\">{}</main>\
             <script src=\"/status/assets/status.js\"></script>",
            esc(&s.organization),
            live(s)
        ),
    )
}

/// The live part alone (`GET /status/live`).
pub fn live(s: &Snapshot) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<p class=\"updated\">Updated <time datetime=\"{at}\">{at}</time></p>",
        at = s.at.round(jiff::Unit::Second).unwrap_or(s.at)
    );
    h.push_str("<section><h2>Services</h2>");
    if s.services.is_empty() {
        h.push_str("<p>No services are configured for this organization.</p>");
    } else {
        let _ = write!(
            h,
            "<table class=\"services\"><thead><tr><th>Service</th><th>Type</th><th>Status</th>\
             <th>Live state</th><th>Outbox</th><th>Dead</th>\
             <th>Messages, last hour <small>(in / out per {BUCKET_MINUTES} min)</small></th></tr></thead><tbody>"
        );
        for row in &s.services {
            service_row(&mut h, row, s.at);
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>");
    failures(&mut h, s);
    hub(&mut h, s);
    h
}

fn service_row(h: &mut String, row: &ServiceRow, now: Timestamp) {
    let v = &row.view;
    let id = esc(&v.id);
    let name = v
        .name
        .as_deref()
        .map(|n| format!("<div class=\"name\">{}</div>", esc(n)))
        .unwrap_or_default();
    let (kind, detail) = match &v.state.state {
        ConnState::Backoff { attempt, until } => (
            "backoff",
            format!(
                "attempt {attempt}, next at {}",
                until.round(jiff::Unit::Second).unwrap_or(*until)
            ),
        ),
        ConnState::Failed { reason } => ("failed", reason.clone()),
        other => (other.kind(), String::new()),
    };
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!("<div class=\"reason\">{}</div>", esc(&detail))
    };
    let since = v.state.since;
    let dead = if row.dead > 0 {
        format!(
            "<a href=\"/status/dead?service_id={id}\" title=\"list and retry\">{}</a>",
            row.dead
        )
    } else {
        "0".to_owned()
    };
    let _ = write!(
        h,
        "<tr data-service=\"{id}\"><td><code>{id}</code>{name}</td><td>{kind_type}</td><td>{status}</td>\
         <td class=\"state state-{kind}\"><span class=\"kind\">{kind}</span> \
         <span class=\"since\">since <time datetime=\"{since}\">{ago}</time></span>{detail}</td>\
         <td class=\"depth\" data-depth=\"{depth}\">{depth}</td>\
         <td class=\"dead\" data-dead=\"{dead_n}\">{dead}</td><td class=\"traffic\">{spark}</td></tr>",
        kind_type = esc(&v.kind),
        status = esc(&v.status),
        ago = ago(since, now),
        depth = row.depth,
        dead_n = row.dead,
        spark = sparkline(&row.inbound, &row.outbound),
    );
}

/// "5s ago", "3m ago", "2h ago", "4d ago".
pub(super) fn ago(then: Timestamp, now: Timestamp) -> String {
    let s = now.as_second().saturating_sub(then.as_second()).max(0);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// Two polylines (in, out) over the buckets, on one scale, with the totals as text.
pub fn sparkline(inbound: &[u32], outbound: &[u32]) -> String {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    let max = inbound
        .iter()
        .chain(outbound)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let points = |series: &[u32]| {
        let step = W / (BUCKETS.max(2) - 1) as f64;
        series
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "{:.1},{:.1}",
                    i as f64 * step,
                    H - 1.0 - (*n as f64 / max) * (H - 2.0)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (tin, tout): (u32, u32) = (inbound.iter().sum(), outbound.iter().sum());
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"{tin} in, {tout} out in the last hour\"><title>{tin} in, {tout} out in the last hour</title>\
         <polyline class=\"in\" fill=\"none\" points=\"{}\"/><polyline class=\"out\" fill=\"none\" points=\"{}\"/></svg>\
         <span class=\"totals\" data-in=\"{tin}\" data-out=\"{tout}\">{tin} / {tout}</span>",
        points(inbound),
        points(outbound)
    )
}

fn failures(h: &mut String, s: &Snapshot) {
    h.push_str("<section><h2>Recent failures</h2>");
    if s.failures.is_empty() {
        h.push_str("<p class=\"none\">No delivery is failing.</p></section>");
        return;
    }
    h.push_str(
        "<table class=\"failures\"><thead><tr><th>Queued</th><th>Service</th><th>Kind</th>\
         <th>Attempts</th><th>State</th><th>Last error</th></tr></thead><tbody>",
    );
    for f in &s.failures {
        let queued = crate::store::rows::ts(f.created_at);
        let state = if f.dead {
            "<span class=\"dead\">dead</span>".to_owned()
        } else {
            format!(
                "retrying, next {}",
                crate::store::rows::ts(f.next_attempt_at)
                    .round(jiff::Unit::Second)
                    .unwrap_or(queued)
            )
        };
        let _ = write!(
            h,
            "<tr data-delivery=\"{}\"><td><time datetime=\"{queued}\">{}</time></td><td><code>{}</code></td>\
             <td>{}</td><td>{}</td><td>{state}</td><td class=\"error\">{}</td></tr>",
            f.id,
            ago(queued, s.at),
            esc(&f.service_id),
            esc(&f.kind),
            f.attempts,
            esc(&f.last_error),
        );
    }
    h.push_str("</tbody></table></section>");
}

fn hub(h: &mut String, s: &Snapshot) {
    h.push_str("<section><h2>Hub</h2>");
    match &s.hub {
        None => h.push_str("<p class=\"hub\" data-hub=\"none\">No hub is configured.</p>"),
        Some((url, sync)) => {
            // Only scheme, host and path: a URL may carry credentials.
            let shown = url::Url::parse(url)
                .map(|u| format!("{}{}", u.origin().ascii_serialization(), u.path()))
                .unwrap_or_default();
            let ok = match sync.last_ok {
                Some(at) => format!(
                    "last synced <time datetime=\"{at}\">{}</time>, {} service{}",
                    ago(at, s.at),
                    sync.services,
                    if sync.services == 1 { "" } else { "s" }
                ),
                None => "not synced yet".to_owned(),
            };
            let failing = sync
                .last_error
                .as_ref()
                .filter(|(at, _)| sync.last_ok.is_none_or(|ok| *at > ok));
            let (state, err) = match failing {
                Some((at, e)) => (
                    "failing",
                    format!(
                        "<div class=\"reason\">failing since <time datetime=\"{at}\">{}</time>: {}</div>",
                        ago(*at, s.at),
                        esc(e)
                    ),
                ),
                None => ("ok", String::new()),
            };
            let _ = write!(
                h,
                "<p class=\"hub\" data-hub=\"{state}\"><code>{}</code>: {ok}</p>{err}",
                esc(&shown)
            );
        }
    }
    h.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert!(login(Some("<script>")).contains("&lt;script&gt;"));
    }

    #[test]
    fn sparklines_share_one_scale_and_state_the_totals() {
        let svg = sparkline(&[0, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[1; 12]);
        assert!(svg.contains("6 in, 12 out"));
        // The busiest bucket touches the top (y = 1), an empty one the bottom (y = 23).
        assert!(svg.contains("21.8,1.0"), "{svg}");
        assert!(svg.contains("0.0,23.0"), "{svg}");
        let quiet = sparkline(&[0; 12], &[0; 12]);
        assert!(quiet.contains("0 in, 0 out"));
    }

    #[test]
    fn ages_read_at_a_glance() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let at = |s: i64| Timestamp::from_second(1_000_000 - s).unwrap();
        assert_eq!(ago(at(5), now), "5s ago");
        assert_eq!(ago(at(125), now), "2m ago");
        assert_eq!(ago(at(7300), now), "2h ago");
        assert_eq!(ago(at(200_000), now), "2d ago");
        assert_eq!(ago(at(-30), now), "0s ago");
    }
}
