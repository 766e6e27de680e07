//! The running `twilio` service: checks the credentials, verifies and stores what Twilio
//! posts, sends replies, and applies status callbacks.

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, StatusCode};
use switchboard_core::{
    Connector, ConnectorError, CredentialWatch, Delivered, DeliveryError, HookAdmission, HookError,
    HookHead, HookRequest, HookResponse, OutboundMessage, ServiceContext, SignatureShape,
    StatusChange,
};

use crate::client::Client;
use crate::config::TwilioParams;
use crate::signature;
use crate::webhook::{self, Form};

/// The query parameter of our `StatusCallback` URL that names the outbound message.
pub const KEY_PARAM: &str = "idempotency_key";

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

    /// Rejects a request whose `X-Twilio-Signature` does not sign it.
    fn verify(
        &self,
        ctx: &ServiceContext,
        req: &HookRequest,
        form: &Form,
    ) -> Result<(), HookError> {
        let Some(presented) = req.header(signature::HEADER) else {
            return Err(HookError::Unauthorized(
                "X-Twilio-Signature is missing".into(),
            ));
        };
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

    async fn inbound(&self, ctx: &ServiceContext, form: &Form) -> Result<HookResponse, HookError> {
        let msg = webhook::inbound_message(form)?;
        let sid = msg.external_id.clone();
        let stored = ctx.ingest(vec![msg]).await?;
        let created = stored.first().is_some_and(|i| i.created);
        tracing::debug!(message_sid = %sid, created, "inbound message stored");
        Ok(twiml())
    }

    async fn status(
        &self,
        ctx: &ServiceContext,
        req: &HookRequest,
        form: &Form,
    ) -> Result<HookResponse, HookError> {
        let report = webhook::status_report(form)?;
        let Some(status) = report.status else {
            tracing::debug!(message_sid = %report.sid, status = %report.twilio_status, "status callback not recorded");
            return Ok(twiml());
        };
        let change = ctx
            .update_status(&report.sid, status, report.error.clone())
            .await?;
        tracing::debug!(message_sid = %report.sid, status = %report.twilio_status, ?change, "status callback");
        if change == StatusChange::UnknownMessage
            && let Some(key) = query_param(req.query.as_deref(), KEY_PARAM)
        {
            // The send that created this sid has not been recorded: its answer may have
            // been lost. Remember the sid so a retry reports it instead of sending again.
            ctx.kv_put(&sid_key(&key), &report.sid).await?;
        }
        Ok(twiml())
    }
}

/// The address a reply to `to` goes from: where the contact wrote to (our half of the
/// conversation key), else `from`, in the contact's channel (`whatsapp:`) when `from` was
/// given as a bare number.
fn sender(conversation_key: Option<&str>, from: Option<&str>, to: &str) -> Option<String> {
    if let Some(ours) = conversation_key.and_then(webhook::our_address) {
        return Some(ours.to_owned());
    }
    let from = from?;
    Some(match to.split_once(':') {
        Some((channel, _)) if !from.contains(':') => format!("{channel}:{from}"),
        _ => from.to_owned(),
    })
}

/// The sync-state key under which a status callback left the sid of a send whose answer
/// we never recorded.
fn sid_key(idempotency_key: &str) -> String {
    format!("sid_for:{idempotency_key}")
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The empty TwiML answer: store the message, send nothing back.
fn twiml() -> HookResponse {
    HookResponse {
        status: StatusCode::OK,
        content_type: "text/xml",
        body: Bytes::from_static(b"<Response/>"),
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

    /// `POST` to the root or `/status`, with an `X-Twilio-Signature` shaped like one
    /// (base64 of an HMAC-SHA1); whether it signs the request is checked after the read.
    fn authorize_hook(&self, head: &HookHead<'_>) -> Result<HookAdmission, HookError> {
        if *head.method != Method::POST {
            return Err(HookError::MethodNotAllowed);
        }
        if !matches!(head.subpath, "" | "status") {
            return Err(HookError::NotFound);
        }
        head.require_signature(
            signature::HEADER,
            "X-Twilio-Signature",
            SignatureShape::Base64 { bytes: 20 },
        )?;
        Ok(HookAdmission::Signed)
    }

    async fn handle_webhook(
        &self,
        ctx: &ServiceContext,
        req: HookRequest,
    ) -> Result<HookResponse, HookError> {
        self.authorize_hook(&req.head())?;
        let is_status = req.subpath == "status";
        let form = Form::parse(&req.body)?;
        self.verify(ctx, &req, &form)?;
        if is_status || webhook::is_status_callback(&form) {
            self.status(ctx, &req, &form).await
        } else {
            self.inbound(ctx, &form).await
        }
    }

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

        let to = out.conversation.contact.external_id.as_str();
        let text = out.message.text.as_deref().filter(|t| !t.is_empty());
        if text.is_none() && out.message.attachments.is_empty() {
            return Err(DeliveryError::permanent(
                "nothing to send: the message has neither text nor attachments",
            ));
        }
        let callback = format!(
            "{}?{}",
            ctx.hook_url("status"),
            serde_urlencoded::to_string([(KEY_PARAM, out.idempotency_key.as_str())])
                .unwrap_or_default()
        );
        let from;
        let mut form: Vec<(&str, &str)> = vec![("To", to)];
        match &self.params.messaging_service_sid {
            Some(mg) => form.push(("MessagingServiceSid", mg)),
            None => {
                let pair = out.conversation.external_id.as_deref();
                from = sender(pair, self.params.from.as_deref(), to).ok_or_else(|| {
                    DeliveryError::permanent(
                        "no sender: the conversation names none and from is not set",
                    )
                })?;
                form.push(("From", &from));
            }
        }
        if let Some(text) = text {
            form.push(("Body", text));
        }
        for a in &out.message.attachments {
            form.push(("MediaUrl", &a.url));
        }
        form.push(("StatusCallback", &callback));

        match self.client.create_message(&ctx.http, &form).await {
            Ok(sid) => {
                tracing::debug!(message_id = %out.message.id, message_sid = ?sid, "Twilio accepted the message");
                Ok(Delivered::sent(sid))
            }
            Err(failure) => {
                if failure.auth_rejected {
                    self.credentials.rejected();
                }
                Err(failure.error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_go_from_the_address_the_contact_wrote_to() {
        let wa = Some("whatsapp:+316|whatsapp:+14155238886");
        assert_eq!(
            sender(wa, Some("+14155550100"), "whatsapp:+316").as_deref(),
            Some("whatsapp:+14155238886")
        );
        assert_eq!(
            sender(None, Some("+14155550100"), "whatsapp:+316").as_deref(),
            Some("whatsapp:+14155550100")
        );
        assert_eq!(
            sender(None, Some("+14155550100"), "+316").as_deref(),
            Some("+14155550100")
        );
        assert_eq!(
            sender(Some("not a pair"), Some("whatsapp:+1"), "whatsapp:+316").as_deref(),
            Some("whatsapp:+1")
        );
        assert_eq!(sender(None, None, "+316"), None);
    }

    #[test]
    fn query_params_are_decoded() {
        assert_eq!(
            query_param(Some("a=1&idempotency_key=sms-12"), KEY_PARAM).as_deref(),
            Some("sms-12")
        );
        assert_eq!(query_param(Some("a=1"), KEY_PARAM), None);
        assert_eq!(query_param(None, KEY_PARAM), None);
    }
}
