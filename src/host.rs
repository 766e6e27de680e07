//! [`ServiceHost`]: the [`switchboard_core::Host`] of one running service — the store's
//! operations scoped to that service, its metrics, and its connection-state cell.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::{
    ConnState, Conversation, DeskLink, DeskReply, HandedOff, HostError, InboundMessage, Ingested,
    Message, MessageStatus, Nonce, Posted, StatusChange, SystemMessage, Watermark,
};
use tokio::sync::watch;

use crate::app::{Ephemeral, service_info};
use crate::config::{ServiceConfig, ServiceStatus};
use crate::metrics::Metrics;
use crate::store::{NewOutbound, ServiceInfo, ServiceRef, Store};

/// The [`switchboard_core::Host`] of one service: storage operations scoped to it, and
/// its connection-state cell.
pub struct ServiceHost {
    store: Store,
    metrics: Arc<Metrics>,
    ephemeral: tokio::sync::broadcast::Sender<Ephemeral>,
    info: ServiceInfo,
    service_ref: ServiceRef,
    state: watch::Sender<(ConnState, i64)>,
}

impl ServiceHost {
    /// A host for `svc`.
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        ephemeral: tokio::sync::broadcast::Sender<Ephemeral>,
        svc: &ServiceConfig,
        status: ServiceStatus,
    ) -> Self {
        let info = service_info(svc, status.as_str());
        ServiceHost {
            store,
            metrics,
            ephemeral,
            service_ref: ServiceRef {
                id: svc.id.clone(),
                organization: svc.organization.clone(),
                opens_conversations: svc.status != ServiceStatus::PendingArchive,
            },
            info,
            state: watch::Sender::new((ConnState::Stopped, crate::store::rows::now_ms())),
        }
    }

    /// The current state and since when (unix ms).
    pub fn state(&self) -> (ConnState, i64) {
        self.state.borrow().clone()
    }

    /// Follows state changes.
    pub fn watch_state(&self) -> watch::Receiver<(ConnState, i64)> {
        self.state.subscribe()
    }

    /// The service's identity as stored.
    pub fn info(&self) -> &ServiceInfo {
        &self.info
    }

    /// Sets the local state to `stopped` without storing it: this instance lost the
    /// service's lease, and the instance that holds it now records its state.
    pub fn forget_state(&self) {
        let now = crate::store::rows::now_ms();
        self.state.send_modify(|s| *s = (ConnState::Stopped, now));
        self.metrics
            .set_state(&self.info.id, ConnState::Stopped.kind());
    }

    /// Sets the state; a change is stored and becomes a `service.state` event.
    pub fn report(&self, state: ConnState) {
        let now = crate::store::rows::now_ms();
        let changed = self.state.send_if_modified(|(cur, since)| {
            if *cur == state {
                return false;
            }
            if cur.kind() != state.kind() {
                *since = now;
            }
            *cur = state.clone();
            true
        });
        if !changed {
            return;
        }
        self.metrics.set_state(&self.info.id, state.kind());
        let since = self.state.borrow().1;
        self.store
            .record_service(self.info.clone(), state, since, true);
    }

    /// Ingests on behalf of an HTTP caller that already validated the messages.
    pub async fn ingest_checked(
        &self,
        messages: Vec<InboundMessage>,
    ) -> Result<Vec<Ingested>, HostError> {
        let started = std::time::Instant::now();
        let n = messages.len();
        let result = self.store.ingest(self.service_ref.clone(), messages).await;
        match &result {
            Ok(done) => {
                self.metrics.ingest_latency(
                    &self.info.id,
                    &self.info.kind,
                    started.elapsed().as_secs_f64(),
                );
                for i in done {
                    let outcome = if i.created { "stored" } else { "duplicate" };
                    self.metrics
                        .message(&self.info.id, &self.info.kind, "inbound", outcome);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = n, "inbound messages not stored");
                for _ in 0..n {
                    self.metrics
                        .message(&self.info.id, &self.info.kind, "inbound", "rejected");
                }
            }
        }
        Ok(result?)
    }
}

