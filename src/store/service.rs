//! Writes about services themselves: their recorded state (with `service.state` events)
//! and their sync state (cursors, tokens).

use serde_json::json;
use switchboard_core::ConnState;

use super::error::StoreError;
use super::writer::WriteCx;
use switchboard_core::EventData;

/// The service a write happens on.
#[derive(Debug, Clone)]
pub struct ServiceRef {
    /// Its id.
    pub id: String,
    /// Its organization.
    pub organization: String,
    /// False while the service is `pendingArchive`: existing conversations continue,
    /// no new one is opened.
    pub opens_conversations: bool,
}

/// A service's identity as stored with its state.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// Id.
    pub id: String,
    /// Type name.
    pub kind: String,
    /// Display name.
    pub name: Option<String>,
    /// Lifecycle status.
    pub status: String,
    /// Organization.
    pub organization: String,
}

/// Records a service's state and, when `event` is set, a `service.state` event.
pub fn record_service(
    cx: &mut WriteCx<'_>,
    info: &ServiceInfo,
    state: &ConnState,
    since: i64,
    event: bool,
) -> Result<(), StoreError> {
    let last_error = match state {
        ConnState::Failed { reason } => Some(reason.clone()),
        _ => None,
    };
    cx.db.execute("INSERT INTO services (id, type, name, status, organization, state, state_since, last_error, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (id) DO UPDATE SET type = ?2, name = ?3, status = ?4, organization = ?5, state = ?6, \
             state_since = ?7, last_error = coalesce(?8, services.last_error), updated_at = ?9", &[&info.id, &info.kind, &info.name, &info.status, &info.organization, &(serde_json::to_string(state)?), &since, &last_error, &cx.now])?;
    if event {
        let service = service_json(info, state, since);
        cx.append_event(
            &info.organization,
            Some(&info.id),
            None,
            &EventData::service_state(&service),
        )?;
    }
    Ok(())
}

/// The service object of the API and `service.state` events.
pub fn service_json(info: &ServiceInfo, state: &ConnState, since: i64) -> serde_json::Value {
    let mut state_json = serde_json::to_value(state).unwrap_or_default();
    state_json["since"] = json!(super::rows::ts(since));
    json!({
        "id": info.id,
        "type": info.kind,
        "name": info.name,
        "status": info.status,
        "organization": info.organization,
        "state": state_json,
    })
}

/// Writes a sync-state value.
pub fn kv_put(
    cx: &mut WriteCx<'_>,
    service_id: &str,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    cx.db.execute("INSERT INTO sync_state (service_id, key, value, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (service_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at", &[&service_id, &key, &value, &cx.now])?;
    Ok(())
}
