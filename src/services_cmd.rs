//! `switchboard services`: the live table from the running daemon's API when it answers,
//! else the last state recorded in storage.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use switchboard_core::Scope;

use crate::config::Config;
use crate::store::Store;

/// Prints one line per service: id, type, status, state, since, last error.
pub async fn print(config: &Config) -> anyhow::Result<()> {
    let rows = match from_api(config).await {
        Some(rows) => rows,
        None => from_storage(config).await?,
    };
    println!(
        "{:<24} {:<10} {:<15} {:<11} {:<25} LAST ERROR",
        "ID", "TYPE", "STATUS", "STATE", "SINCE"
    );
    for r in rows {
        println!(
            "{:<24} {:<10} {:<15} {:<11} {:<25} {}",
            r[0], r[1], r[2], r[3], r[4], r[5]
        );
    }
    Ok(())
}

fn field(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Asks the running daemon, with one read token per organization.
async fn from_api(config: &Config) -> Option<Vec<[String; 6]>> {
    let tokens = config.token_per_organization(Scope::Read);
    if tokens.is_empty() {
        return None;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = switchboard_core::outbound::client_builder()
        .timeout(Duration::from_secs(3))
        .build()
        .ok()?;
    let url = format!("http://{}/v1/services", config.server.listen);
    let mut rows = Vec::new();
    for (_, token) in tokens {
        let resp = client.get(&url).bearer_auth(token).send().await.ok()?;
        let body: Value = resp.error_for_status().ok()?.json().await.ok()?;
        for s in body["data"].as_array()? {
            rows.push([
                field(s, &["id"]),
                field(s, &["type"]),
                field(s, &["status"]),
                field(s, &["state", "kind"]),
                field(s, &["state", "since"]),
                field(s, &["state", "reason"]),
            ]);
        }
    }
    rows.sort();
    Some(rows)
}

async fn from_storage(config: &Config) -> anyhow::Result<Vec<[String; 6]>> {
    let location = config.storage.location().map_err(anyhow::Error::msg)?;
    let reader = Store::open_read_only_at(&location)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let stored = reader.services().await.context("reading services")?;
    reader.close().await;
    let mut rows = Vec::new();
    for svc in config.services.values() {
        let found = stored.iter().find(|s| s.info.id == svc.id);
        let (state, since, last_error) = match found {
            Some(s) => (
                format!("{} (not running)", s.state.kind()),
                crate::store::rows::ts(s.since).to_string(),
                s.last_error.clone().unwrap_or_else(|| "-".into()),
            ),
            None => ("never run".into(), "-".into(), "-".into()),
        };
        rows.push([
            svc.id.clone(),
            svc.type_name().to_owned(),
            svc.status.as_str().to_owned(),
            state,
            since,
            last_error,
        ]);
    }
    Ok(rows)
}
