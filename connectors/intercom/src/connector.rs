//! The running `intercom` service: notifications in, catch-up polling, replies out as
//! admin comments.

use async_trait::async_trait;
use switchboard_core::{
    ConnState, Connector, ConnectorError, Delivered, DeliveryError, HookAdmission, HookError,
    HookHead, HookRequest, HookResponse, OutboundMessage, ServiceContext,
};

use crate::catchup::{self, Seen};
use crate::client::Client;
use crate::config::IntercomParams;
use crate::reply::Replier;

/// A running `intercom` service.
#[derive(Debug)]
pub struct IntercomConnector {
    params: IntercomParams,
    client: Client,
    replier: Replier,
    /// Kept across restarts of `run` so a reconnect does not refetch what was read.
    seen: tokio::sync::Mutex<Seen>,
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
        })
    }
}

#[async_trait]
impl Connector for IntercomConnector {
    /// Polls for missed messages; `connected` once a pass has succeeded, so the state
    /// says whether the API answers with our credentials.
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        let mut seen = self.seen.lock().await;
        loop {
            match catchup::pass(&self.client, ctx, &mut seen).await {
                Ok(_) => ctx.set_state(ConnState::Connected),
                Err(_) if ctx.shutdown.is_cancelled() => return Ok(()),
                Err(e) => return Err(e),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.params.poll_interval.0) => {}
                _ = ctx.shutdown.cancelled() => return Ok(()),
            }
        }
    }

    fn authorize_hook(&self, head: &HookHead<'_>) -> Result<HookAdmission, HookError> {
        crate::webhook::authorize(head)
    }

    async fn handle_webhook(
        &self,
        ctx: &ServiceContext,
        req: HookRequest,
    ) -> Result<HookResponse, HookError> {
        crate::webhook::handle(&self.params, ctx, req).await
    }

    async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        self.replier.deliver(&self.client, ctx, out).await
    }
}
