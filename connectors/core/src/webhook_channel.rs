//! The webhook-channel helper: the part of a provider webhook that is the same for every
//! channel, written once (the way Vector's HTTP sources supply only "request → events").
//!
//! [`serve`] checks the sub-path and the method, authenticates the head (credentials in
//! headers or the path, before the body is read) and then the body (a signature over
//! it), parses, stores everything the request carries in one ingest (one request is one
//! transaction), applies receipts, and answers only after the commit. A channel supplies
//! [`WebhookChannel::verify_head`] and/or [`WebhookChannel::verify`], a pure
//! [`WebhookChannel::parse`], and its answer. Every type implementing it gets
//! [`Hooks`](crate::Hooks) from the impl below.

use async_trait::async_trait;
use http::Method;

use crate::connector::Hooks;
use crate::context::ServiceContext;
use crate::error::HookError;
use crate::hook::{HookAdmission, HookHead, HookRequest, HookResponse};
use crate::host::{InboundMessage, Ingested, StatusChange, Watermark};
use crate::model::MessageStatus;

/// What one authenticated request asks to store.
#[derive(Debug, Default, PartialEq)]
pub struct Intake {
    /// Contacts' messages, in body order: ingested together, in one transaction.
    pub messages: Vec<InboundMessage>,
    /// The provider's receipts for our messages, applied after the messages.
    pub receipts: Vec<Receipt>,
    /// Receipts for every earlier message of a conversation, applied after `receipts`.
    pub watermarks: Vec<Watermark>,
    /// Typing signals (contact external id, typing), streamed, not stored.
    pub typing: Vec<(String, bool)>,
    /// An answer that replaces the channel's usual one: a setup handshake, an event the
    /// channel acknowledges without storing it.
    pub answer: Option<HookResponse>,
}

impl Intake {
    /// Nothing to store; answer `answer`.
    pub fn answered(answer: HookResponse) -> Self {
        Intake {
            answer: Some(answer),
            ..Intake::default()
        }
    }
}

/// A provider's receipt for an outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's id for our message, as its delivery recorded it.
    pub external_id: String,
    /// The status it reports.
    pub status: MessageStatus,
    /// Why delivery failed, for `failed`.
    pub error: Option<String>,
}

/// What the commit did, for the answer and for work that follows it.
#[derive(Debug, Default)]
pub struct Stored {
    /// One per message of the intake, in order (a duplicate with `created: false`).
    pub ingested: Vec<Ingested>,
    /// Each receipt with what applying it changed.
    pub receipts: Vec<(Receipt, StatusChange)>,
    /// How many messages the watermarks moved.
    pub watermarked: usize,
}

impl Stored {
    /// How many messages were new.
    pub fn created(&self) -> usize {
        self.ingested.iter().filter(|i| i.created).count()
    }

    /// How many messages were already stored.
    pub fn duplicates(&self) -> usize {
        self.ingested.len() - self.created()
    }
}

/// A channel whose provider posts webhooks. Implement this and [`Hooks`] follows.
#[async_trait]
pub trait WebhookChannel: Send + Sync {
    /// Whether it serves this sub-path below `/hooks/{service_id}` (`""` is the hook
    /// itself; the default serves only that). Anything else is 404. A hook authenticated
    /// by a token in its path serves any one segment and checks it in
    /// [`verify_head`](Self::verify_head).
    fn serves(&self, subpath: &str) -> bool {
        subpath.is_empty()
    }

    /// Checks credentials that ride in the head (a shared secret in a header, a token in
    /// the path, the presence and shape of a signature header), after the sub-path and
    /// method. Runs before the body is read, and says how much of it may be read (see
    /// [`Hooks::authorize_hook`]); the default admits every head.
    fn verify_head(
        &self,
        ctx: &ServiceContext,
        head: &HookHead,
    ) -> Result<HookAdmission, HookError> {
        let _ = (ctx, head);
        Ok(HookAdmission::Signed)
    }

