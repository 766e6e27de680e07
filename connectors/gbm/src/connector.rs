//! The running `gbm` service: verifies and stores what Google posts, greets new
//! conversations and answers out of hours, and sends replies with a cached access token.

use std::time::Duration;

use async_trait::async_trait;
use http::StatusCode;
use jiff::tz::TimeZone;
use switchboard_core::backoff::retry_after;
use switchboard_core::{
    Author, AuthorType, Connector, ConnectorError, CredentialWatch, Delivered, DeliveryError,
    HookAdmission, HookError, HookHead, HookRequest, HookResponse, InboundMessage, OutboundMessage,
    ServiceContext, SignatureShape, SystemMessage,
};

use crate::auth::{ServiceAccount, TokenError, TokenSource};
use crate::client::{self, Part};
use crate::config::GbmParams;
use crate::hours::Window;
use crate::webhook::{self, Handshake, Parsed};

/// One Create Message request may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `gbm` service.
#[derive(Debug)]
pub struct GbmConnector {
    params: GbmParams,
    window: Window,
    tz: TimeZone,
    tokens: TokenSource,
    /// Tells `run` when Google refused our credentials during a send, so the service
    /// shows `failed` while replies wait.
    credentials: CredentialWatch,
}

impl GbmConnector {
    /// Builds from validated params (the service-account key is parsed again here).
    pub fn new(params: GbmParams) -> Result<Self, String> {
        let account = ServiceAccount::parse(&params.service_account)?;
        let token_url = params.token_url(&account);
        client::messages_url(&params.api_base, "x")?;
        Ok(GbmConnector {
            window: params.window(),
            tz: params.time_zone()?,
            tokens: TokenSource::new(account, token_url),
            params,
            credentials: CredentialWatch::default(),
        })
    }

    fn handshake(&self, h: Handshake) -> Result<HookResponse, HookError> {
        if !self.params.client_token.matches(h.client_token.as_bytes()) {
            tracing::warn!("webhook verification refused: its clientToken is not client_token");
            return Err(HookError::Unauthorized("clientToken does not match".into()));
        }
        tracing::info!("answered Google's webhook verification");
        Ok(HookResponse::text(StatusCode::OK, h.secret))
    }

    async fn inbound(
        &self,
        ctx: &ServiceContext,
        msg: InboundMessage,
    ) -> Result<HookResponse, HookError> {
        let id = msg.external_id.clone();
        let stored = ctx.ingest(vec![msg]).await?;
        let Some(i) = stored.into_iter().next() else {
            return Ok(HookResponse::ok());
        };
        tracing::debug!(external_id = %id, created = i.created, "inbound message stored");
        // A duplicate was answered when it first arrived.
        if !i.created {
            return Ok(HookResponse::ok());
        }
        let conversation = i.conversation.id;
        if i.conversation_created {
            let text = self.params.welcome_message.clone();
            self.system(ctx, &conversation, text, "welcome").await;
        }
        let local = ctx.clock.now().to_zoned(self.tz.clone()).datetime();
        if !self.window.is_open(local) {
            let text = self.params.offline_message.clone();
            self.system(ctx, &conversation, text, "offline").await;
        }
        Ok(HookResponse::ok())
    }

    /// Queues a message from switchboard itself, once per conversation and `key`. The
    /// contact's message is already committed: failing the request would only make
    /// Google send a duplicate, so a failure here is logged instead.
    async fn system(&self, ctx: &ServiceContext, conversation: &str, text: String, key: &str) {
        let queued = ctx
            .send_system(SystemMessage {
                conversation_id: conversation.to_owned(),
                text,
                author: Author {
                    kind: AuthorType::System,
                    name: None,
                },
                idempotency_key: key.to_owned(),
            })
            .await;
        if let Err(e) = queued {
            tracing::warn!(conversation_id = %conversation, which = key, error = %e,
                "could not queue an automatic message");
        }
    }

    /// Creates one message, with one fresh token and a second try when Google refuses
    /// the cached one.
    async fn post(
        &self,
        ctx: &ServiceContext,
        url: &url::Url,
        part: &Part,
    ) -> Result<(), DeliveryError> {
        let mut retried = false;
        loop {
            let token = self
                .tokens
                .get(&ctx.http)
                .await
                .map_err(|e| self.token_error(e))?;
            let resp = ctx
                .http
                .post(url.clone())
                .bearer_auth(token.expose())
                .timeout(REQUEST_TIMEOUT)
                .json(&part.body)
                .send()
                .await
                .map_err(|e| DeliveryError::from_reqwest(&e))?;
            let status = resp.status();
            let hint = retry_after(resp.headers());
            let body = resp
                .bytes()
                .await
                .map_err(|e| DeliveryError::from_reqwest(&e))?;
            if status.is_success() {
                return Ok(());
            }
            if status == StatusCode::UNAUTHORIZED {
                if !retried {
                    // Revoked or expired early: one new token, one more try.
                    tracing::debug!("the access token was refused; fetching a new one");
                    self.tokens.invalidate(&token).await;
                    retried = true;
                    continue;
                }
                self.credentials.rejected();
                return Err(DeliveryError::Transient {
                    reason: format!(
                        "a fresh access token was refused: {}",
                        client::reason(status, &body)
                    ),
                    retry_after: hint,
                });
            }
            if client::already_exists(status, &body) {
                tracing::info!(message_id = %part.message_id,
                    "Business Messages already has this messageId from an earlier attempt; not sending it again");
                return Ok(());
            }
            return Err(client::classify(status, hint, &body));
        }
    }

