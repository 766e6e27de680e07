//! Services defined in a Web1on1 hub (docs/web1on1.md): fetched every
//! `hub.sync_interval` by [`sync_task`], mapped onto our services, merged with the config
//! (the config wins on an id clash), and kept in storage so a hub outage or a restart
//! never stops what runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use config::{Map, Value, ValueKind};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use switchboard_core::Secret;

use tokio::sync::watch;

use crate::app::{App, Control};
use crate::config::typed::Unknown;
use crate::config::{Config, HubConfig, ServiceConfig};
use crate::store::Store;

/// Sync-state key under which the last good service list is stored. The `:` keeps it out
/// of the service id space.
pub const STORE_SERVICE: &str = ":hub";
/// Sync-state key of the list.
pub const STORE_KEY: &str = "services";

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The hub refused our credentials.
    #[error("the hub refused our credentials (HTTP {0})")]
    Auth(u16),
    /// The hub answered something else than a service list.
    #[error("unexpected answer from the hub: {0}")]
    Protocol(String),
    /// Network or HTTP failure.
    #[error("hub unreachable: {0}")]
    Unavailable(String),
}

/// A time-based session from `POST /auth/token`.
struct Session {
    token: Secret,
    refresh: Secret,
    /// Refresh when the clock passes this instant: half the token's life, at most an hour
    /// before it expires.
    refresh_at: Timestamp,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenAnswer {
    token: String,
    refresh_token: String,
    expires_at: Timestamp,
}

/// Fetches services from the hub, logging in and refreshing as needed.
pub struct HubClient {
    http: reqwest::Client,
    session: Option<Session>,
    /// Credentials the session was made with; a reload that changes them drops it.
    session_for: Option<(String, String)>,
}

impl HubClient {
    /// A client without a session.
    pub fn new(http: reqwest::Client) -> Self {
        HubClient {
            http,
            session: None,
            session_for: None,
        }
    }

    /// The hub's current service list.
    pub async fn services(
        &mut self,
        cfg: &HubConfig,
        now: Timestamp,
    ) -> Result<Vec<serde_json::Value>, HubError> {
        let bearer = self.bearer(cfg, now).await?;
        let resp = self.get_services(cfg, &bearer).await?;
        let resp = if resp.status() == reqwest::StatusCode::UNAUTHORIZED && cfg.token.is_none() {
            // The session may have been revoked: log in once more.
            self.session = None;
            let bearer = self.bearer(cfg, now).await?;
            self.get_services(cfg, &bearer).await?
        } else {
            resp
        };
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(HubError::Auth(status.as_u16()));
        }
        if !status.is_success() {
            return Err(HubError::Unavailable(format!(
                "GET /services answered HTTP {}",
                status.as_u16()
            )));
        }
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| HubError::Protocol(format!("GET /services: {e}")))?;
        match body {
            serde_json::Value::Array(items) => Ok(items),
            serde_json::Value::Object(mut o) => match o.remove("data") {
                Some(serde_json::Value::Array(items)) => Ok(items),
                _ => Err(HubError::Protocol("GET /services: expected a list".into())),
            },
            _ => Err(HubError::Protocol("GET /services: expected a list".into())),
        }
    }

    async fn get_services(
        &self,
        cfg: &HubConfig,
        bearer: &Secret,
    ) -> Result<reqwest::Response, HubError> {
        self.http
            .get(cfg.endpoint("/services"))
            .bearer_auth(bearer.expose())
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| HubError::Unavailable(transport(&e)))
    }

    async fn bearer(&mut self, cfg: &HubConfig, now: Timestamp) -> Result<Secret, HubError> {
        if let Some(token) = &cfg.token {
            return Ok(token.clone());
        }
        let (Some(email), Some(password)) = (&cfg.email, &cfg.password) else {
            return Err(HubError::Protocol("no hub credentials configured".into()));
        };
        let creds = (cfg.url.clone(), email.clone());
        if self.session_for.as_ref() != Some(&creds) {
            self.session = None;
        }
        if let Some(s) = &self.session
            && now >= s.refresh_at
        {
            match self.refresh(cfg, s, now).await {
                Ok(fresh) => self.session = Some(fresh),
                Err(e) => {
                    tracing::info!(error = %e, "hub token refresh failed; logging in again");
                    self.session = None;
                }
            }
        }
        if self.session.is_none() {
            let resp = self
                .http
                .post(cfg.endpoint("/auth/token"))
                .json(&serde_json::json!({"email": email, "password": password.expose()}))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map_err(|e| HubError::Unavailable(transport(&e)))?;
            self.session = Some(session_from(resp, now).await?);
            self.session_for = Some(creds);
            tracing::info!("logged in to the hub");
        }
        Ok(self.session.as_ref().expect("set above").token.clone())
    }

    async fn refresh(
        &self,
        cfg: &HubConfig,
        s: &Session,
        now: Timestamp,
    ) -> Result<Session, HubError> {
        let resp = self
            .http
            .get(cfg.endpoint("/auth/token"))
            .query(&[("refreshToken", s.refresh.expose())])
            .bearer_auth(s.token.expose())
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| HubError::Unavailable(transport(&e)))?;
        let fresh = session_from(resp, now).await?;
        tracing::info!("hub token refreshed");
        Ok(fresh)
    }
}