    /// Checks what authenticates the body (a signature over it). Runs before
    /// [`parse`](Self::parse): a request that fails here stores nothing and is never
    /// parsed.
    fn verify(&self, ctx: &ServiceContext, req: &HookRequest) -> Result<(), HookError>;

    /// Turns an authenticated request into what it asks to store: pure, no I/O. Errors
    /// are 400 (not the format at all) or 422 (the format, not the content), naming
    /// where.
    fn parse(&self, ctx: &ServiceContext, req: &HookRequest) -> Result<Intake, HookError>;

    /// Work after the commit, before the answer (an automatic greeting, remembering an
    /// id). The provider's data is stored by now: a failure here should be logged, not
    /// returned, unless a retry by the provider is the remedy.
    async fn after_commit(
        &self,
        ctx: &ServiceContext,
        req: &HookRequest,
        stored: &Stored,
    ) -> Result<(), HookError> {
        let _ = (ctx, req, stored);
        Ok(())
    }

    /// The answer once everything is committed. Default 200 `{"status":"ok"}`.
    fn answer(&self, stored: &Stored) -> HookResponse {
        let _ = stored;
        HookResponse::ok()
    }
}

/// Answers one request for `channel`, in the order the module describes.
pub async fn serve<W: WebhookChannel + ?Sized>(
    channel: &W,
    ctx: &ServiceContext,
    req: HookRequest,
) -> Result<HookResponse, HookError> {
    // The HTTP layer ran this before reading the body; again here so that the helper is
    // whole wherever it is called from (it compares a path and headers).
    if let HookAdmission::BodyAuthenticated { max_body } = check_head(channel, ctx, &req.head)? {
        if req.body.len() > max_body {
            return Err(HookError::Unauthorized(format!(
                "an unsigned request must be at most {max_body} bytes"
            )));
        }
    }
    channel.verify(ctx, &req)?;
    let intake = channel.parse(ctx, &req)?;

    let mut stored = Stored::default();
    if !intake.messages.is_empty() {
        stored.ingested = ctx.ingest(intake.messages).await?;
    }
    // Forward only, and kept for later when the send is not recorded yet: the host sorts
    // out late, repeated and early receipts.
    for r in intake.receipts {
        let change = ctx
            .update_status(&r.external_id, r.status, r.error.clone())
            .await?;
        tracing::debug!(external_id = %r.external_id, status = r.status.as_str(), ?change, "receipt applied");
        stored.receipts.push((r, change));
    }
    for w in &intake.watermarks {
        stored.watermarked += ctx.apply_watermark(w).await?;
    }
    for (contact, typing) in &intake.typing {
        ctx.typing(contact, *typing);
    }
    channel.after_commit(ctx, &req, &stored).await?;
    tracing::debug!(
        created = stored.created(),
        duplicates = stored.duplicates(),
        receipts = stored.receipts.len(),
        watermarked = stored.watermarked,
        "webhook handled"
    );
    Ok(intake.answer.unwrap_or_else(|| channel.answer(&stored)))
}

/// Sub-path (404), method (405), then the channel's head credentials (401).
fn check_head<W: WebhookChannel + ?Sized>(
    channel: &W,
    ctx: &ServiceContext,
    head: &HookHead,
) -> Result<HookAdmission, HookError> {
    if !channel.serves(&head.subpath) {
        return Err(HookError::NotFound);
    }
    if head.method != Method::POST {
        return Err(HookError::MethodNotAllowed);
    }
    channel.verify_head(ctx, head)
}

#[async_trait]
impl<W: WebhookChannel> Hooks for W {
    fn authorize_hook(
        &self,
        ctx: &ServiceContext,
        head: &HookHead,
    ) -> Result<HookAdmission, HookError> {
        check_head(self, ctx, head)
    }

    async fn handle_webhook(
        &self,
        ctx: &ServiceContext,
        req: HookRequest,
    ) -> Result<HookResponse, HookError> {
        serve(self, ctx, req).await
    }
}
