//! The running `intercom` service: notifications through the webhook-channel helper,
//! catch-up polling, replies out as admin comments.

use async_trait::async_trait;
use switchboard_core::{
    Channel, ConnState, Connector, ConnectorError, CredentialWatch, Delivered, DeliveryError,
    HookAdmission, HookError, HookHead, HookRequest, HookResponse, Hooks, Intake, OutboundMessage,
    ServiceContext, SignatureShape, Stored, WebhookChannel,
};

use crate::catchup::{self, Seen};
use crate::client::Client;
use crate::config::IntercomParams;
use crate::reply::Replier;
use crate::webhook;

/// A running `intercom` service.
#[derive(Debug)]
pub struct IntercomConnector {
    params: IntercomParams,
    client: Client,
    replier: Replier,
    /// Kept across restarts of `run` so a reconnect does not refetch what was read.
    seen: tokio::sync::Mutex<Seen>,
    /// Told when Intercom refuses the token (or the plan) on a reply: the service, not
    /// the reply, is broken, and `run` reports it `failed`.
    credentials: CredentialWatch,
}

impl IntercomConnector {
    /// Builds from validated params.
    pub fn new(params: IntercomParams) -> Result<Self, String> {
        let client = Client::new(params.base(), params.access_token.clone())?;
        let replier = Replier::new(params.assignee_id.clone());
        Ok(IntercomConnector {
            params,
            client,
            replier,
            seen: Default::default(),
            credentials: CredentialWatch::default(),
        })
    }
}

#[async_trait]
impl Connector for IntercomConnector {
    /// Polls for missed messages; `connected` once a pass has succeeded, so the state
    /// says whether the API answers with our credentials, until a poll or a reply finds
    /// them refused.
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        let mut seen = self.seen.lock().await;
        self.credentials.reset();
        loop {
            match catchup::pass(&self.client, ctx, &mut seen).await {
                Ok(_) => ctx.set_state(ConnState::Connected),
                Err(_) if ctx.shutdown.is_cancelled() => return Ok(()),
                Err(e) => return Err(e),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.params.poll_interval.0) => {}
                _ = ctx.shutdown.cancelled() => return Ok(()),
                _ = self.credentials.until_rejected() => {
                    return Err(ConnectorError::Auth(
                        "Intercom refused the access token when sending a reply".into(),
                    ));
                }
            }
        }
    }

    fn hooks(&self) -> Option<&dyn Hooks> {
        Some(self)
    }

    fn channel(&self) -> Option<&dyn Channel> {
        Some(self)
    }
}

#[async_trait]
impl WebhookChannel for IntercomConnector {
    /// An `X-Hub-Signature` shaped like `sha1=<40 hex>`; whether it signs the body is
    /// checked once the body is read.
    fn verify_head(&self, _: &ServiceContext, head: &HookHead) -> Result<HookAdmission, HookError> {
        head.require_signature(
            "x-hub-signature",
            "X-Hub-Signature",
            SignatureShape::PrefixedHex {
                prefix: "sha1=",
                bytes: 20,
            },
        )?;
        Ok(HookAdmission::Signed)
    }

    /// `X-Hub-Signature` over the raw body, keyed with the app's client secret.
    fn verify(&self, _: &ServiceContext, req: &HookRequest) -> Result<(), HookError> {
        webhook::verify(
            &self.params.client_secret,
            req.header("x-hub-signature"),
            &req.body,
        )
    }

    fn parse(&self, _: &ServiceContext, req: &HookRequest) -> Result<Intake, HookError> {
        webhook::parse(&self.params.app_id, &req.body)
    }

    fn answer(&self, stored: &Stored) -> HookResponse {
        webhook::answer(stored)
    }
}

#[async_trait]
impl Channel for IntercomConnector {
    async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        self.replier
            .deliver(&self.client, &self.credentials, ctx, out)
            .await
    }
}