async fn session_from(resp: reqwest::Response, now: Timestamp) -> Result<Session, HubError> {
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(HubError::Auth(status.as_u16()));
    }
    if !status.is_success() {
        return Err(HubError::Unavailable(format!(
            "/auth/token answered HTTP {}",
            status.as_u16()
        )));
    }
    let t: TokenAnswer = resp
        .json()
        .await
        .map_err(|e| HubError::Protocol(format!("/auth/token: {e}")))?;
    let life = t.expires_at.duration_since(now).max(SignedDuration::ZERO);
    let margin = (life / 2).min(SignedDuration::from_hours(1));
    Ok(Session {
        token: Secret::new(t.token),
        refresh: Secret::new(t.refresh_token),
        refresh_at: t.expires_at - margin,
    })
}

/// Transport errors without the URL (it carries the refresh token as a query).
fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

/// Maps the hub's services onto ours and merges them into `file`: the config wins on an
/// id clash; unknown types, bad ids and invalid params are reported and skipped.
pub fn merge(
    file: &Config,
    hub: &[serde_json::Value],
    organization: Option<&str>,
) -> (Config, Vec<String>) {
    let mut merged = file.clone();
    let mut problems = Vec::new();
    let mut taken: BTreeMap<String, ServiceConfig> = BTreeMap::new();
    for item in hub {
        let Some(id) = item
            .get("id")
            .or_else(|| item.get("_id"))
            .and_then(|v| v.as_str())
        else {
            problems.push("hub: a service without an id was skipped".into());
            continue;
        };
        if let Some(org) = organization
            && item.get("organization").and_then(|v| v.as_str()) != Some(org)
        {
            continue;
        }
        if file.services.contains_key(id) {
            problems.push(format!(
                "hub service {id:?} has the id of a configured service; the config wins"
            ));
            continue;
        }
        let mut issues = Vec::new();
        match crate::config::service(
            id,
            to_config_value(item),
            None,
            Unknown::Ignore,
            &mut issues,
        ) {
            Some(svc) => {
                taken.insert(id.to_owned(), svc);
            }
            None => {
                for i in issues {
                    problems.push(format!("hub service skipped: {i}"));
                }
            }
        }
    }
    merged.services.extend(taken.clone());
    // A hub service routed to a desk that is not there (or not one) is skipped like one
    // with invalid params; a file service's desk was checked with the file.
    for id in taken.keys() {
        if let Some(p) = crate::config::desk_problem(&merged.services[id], &merged.services) {
            problems.push(format!("hub service skipped: services.{id}.desk: {p}"));
            merged.services.remove(id);
        }
    }
    (merged, problems)
}

