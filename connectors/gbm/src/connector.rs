//! The running `gbm` service: what Google posts, through the webhook-channel helper
//! (greeting new conversations and answering out of hours after the commit), and
//! replies with a cached access token.

use async_trait::async_trait;
use http::StatusCode;
use jiff::tz::TimeZone;
use switchboard_core::progress::send_parts;
use switchboard_core::{
    Author, AuthorType, Channel, Connector, ConnectorError, CredentialWatch, Delivered,
    DeliveryError, HookAdmission, HookError, HookHead, HookRequest, HookResponse, Hooks, Intake,
    OutboundMessage, ServiceContext, SignatureShape, Stored, SystemMessage, WebhookChannel,
};

use crate::auth::{ServiceAccount, TokenError, TokenSource};
use crate::client::{self, Client};
use crate::config::GbmParams;
use crate::hours::Window;
use crate::webhook::{self, Handshake, Parsed};

/// A running `gbm` service.
#[derive(Debug)]
pub struct GbmConnector {
    params: GbmParams,
    window: Window,
    tz: TimeZone,
    client: Client,
    /// Tells `run` when Google refused our credentials during a send, so the service
    /// shows `failed` while replies wait.
    credentials: CredentialWatch,
}

impl GbmConnector {
    /// Builds from validated params (the service-account key is parsed again here).
    pub fn new(params: GbmParams) -> Result<Self, String> {
        let account = ServiceAccount::parse(&params.service_account)?;
        let token_url = params.token_url(&account);
        Ok(GbmConnector {
            window: params.window(),
            tz: params.time_zone()?,
            client: Client::new(&params.api_base, TokenSource::new(account, token_url))?,
            params,
            credentials: CredentialWatch::default(),
        })
    }

    /// Google's webhook-setup request, authenticated by the client token it carries.
    fn handshake_matches(&self, h: &Handshake) -> Result<(), HookError> {
        if !self.params.client_token.matches(h.client_token.as_bytes()) {
            tracing::warn!("webhook verification refused: its clientToken is not client_token");
            return Err(HookError::Unauthorized("clientToken does not match".into()));
        }
        Ok(())
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
}

#[async_trait]
impl Connector for GbmConnector {
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        // Fetching a token proves the key and warms the cache for the first reply.
        let checked = tokio::select! {
            t = self.client.check(&ctx.http) => t,
            _ = ctx.shutdown.cancelled() => return Ok(()),
        };
        match checked {
            Ok(()) => {}
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

    fn hooks(&self) -> Option<&dyn Hooks> {
        Some(self)
    }

    fn channel(&self) -> Option<&dyn Channel> {
        Some(self)
    }
}

#[async_trait]
impl WebhookChannel for GbmConnector {
    /// An `X-Goog-Signature` shaped like base64 of an HMAC-SHA512; without one, only a
    /// body the size of Google's webhook-setup request is read (it authenticates with the
    /// client token inside).
    fn verify_head(&self, _: &ServiceContext, head: &HookHead) -> Result<HookAdmission, HookError> {
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

    /// `X-Goog-Signature` over the body; without it, only Google's webhook-setup request
    /// is taken, authenticated by the client token in its body.
    fn verify(&self, _: &ServiceContext, req: &HookRequest) -> Result<(), HookError> {
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
                match webhook::handshake(&req.body) {
                    Some(h) => self.handshake_matches(&h),
                    None => Ok(()),
                }
            }
            None => match webhook::handshake(&req.body) {
                Some(h) => self.handshake_matches(&h),
                None => Err(HookError::Unauthorized(
                    "X-Goog-Signature is missing".into(),
                )),
            },
        }
    }

    fn parse(&self, _: &ServiceContext, req: &HookRequest) -> Result<Intake, HookError> {
        if let Some(h) = webhook::handshake(&req.body) {
            tracing::info!("answered Google's webhook verification");
            return Ok(Intake::answered(HookResponse::text(
                StatusCode::OK,
                h.secret,
            )));
        }
        Ok(match webhook::parse(&req.body)? {
            Parsed::Message(m) => Intake {
                messages: vec![m],
                ..Intake::default()
            },
            Parsed::Typing { contact, typing } => Intake {
                typing: vec![(contact, typing)],
                ..Intake::default()
            },
            Parsed::Receipts(receipts) => Intake {
                receipts,
                ..Intake::default()
            },
            Parsed::Ignored(what) => {
                tracing::debug!(what, "webhook acknowledged, nothing to store");
                Intake::default()
            }
        })
    }

    /// Greets a new conversation with `welcomeMessage` and answers a message outside
    /// the opening hours with `offlineMessage`; a duplicate was answered when it first
    /// arrived.
    async fn after_commit(
        &self,
        ctx: &ServiceContext,
        _: &HookRequest,
        stored: &Stored,
    ) -> Result<(), HookError> {
        for i in stored.ingested.iter().filter(|i| i.created) {
            let conversation = &i.conversation.id;
            if i.conversation_created {
                let text = self.params.welcome_message.clone();
                self.system(ctx, conversation, text, "welcome").await;
            }
            let local = ctx.clock.now().to_zoned(self.tz.clone()).datetime();
            if !self.window.is_open(local) {
                let text = self.params.offline_message.clone();
                self.system(ctx, conversation, text, "offline").await;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Channel for GbmConnector {
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
        let parts_ref = &parts;
        send_parts(ctx, out, parts.len(), |i| async move {
            self.client
                .post(&ctx.http, &self.credentials, conversation, &parts_ref[i])
                .await
                .map(|()| None)
        })
        .await?;
        tracing::debug!(message_id = %out.message.id, gbm_message_id = %first.message_id,
            parts = parts.len(), "Business Messages accepted the message");
        // Receipts are matched on the first part.
        Ok(Delivered::sent(Some(first.message_id.clone())))
    }
}