/// Checks what every inbound message needs, whichever connector produced it.
pub fn validate_inbound(m: &InboundMessage) -> Result<(), HostError> {
    if m.external_id.trim().is_empty() {
        return Err(HostError::Invalid("external_id must not be empty".into()));
    }
    if m.contact.external_id.trim().is_empty() {
        return Err(HostError::Invalid(
            "contact.external_id must not be empty".into(),
        ));
    }
    // A blank thread id is one thread shared by every contact who sends it: their
    // messages would land in the first sender's conversation.
    if m.conversation_external_id
        .as_deref()
        .is_some_and(|c| c.trim().is_empty())
    {
        return Err(HostError::Invalid(
            "conversation_external_id must not be blank (omit it to use the contact's open conversation)"
                .into(),
        ));
    }
    let has_text = m.text.as_deref().is_some_and(|t| !t.is_empty());
    if !has_text && m.attachments.is_empty() {
        return Err(HostError::Invalid(
            "a message needs text or attachments".into(),
        ));
    }
    for (i, a) in m.attachments.iter().enumerate() {
        if !a.has_http_url() {
            return Err(HostError::Invalid(format!(
                "attachments[{i}].url must be an http(s) URL"
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl switchboard_core::Host for ServiceHost {
    async fn ingest(&self, messages: Vec<InboundMessage>) -> Result<Vec<Ingested>, HostError> {
        for m in &messages {
            validate_inbound(m)?;
        }
        self.ingest_checked(messages).await
    }

    async fn ingest_once(
        &self,
        nonce: &Nonce,
        messages: Vec<InboundMessage>,
    ) -> Result<Option<Vec<Ingested>>, HostError> {
        for m in &messages {
            validate_inbound(m)?;
        }
        let (n, started) = (messages.len(), std::time::Instant::now());
        let expires_at = nonce.expires_at.as_millisecond();
        let result = self
            .store
            .ingest_once(self.service_ref.clone(), &nonce.value, expires_at, messages)
            .await;
        match &result {
            Ok(Some(done)) => {
                if n > 0 {
                    self.metrics.ingest_latency(
                        &self.info.id,
                        &self.info.kind,
                        started.elapsed().as_secs_f64(),
                    );
                }
                for i in done {
                    let outcome = if i.created { "stored" } else { "duplicate" };
                    self.metrics
                        .message(&self.info.id, &self.info.kind, "inbound", outcome);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, messages = n, "inbound messages not stored"),
        }
        Ok(result?)
    }

    async fn update_status(
        &self,
        external_id: &str,
        status: MessageStatus,
        error: Option<String>,
    ) -> Result<StatusChange, HostError> {
        Ok(self
            .store
            .update_status(&self.info.id, external_id, status, error)
            .await?)
    }

    async fn apply_watermark(&self, w: &Watermark) -> Result<usize, HostError> {
        Ok(self
            .store
            .apply_watermark(
                &self.info.id,
                &w.conversation_external_id,
                w.status,
                w.before.as_millisecond(),
            )
            .await?)
    }

    async fn conversation_of(&self, external_id: &str) -> Result<Option<Conversation>, HostError> {
        Ok(self
            .store
            .read
            .conversation_of_message(&self.info.id, external_id)
            .await?)
    }

    async fn send_system(&self, msg: SystemMessage) -> Result<Message, HostError> {
        let id = crate::store::rows::parse_id(&msg.conversation_id)
            .ok_or_else(|| HostError::NotFound("conversation".into()))?;
        let (message, _, _) = self
            .store
            .reply(
                Some(self.info.organization.clone()),
                id,
                NewOutbound {
                    text: Some(msg.text),
                    attachments: vec![],
                    author: msg.author,
                    idempotency_key: Some(msg.idempotency_key),
                    from_desk: None,
                },
            )
            .await?;
        Ok(message)
    }

    async fn post_reply(&self, reply: DeskReply) -> Result<Posted, HostError> {
        reply.check().map_err(HostError::Invalid)?;
        let id = crate::store::rows::parse_id(&reply.conversation_id)
            .ok_or_else(|| HostError::NotFound("conversation".into()))?;
        // Keys of different desks (and of API clients) never meet.
        let key = format!(
            "{}{}",
            crate::store::desk_key_prefix(&self.info.id),
            reply.idempotency_key
        );
        let (message, _, created) = self
            .store
            .reply(
                Some(self.info.organization.clone()),
                id,
                NewOutbound {
                    text: reply.text,
                    attachments: reply.attachments,
                    author: reply.author,
                    idempotency_key: Some(key),
                    from_desk: Some(self.info.id.clone()),
                },
            )
            .await?;
        Ok(Posted { message, created })
    }

    async fn link_put(&self, link: DeskLink) -> Result<(), HostError> {
        Ok(self.store.link_put(&self.info.id, link).await?)
    }

    async fn link_get(&self, conversation_id: &str) -> Result<Option<DeskLink>, HostError> {
        Ok(self.store.link_get(&self.info.id, conversation_id).await?)
    }

    async fn link_lookup(&self, desk_conversation_id: &str) -> Result<Option<DeskLink>, HostError> {
        Ok(self
            .store
            .link_lookup(&self.info.id, desk_conversation_id)
            .await?)
    }

    async fn close_conversation(
        &self,
        desk_conversation_id: &str,
    ) -> Result<Option<String>, HostError> {
        Ok(self
            .store
            .link_close(&self.info.id, desk_conversation_id)
            .await?)
    }

    async fn hand_off(
        &self,
        conversation_id: &str,
        reason: &str,
    ) -> Result<Option<HandedOff>, HostError> {
        let id = crate::store::rows::parse_id(conversation_id)
            .ok_or_else(|| HostError::NotFound("conversation".into()))?;
        let to = self
            .store
            .routes()
            .handoff_of(&self.info.id)
            .and_then(|h| h.to.clone());
        let req = crate::store::handoff::Request {
            conversation_id: id,
            organization: Some(self.info.organization.clone()),
            to,
            only_from: Some(self.info.id.clone()),
            reason: reason.to_owned(),
        };
        match self.store.hand_off(req).await {
            Ok(moved) => Ok(moved.map(|(_, h)| h)),
            // Already at the target (handed there by another trigger first).
            Err(crate::store::StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn kv_get(&self, key: &str) -> Result<Option<String>, HostError> {
        Ok(self.store.read.kv_get(&self.info.id, key).await?)
    }

    async fn kv_put(&self, key: &str, value: &str) -> Result<(), HostError> {
        Ok(self.store.kv_put(&self.info.id, key, value).await?)
    }

    fn set_state(&self, state: ConnState) {
        self.report(state)
    }

    fn set_gauge(&self, gauge: switchboard_core::Gauge, value: i64) {
        self.metrics.set_gauge(&self.info.id, gauge, value)
    }

    fn typing(&self, contact_external_id: &str, typing: bool) {
        if self.ephemeral.receiver_count() == 0 {
            return; // nobody is streaming
        }
        let (store, tx, info) = (
            self.store.clone(),
            self.ephemeral.clone(),
            self.info.clone(),
        );
        let contact = contact_external_id.to_owned();
        tokio::spawn(async move {
            let conversation = match store.read.open_conversation_of(&info.id, &contact).await {
                Ok(Some(id)) => id,
                Ok(None) => return, // typing before the first message: no conversation yet
                Err(e) => {
                    tracing::debug!(error = %e, "typing signal dropped");
                    return;
                }
            };
            let body = serde_json::json!({
                "type": "conversation.typing",
                "timestamp": jiff::Timestamp::now(),
                "data": {"service_id": info.id, "conversation_id": conversation.to_string(),
                         "contact_external_id": contact, "typing": typing},
            });
            let _ = tx.send(Ephemeral {
                organization: info.organization.clone(),
                body: body.to_string(),
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `api_inbound` fuzz target: `"conversation_external_id": ""` was
    /// accepted, and the store looks threads up by service and id, so every contact
    /// sending it shared the first one's conversation.
    #[test]
    fn a_blank_thread_id_is_refused() {
        let m: InboundMessage = serde_json::from_str(
            r#"{"external_id":"m1","contact":{"external_id":"c1"},"text":"hi","conversation_external_id":" "}"#,
        )
        .unwrap();
        let err = validate_inbound(&m).unwrap_err().to_string();
        assert!(
            err.contains("conversation_external_id must not be blank"),
            "{err}"
        );
        let m = InboundMessage {
            conversation_external_id: None,
            ..m
        };
        assert!(validate_inbound(&m).is_ok());
    }

    /// A service config for the tests, of no particular type.
    fn service(id: &str, organization: &str) -> ServiceConfig {
        #[derive(Debug)]
        struct Untyped;
        impl switchboard_core::AnyParams for Untyped {
            fn type_name(&self) -> &'static str {
                "untyped"
            }
            fn can_be_desk(&self) -> bool {
                true
            }
            fn build(&self) -> Result<Arc<dyn switchboard_core::Connector>, String> {
                Err("not built in these tests".into())
            }
            fn tokens(&self) -> Vec<switchboard_core::GrantedToken> {
                Vec::new()
            }
            fn subscription(&self) -> Option<switchboard_core::EventSubscription> {
                None
            }
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }
        }
        ServiceConfig {
            id: id.into(),
            name: None,
            status: ServiceStatus::Active,
            organization: organization.into(),
            desk: None,
            handoff: Default::default(),
            start_date: None,
            end_date: None,
            params: Arc::new(Untyped),
            fingerprint: String::new(),
        }
    }

    async fn hosts(dir: &std::path::Path) -> (Store, ServiceHost, ServiceHost, ServiceHost) {
        let metrics = Arc::new(Metrics::new());
        let store = Store::open(
            &dir.join("db.sqlite"),
            crate::config::Synchronous::Normal,
            metrics.clone(),
        )
        .await
        .unwrap();
        let (tx, _) = tokio::sync::broadcast::channel(4);
        let host = |id: &str, org: &str| {
            ServiceHost::new(
                store.clone(),
                metrics.clone(),
                tx.clone(),
                &service(id, org),
                ServiceStatus::Active,
            )
        };
        let (chan, desk, other) = (
            host("chan", "default"),
            host("desk", "default"),
            host("elsewhere", "other"),
        );
        (store, chan, desk, other)
    }

    fn inbound(id: &str) -> InboundMessage {
        serde_json::from_value(serde_json::json!(
            {"external_id": id, "contact": {"external_id": "c1"}, "text": "hello"}
        ))
        .unwrap()
    }

    fn reply(conversation: &str, key: &str) -> DeskReply {
        DeskReply {
            conversation_id: conversation.into(),
            text: Some("Hi, Anna here".into()),
            attachments: vec![],
            author: switchboard_core::Author {
                kind: switchboard_core::AuthorType::Agent,
                name: Some("Anna".into()),
            },
            idempotency_key: key.into(),
        }
    }

    #[tokio::test]
    async fn a_nonce_passes_once_even_concurrently_and_is_pruned_after_expiry() {
        use switchboard_core::Host;
        let dir = tempfile::tempdir().unwrap();
        let (store, chan, desk, _) = hosts(dir.path()).await;
        let soon = Nonce {
            value: "tok-1".into(),
            expires_at: jiff::Timestamp::now() + jiff::SignedDuration::from_secs(300),
        };
        let (a, b) = tokio::join!(
            chan.ingest_once(&soon, vec![inbound("m1")]),
            chan.ingest_once(&soon, vec![inbound("m2")]),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(
            a.is_some() != b.is_some(),
            "exactly one passes: {a:?} {b:?}"
        );
        let conv: i64 = a.or(b).unwrap()[0].conversation.id.parse().unwrap();
        assert_eq!(
            store.read.messages(conv, 0, 10).await.unwrap().len(),
            1,
            "the refused one stored nothing"
        );
        // Nonces are per service.
        assert!(desk.ingest_once(&soon, vec![]).await.unwrap().is_some());
        // Refused before the transaction: the nonce stays free for a good retry.
        let mut bad = inbound("m3");
        bad.text = None;
        let fresh = Nonce {
            value: "tok-2".into(),
            ..soon.clone()
        };
        assert!(chan.ingest_once(&fresh, vec![bad]).await.is_err());
        assert!(
            chan.ingest_once(&fresh, vec![inbound("m3")])
                .await
                .unwrap()
                .is_some()
        );
        // An expired nonce is pruned by the next insert, and may then be used again.
        let stale = Nonce {
            value: "tok-3".into(),
            expires_at: jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1),
        };
        assert!(chan.ingest_once(&stale, vec![]).await.unwrap().is_some());
        assert!(chan.ingest_once(&fresh, vec![]).await.unwrap().is_none());
        assert!(chan.ingest_once(&stale, vec![]).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_desk_reply_is_stored_once_per_key_on_the_channels_conversation() {
        use switchboard_core::Host;
        let dir = tempfile::tempdir().unwrap();
        let (store, chan, desk, other) = hosts(dir.path()).await;
        let conv = chan.ingest(vec![inbound("m1")]).await.unwrap()[0]
            .conversation
            .id
            .clone();

        let first = desk.post_reply(reply(&conv, "d-1")).await.unwrap();
        assert!(first.created);
        assert_eq!(
            first.message.service_id, "chan",
            "it goes out on the channel"
        );
        assert_eq!(first.message.author.name.as_deref(), Some("Anna"));
        let again = desk.post_reply(reply(&conv, "d-1")).await.unwrap();
        assert!(!again.created, "a retried desk webhook stores nothing new");
        assert_eq!(again.message.id, first.message.id);
        let id: i64 = first.message.id.parse().unwrap();
        let (queued, _) = store.read.outbound(id).await.unwrap().unwrap();
        assert_eq!(queued.status, switchboard_core::MessageStatus::Pending);

        // Another desk's message with the same id is another message.
        let chan_as_desk = chan.post_reply(reply(&conv, "d-1")).await.unwrap();
        assert!(chan_as_desk.created);
        // Refused before anything is stored: another organization, a bad reply.
        assert!(matches!(
            other.post_reply(reply(&conv, "d-2")).await,
            Err(HostError::NotFound(_))
        ));
        let mut bad = reply(&conv, "d-3");
        bad.author.kind = switchboard_core::AuthorType::Contact;
        assert!(matches!(
            desk.post_reply(bad).await,
            Err(HostError::Invalid(m)) if m == "author.type: expected agent or bot"
        ));
        let conv_id: i64 = conv.parse().unwrap();
        assert_eq!(store.read.messages(conv_id, 0, 100).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn desk_links_are_per_desk_and_the_latest_answers() {
        use switchboard_core::Host;
        let dir = tempfile::tempdir().unwrap();
        let (_store, chan, desk, _) = hosts(dir.path()).await;
        let conv = chan.ingest(vec![inbound("m1")]).await.unwrap()[0]
            .conversation
            .id
            .clone();
        let link = |theirs: &str| DeskLink {
            conversation_id: conv.clone(),
            desk_conversation_id: theirs.into(),
            desk_contact_id: Some("contact-9".into()),
        };
        assert_eq!(desk.link_get(&conv).await.unwrap(), None);
        desk.link_put(link("t-1")).await.unwrap();
        desk.link_put(link("t-1")).await.unwrap();
        assert_eq!(desk.link_get(&conv).await.unwrap(), Some(link("t-1")));
        assert_eq!(desk.link_lookup("t-1").await.unwrap(), Some(link("t-1")));
        assert_eq!(chan.link_lookup("t-1").await.unwrap(), None, "per desk");

        // Resolved at the desk, reopened there: the new link answers ours.
        desk.link_put(link("t-2")).await.unwrap();
        assert_eq!(desk.link_get(&conv).await.unwrap(), Some(link("t-2")));
        assert_eq!(desk.link_lookup("t-1").await.unwrap(), Some(link("t-1")));

        let second = chan
            .ingest(vec![InboundMessage {
                contact: switchboard_core::ContactInfo {
                    external_id: "c2".into(),
                    ..Default::default()
                },
                ..inbound("m2")
            }])
            .await
            .unwrap()[0]
            .conversation
            .id
            .clone();
        let stolen = DeskLink {
            conversation_id: second,
            ..link("t-2")
        };
        assert!(matches!(
            desk.link_put(stolen).await,
            Err(HostError::Conflict(_))
        ));
        let missing = DeskLink {
            conversation_id: "999".into(),
            ..link("t-3")
        };
        assert!(matches!(
            desk.link_put(missing).await,
            Err(HostError::NotFound(_))
        ));
    }

    mod handoff;
    mod routing;
}