/// The hub's last good list from storage (empty if none or unreadable).
pub async fn stored_list(store: &Store) -> Vec<serde_json::Value> {
    match store.read.kv_get(STORE_SERVICE, STORE_KEY).await {
        Ok(Some(text)) => serde_json::from_str(&text).unwrap_or_default(),
        Ok(None) => Vec::new(),
        Err(e) => {
            tracing::warn!(error = %e, "reading the stored hub service list failed");
            Vec::new()
        }
    }
}

/// Keeps the outcome of a sync for the status page.
fn record_sync<T, E: std::fmt::Display>(app: &App, result: &Result<Vec<T>, E>) {
    let now = jiff::Timestamp::now();
    let mut sync = app.hub_sync.write().expect("hub sync lock");
    match result {
        Ok(list) => {
            sync.last_ok = Some(now);
            sync.services = list.len();
        }
        Err(e) => sync.last_error = Some((now, e.to_string())),
    }
}

/// Fetches the hub's services every `sync_interval`; a changed list is stored, then
/// handed to the control loop. A failed sync changes nothing. In a cluster only the
/// holder of the hub lease fetches; the others follow the list it stores, as often.
pub async fn sync_task(app: Arc<App>, mut config: watch::Receiver<Option<HubConfig>>) {
    let mut held = app.cluster.held(crate::cluster::HUB);
    let mut client = HubClient::new(app.http.clone());
    // What the control loop already has (from storage), so an unchanged list is not
    // stored and applied again.
    let stored = stored_list(&app.store).await;
    let mut last = (!stored.is_empty()).then(|| serde_json::Value::Array(stored).to_string());
    loop {
        let current = config.borrow_and_update().clone();
        let wait = match current {
            None => None,
            Some(cfg) if !*held.borrow_and_update() => {
                follow_stored(&app, &mut last).await;
                Some(cfg.sync_interval.0)
            }
            Some(cfg) => {
                let result = client.services(&cfg, app.clock.now()).await;
                record_sync(&app, &result);
                match result {
                    Ok(list) => {
                        let text = serde_json::Value::Array(list.clone()).to_string();
                        if last.as_deref() != Some(text.as_str()) {
                            match app.store.kv_put(STORE_SERVICE, STORE_KEY, &text).await {
                                Ok(()) => {
                                    tracing::info!(
                                        services = list.len(),
                                        "hub service list changed"
                                    );
                                    last = Some(text);
                                    let _ = app.control.send(Control::Hub(list));
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "storing the hub service list failed; will retry")
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "hub sync failed; the running services are kept")
                    }
                }
                Some(cfg.sync_interval.0)
            }
        };
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            changed = config.changed() => if changed.is_err() { return },
            Ok(()) = held.changed() => {}
            _ = tokio::time::sleep(wait.unwrap_or(Duration::MAX)), if wait.is_some() => {}
        }
    }
}

/// Hands the list another instance stored to the control loop, if it changed.
async fn follow_stored(app: &App, last: &mut Option<String>) {
    let stored = stored_list(&app.store).await;
    let text = serde_json::Value::Array(stored.clone()).to_string();
    if last.as_deref() == Some(text.as_str()) || (last.is_none() && stored.is_empty()) {
        return;
    }
    tracing::info!(
        services = stored.len(),
        "hub service list changed (synced by another instance)"
    );
    *last = Some(text);
    let _ = app.control.send(Control::Hub(stored));
}

/// The hub's service object as a config tree: Web1on1's camelCase dates become our keys,
/// a missing status is Web1on1's default (`queued`), and bookkeeping fields are dropped.
fn to_config_value(item: &serde_json::Value) -> Value {
    let mut table = Map::new();
    let Some(obj) = item.as_object() else {
        return Value::new(None, ValueKind::Table(table));
    };
    for (key, value) in obj {
        let ours = match key.as_str() {
            "startDate" => "start_date",
            "endDate" => "end_date",
            "type" | "name" | "description" | "status" | "organization" | "desk"
            | "touchpoints" | "params" | "meta" | "smoochId" | "smoochAppId" => key.as_str(),
            _ => continue,
        };
        if value.is_null() {
            continue;
        }
        table.insert(ours.to_owned(), json_to_value(value));
    }
    table
        .entry("status".into())
        .or_insert_with(|| Value::new(None, ValueKind::String("queued".into())));
    Value::new(None, ValueKind::Table(table))
}