    /// Credentials refused by the token endpoint keep the message queued (it goes out
    /// once they are fixed) and show the service as failed.
    fn token_error(&self, e: TokenError) -> DeliveryError {
        if let TokenError::Rejected(_) = &e {
            self.credentials.rejected();
        }
        DeliveryError::transient(e.to_string())
    }
}

/// The sync-state key of a multi-part send in progress. One per conversation is
/// enough: its messages go out one at a time, so only the latest can be part-way.
fn progress_key(conversation_id: &str) -> String {
    format!("outbound_progress:{conversation_id}")
}

#[async_trait]
impl Connector for GbmConnector {
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        // Fetching a token proves the key and warms the cache for the first reply.
        let checked = tokio::select! {
            t = self.tokens.get(&ctx.http) => t,
            _ = ctx.shutdown.cancelled() => return Ok(()),
        };
        match checked {
            Ok(_) => {}
            Err(TokenError::Rejected(m)) => return Err(ConnectorError::Auth(m)),
            Err(TokenError::Transient(m)) => return Err(ConnectorError::Transient(m)),
        }
        self.credentials
            .connected_until_rejected(
                ctx,
                "Google refused the service-account credentials when sending a message",
            )
            .await
    }

    /// `POST` to the root with an `X-Goog-Signature` shaped like base64 of an
    /// HMAC-SHA512; without one, only a body the size of Google's webhook-setup request
    /// is read (it authenticates with the client token inside).
    fn authorize_hook(&self, head: &HookHead<'_>) -> Result<HookAdmission, HookError> {
        head.require_post_to_root()?;
        if head.headers.contains_key(webhook::SIGNATURE_HEADER) {
            head.require_signature(
                webhook::SIGNATURE_HEADER,
                "X-Goog-Signature",
                SignatureShape::Base64 { bytes: 64 },
            )?;
            return Ok(HookAdmission::Signed);
        }
        Ok(HookAdmission::BodyAuthenticated {
            max_body: webhook::HANDSHAKE_MAX_BODY,
        })
    }

    async fn handle_webhook(
        &self,
        ctx: &ServiceContext,
        req: HookRequest,
    ) -> Result<HookResponse, HookError> {
        self.authorize_hook(&req.head())?;
        match req.header(webhook::SIGNATURE_HEADER) {
            Some(sig) => {
                if !webhook::signature_matches(&self.params.client_token, &req.body, sig) {
                    tracing::warn!(
                        "webhook rejected: X-Goog-Signature does not match client_token"
                    );
                    return Err(HookError::Unauthorized(
                        "X-Goog-Signature does not match".into(),
                    ));
                }
            }
            None => {
                // Google's webhook-setup request is authenticated by the client token
                // in its body; nothing else is taken unsigned.
                return match webhook::handshake(&req.body) {
                    Some(h) => self.handshake(h),
                    None => Err(HookError::Unauthorized(
                        "X-Goog-Signature is missing".into(),
                    )),
                };
            }
        }
        if let Some(h) = webhook::handshake(&req.body) {
            return self.handshake(h);
        }
        match webhook::parse(&req.body)? {
            Parsed::Message(m) => self.inbound(ctx, m).await,
            Parsed::Typing { contact, typing } => {
                ctx.typing(&contact, typing);
                Ok(HookResponse::ok())
            }
            Parsed::Receipts(receipts) => {
                for r in &receipts {
                    let change = ctx.update_status(&r.message_id, r.status, None).await?;
                    tracing::debug!(external_id = %r.message_id, status = r.status.as_str(),
                        ?change, "receipt applied");
                }
                Ok(HookResponse::ok())
            }
            Parsed::Ignored(what) => {
                tracing::debug!(what, "webhook acknowledged, nothing to store");
                Ok(HookResponse::ok())
            }
        }
    }

    async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let Some(conversation) = out.conversation.external_id.as_deref() else {
            return Err(DeliveryError::permanent(
                "the conversation has no Business Messages conversation id to answer in",
            ));
        };
        let parts = client::parts(&out.message, &out.idempotency_key);
        let Some(first) = parts.first() else {
            return Err(DeliveryError::permanent(
                "nothing to send: the message has neither text nor attachments",
            ));
        };
        let url = client::messages_url(&self.params.api_base, conversation)
            .map_err(DeliveryError::permanent)?;

        // With several parts, a retry after a partial failure sends only the rest.
        let multi = parts.len() > 1;
        let key = progress_key(&out.conversation.id);
        let mut done = 0;
        if multi
            && let Some(saved) = ctx.kv_get(&key).await?
            && let Some((message, n)) = saved.rsplit_once(' ')
            && message == out.idempotency_key
        {
            done = n.parse().unwrap_or(0);
        }
        for part in parts.iter().skip(done) {
            self.post(ctx, &url, part).await?;
            done += 1;
            if multi && done < parts.len() {
                ctx.kv_put(&key, &format!("{} {done}", out.idempotency_key))
                    .await?;
            }
        }
        tracing::debug!(message_id = %out.message.id, gbm_message_id = %first.message_id,
            parts = parts.len(), "Business Messages accepted the message");
        // Receipts are matched on the first part.
        Ok(Delivered::sent(Some(first.message_id.clone())))
    }
}
