//! `switchboard deliveries list|retry`: dead deliveries through the running daemon's
//! API (`/v1/admin/deliveries…`), with the config's admin token of each organization.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use switchboard_core::Scope;

use crate::config::Config;

/// Pages followed at most by `list` (100 deliveries each).
const MAX_PAGES: usize = 1000;

/// What `deliveries` does.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List deliveries (dead ones unless --live), oldest first.
    List {
        /// Only this service's.
        #[arg(long)]
        service: Option<String>,
        /// Queued and ready deliveries instead of dead ones.
        #[arg(long)]
        live: bool,
    },
    /// Put a dead delivery (by id), or every dead delivery of a service, back in its queue.
    Retry {
        /// The delivery's id, as `list` shows it.
        #[arg(required_unless_present = "service", conflicts_with = "service")]
        id: Option<String>,
        /// Retry every dead delivery of this service instead.
        #[arg(long)]
        service: Option<String>,
    },
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(config: &Config) -> anyhow::Result<Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        let mut addr = config.server.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        Ok(Client {
            http,
            base: format!("http://{addr}"),
        })
    }

    /// Sends; the status and JSON body. A daemon that does not answer is an error
    /// naming where it was asked.
    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let resp = req.send().await.with_context(|| {
            format!(
                "the daemon does not answer at {} (is it running?)",
                self.base
            )
        })?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }
}

fn error_of(status: u16, body: &Value) -> anyhow::Error {
    let msg = body["error"]["message"].as_str().unwrap_or("no error body");
    anyhow::anyhow!("the daemon answered {status}: {msg}")
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Runs the action.
pub async fn run(config: &Config, action: Action) -> anyhow::Result<()> {
    let tokens = config.token_per_organization(Scope::Admin);
    if tokens.is_empty() {
        bail!("no api service in the config has a token with the admin scope");
    }
    let client = Client::new(config)?;
    match action {
        Action::List { service, live } => list(&client, &tokens, service, live).await,
        Action::Retry { id: Some(id), .. } => retry_one(&client, &tokens, &id).await,
        Action::Retry {
            service: Some(service),
            ..
        } => retry_service(&client, &tokens, &service).await,
        Action::Retry { .. } => bail!("give a delivery id or --service"),
    }
}

async fn list(
    client: &Client,
    tokens: &[(String, String)],
    service: Option<String>,
    live: bool,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for (_, token) in tokens {
        let mut after = String::new();
        for _ in 0..MAX_PAGES {
            let mut query = vec![
                ("state", if live { "live" } else { "dead" }.to_owned()),
                ("limit", "100".to_owned()),
            ];
            if let Some(s) = &service {
                query.push(("service_id", s.clone()));
            }
            if !after.is_empty() {
                query.push(("after", after.clone()));
            }
            let req = client
                .http
                .get(format!("{}/v1/admin/deliveries", client.base))
                .bearer_auth(token)
                .query(&query);
            let (status, body) = client.send(req).await?;
            if status != 200 {
                return Err(error_of(status, &body));
            }
            rows.extend(body["data"].as_array().cloned().unwrap_or_default());
            match body["next"].as_str() {
                Some(n) => after = n.to_owned(),
                None => break,
            }
        }
    }
    println!(
        "{:<8} {:<20} {:<8} {:<6} {:>8} {:<25} {:<12} LAST ERROR",
        "ID", "SERVICE", "KIND", "STATE", "ATTEMPTS", "QUEUED", "WEBHOOK-ID"
    );
    for d in &rows {
        println!(
            "{:<8} {:<20} {:<8} {:<6} {:>8} {:<25} {:<12} {}",
            text(&d["id"]),
            text(&d["service_id"]),
            text(&d["kind"]),
            text(&d["state"]),
            text(&d["attempts"]),
            text(&d["created_at"]),
            text(&d["webhook_id"]),
            text(&d["last_error"]),
        );
    }
    eprintln!(
        "{} {} deliver{}",
        rows.len(),
        if live { "live" } else { "dead" },
        if rows.len() == 1 { "y" } else { "ies" }
    );
    Ok(())
}

/// Tries each organization's token: a delivery of another organization is 404 to it.
async fn retry_one(client: &Client, tokens: &[(String, String)], id: &str) -> anyhow::Result<()> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("{id:?} is not a delivery id (a number, as `deliveries list` shows)");
    }
    let mut last = None;
    for (_, token) in tokens {
        let req = client
            .http
            .post(format!("{}/v1/admin/deliveries/{id}/retry", client.base))
            .bearer_auth(token);
        let (status, body) = client.send(req).await?;
        match status {
            200 => {
                println!(
                    "delivery {} to {} requeued ({})",
                    text(&body["id"]),
                    text(&body["service_id"]),
                    text(&body["state"])
                );
                return Ok(());
            }
            404 => last = Some(error_of(status, &body)),
            _ => return Err(error_of(status, &body)),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("delivery {id} not found")))
}

async fn retry_service(
    client: &Client,
    tokens: &[(String, String)],
    service: &str,
) -> anyhow::Result<()> {
    if service.is_empty()
        || !service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        bail!("{service:?} is not a service id ([a-z0-9_]+)");
    }
    let mut last = None;
    for (_, token) in tokens {
        let req = client
            .http
            .post(format!(
                "{}/v1/admin/services/{service}/retry-dead",
                client.base
            ))
            .bearer_auth(token);
        let (status, body) = client.send(req).await?;
        match status {
            200 => {
                println!(
                    "service {service}: {} dead deliveries requeued",
                    text(&body["retried"])
                );
                return Ok(());
            }
            404 => last = Some(error_of(status, &body)),
            _ => return Err(error_of(status, &body)),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("service {service} not found")))
}