fn json_to_value(v: &serde_json::Value) -> Value {
    let kind = match v {
        serde_json::Value::Null => ValueKind::Nil,
        serde_json::Value::Bool(b) => ValueKind::Boolean(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => ValueKind::I64(i),
            (None, Some(u), _) => ValueKind::U64(u),
            (_, _, f) => ValueKind::Float(f.unwrap_or_default()),
        },
        serde_json::Value::String(s) => ValueKind::String(s.clone()),
        serde_json::Value::Array(a) => ValueKind::Array(a.iter().map(json_to_value).collect()),
        serde_json::Value::Object(o) => ValueKind::Table(
            o.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        ),
    };
    Value::new(None, kind)
}

// The sample service lists use the api and webhook types.
#[cfg(all(test, feature = "api", feature = "webhook"))]
mod tests {
    use super::*;

    fn file_config() -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[services.api]\ntype = \"api\"\n[services.api.params.tokens.t]\ntoken = \"0123456789abcdefgh\"\nscopes = [\"read\"]\n",
        )
        .unwrap();
        crate::config::load_with(&path, &[], None).unwrap()
    }

    #[test]
    fn maps_the_seed_shape_and_reports_what_it_skips() {
        let hub = serde_json::json!([
            {"id": "5876bc219b9d2b54a0c464ca", "organization": "org1", "name": "Hook", "type": "webhook",
             "status": "active", "params": {"url": "http://127.0.0.1:9/x", "secret": "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY=", "headerColor": "yellow"},
             "startDate": "2030-01-01T00:00:00.000Z", "meta": {"someKey": "x"}, "createdAt": "2016-01-07T14:03:43Z"},
            {"id": "api", "type": "webhook", "params": {}},
            {"id": "pigeon1", "type": "carrier_pigeon", "params": {}},
            {"id": "nostatus", "type": "webhook", "params": {"url": "http://127.0.0.1:9/y", "secret": "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY="}},
            {"name": "no id"}
        ]);
        let (merged, problems) = merge(&file_config(), hub.as_array().unwrap(), None);
        let svc = &merged.services["5876bc219b9d2b54a0c464ca"];
        assert_eq!(svc.type_name(), "webhook");
        assert_eq!(svc.organization, "org1");
        assert_eq!(svc.start_date.unwrap().to_string(), "2030-01-01T00:00:00Z");
        assert_eq!(
            merged.services["nostatus"].status,
            crate::config::ServiceStatus::Queued
        );
        assert_eq!(merged.services["api"].type_name(), "api", "the config wins");
        assert!(!merged.services.contains_key("pigeon1"));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("\"api\"") && p.contains("config wins"))
        );
        assert!(problems.iter().any(|p| p.contains("carrier_pigeon")));
        assert!(problems.iter().any(|p| p.contains("without an id")));

        let (only, _) = merge(&file_config(), hub.as_array().unwrap(), Some("org1"));
        assert_eq!(
            only.services.len(),
            2,
            "the config's api and org1's webhook"
        );
    }

    #[test]
    fn a_hub_service_routed_to_a_missing_desk_is_skipped_by_its_key() {
        let hook = |id: &str, desk: &str| {
            serde_json::json!({"id": id, "type": "webhook", "desk": desk, "params": {
                "url": "http://127.0.0.1:9/x", "secret": "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY="}})
        };
        let hub = [hook("routed", "nowhere"), hook("to_api", "api")];
        let (merged, problems) = merge(&file_config(), &hub, None);
        assert!(!merged.services.contains_key("routed"));
        assert!(!merged.services.contains_key("to_api"));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("services.routed.desk: no service \"nowhere\"")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("cannot be a desk")),
            "{problems:?}"
        );
    }
}
