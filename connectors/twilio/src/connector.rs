//! The running `twilio` service: checks the credentials, takes what Twilio posts through
//! the webhook-channel helper (messages, and status callbacks for ours), and sends
//! replies.

use async_trait::async_trait;
use switchboard_core::{
    Channel, Connector, ConnectorError, CredentialWatch, Delivered, DeliveryError, HookAdmission,
    HookError, HookHead, HookRequest, HookResponse, Hooks, Intake, OutboundMessage, Receipt,
    ServiceContext, SignatureShape, StatusChange, Stored, WebhookChannel,
};

use crate::client::Client;
use crate::config::TwilioParams;
use crate::signature;
use crate::webhook::{self, Form};

/// The query parameter of our `StatusCallback` URL that names the outbound message.
pub const KEY_PARAM: &str = "idempotency_key";

/// The sync-state key under which a status callback left the sid of a send whose answer
/// we never recorded.
fn sid_key(idempotency_key: &str) -> String {
    format!("sid_for:{idempotency_key}")
}

/// A running `twilio` service.
#[derive(Debug)]
pub struct TwilioConnector {
    params: TwilioParams,
    client: Client,
    /// Tells `run` when a send found the credentials rejected, so the service shows
    /// `failed` instead of `connected` while replies wait.
    credentials: CredentialWatch,
}

impl TwilioConnector {
    /// Builds from validated params.
    pub fn new(params: TwilioParams) -> Result<Self, String> {
        Ok(TwilioConnector {
            client: Client::new(&params),
            params,
            credentials: CredentialWatch::default(),
        })
    }
}

#[async_trait]
impl Connector for TwilioConnector {
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        tokio::select! {
            checked = self.client.check_account(&ctx.http) => checked?,
            _ = ctx.shutdown.cancelled() => return Ok(()),
        }
        self.credentials
            .connected_until_rejected(
                ctx,
                "Twilio rejected account_sid/auth_token when sending a message",
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
impl WebhookChannel for TwilioConnector {
    /// The hook itself and `status`, where our status callbacks point.
    fn serves(&self, subpath: &str) -> bool {
        matches!(subpath, "" | "status")
    }

    /// An `X-Twilio-Signature` shaped like one (base64 of an HMAC-SHA1); whether it signs
    /// the request is checked once the body is read.
    fn verify_head(&self, _: &ServiceContext, head: &HookHead) -> Result<HookAdmission, HookError> {
        head.require_signature(
            signature::HEADER,
            "X-Twilio-Signature",
            SignatureShape::Base64 { bytes: 20 },
        )?;
        Ok(HookAdmission::Signed)
    }

    /// `X-Twilio-Signature` over the URL Twilio called and the form's fields.
    fn verify(&self, ctx: &ServiceContext, req: &HookRequest) -> Result<(), HookError> {
        let form = Form::parse(&req.body)?;
        let presented = req.header(signature::HEADER).unwrap_or_default();
        if signature::verify(
            &self.params.auth_token,
            &ctx.public_url,
            &req.path_and_query,
            &form.0,
            presented,
        ) {
            return Ok(());
        }
        // Usually a server.public_url that is not the URL configured at Twilio.
        tracing::warn!(
            url = %format!("{}{}", ctx.public_url, req.path_and_query),
            "rejected a request whose X-Twilio-Signature does not match; check auth_token and server.public_url"
        );
        Err(HookError::Unauthorized(
            "X-Twilio-Signature does not match".into(),
        ))
    }

    fn parse(&self, _: &ServiceContext, req: &HookRequest) -> Result<Intake, HookError> {
        let form = Form::parse(&req.body)?;
        if req.subpath != "status" && !webhook::is_status_callback(&form) {
            return Ok(Intake {
                messages: vec![webhook::inbound_message(&form)?],
                ..Intake::default()
            });
        }
        let report = webhook::status_report(&form)?;
        let Some(status) = report.status else {
            tracing::debug!(message_sid = %report.sid, status = %report.twilio_status, "status callback not recorded");
            return Ok(Intake::default());
        };
        tracing::debug!(message_sid = %report.sid, status = %report.twilio_status, "status callback");
        Ok(Intake {
            receipts: vec![Receipt {
                external_id: report.sid,
                status,
                error: report.error,
            }],
            ..Intake::default()
        })
    }

    /// A callback for a sid no send recorded: that send's answer may have been lost.
    /// The sid is kept under the message's key so that a retry reports it instead of
    /// sending again.
    async fn after_commit(
        &self,
        ctx: &ServiceContext,
        req: &HookRequest,
        stored: &Stored,
    ) -> Result<(), HookError> {
        for (receipt, change) in &stored.receipts {
            if *change == StatusChange::UnknownMessage
                && let Some(key) = webhook::query_param(req.query.as_deref(), KEY_PARAM)
            {
                ctx.kv_put(&sid_key(&key), &receipt.external_id).await?;
            }
        }
        Ok(())
    }

    fn answer(&self, _: &Stored) -> HookResponse {
        webhook::twiml()
    }
}

#[async_trait]
impl Channel for TwilioConnector {
    async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let remembered = sid_key(&out.idempotency_key);
        // Twilio's Messages API takes no idempotency key. A status callback naming the
        // sid of an earlier attempt whose answer was lost is the next best thing.
        if out.attempt > 1
            && let Some(sid) = ctx.kv_get(&remembered).await?
        {
            tracing::info!(message_id = %out.message.id, message_sid = %sid, attempt = out.attempt,
                "Twilio already accepted this message on an earlier attempt; not sending it again");
            return Ok(Delivered::sent(Some(sid)));
        }
        let callback = format!(
            "{}?{}",
            ctx.hook_url("status"),
            serde_urlencoded::to_string([(KEY_PARAM, out.idempotency_key.as_str())])
                .unwrap_or_default()
        );
        let form = self.client.message_form(out, &callback)?;
        let sid = self
            .client
            .create_message(&ctx.http, &self.credentials, &form)
            .await?;
        tracing::debug!(message_id = %out.message.id, message_sid = ?sid, "Twilio accepted the message");
        Ok(Delivered::sent(sid))
    }
}
