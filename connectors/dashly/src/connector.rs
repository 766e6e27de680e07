//! The running `dashly` service: the polling loop (intake and catch-up at once) and
//! replies, both spending the key's budget.

use async_trait::async_trait;
use switchboard_core::{
    Channel, ConnState, Connector, ConnectorError, CredentialWatch, Delivered, DeliveryError,
    OutboundMessage, ServiceContext,
};

use crate::budget::WINDOW;
use crate::client::Client;
use crate::config::DashlyParams;
use crate::poll::{self, Seen};
use crate::reply;

/// A running `dashly` service.
#[derive(Debug)]
pub struct DashlyConnector {
    params: DashlyParams,
    client: Client,
    /// Kept across restarts of `run`, so a reconnect does not read unchanged
    /// conversations again.
    seen: tokio::sync::Mutex<Seen>,
    /// Told when Dashly refuses the key on a reply: the service, not the reply, is
    /// broken, and `run` reports it `failed`.
    credentials: CredentialWatch,
}

impl DashlyConnector {
    /// Builds from validated params.
    pub fn new(params: DashlyParams) -> Result<Self, String> {
        let client = Client::new(params.base(), &params.app_id.0, params.auth_token.clone())?;
        Ok(DashlyConnector {
            params,
            client,
            seen: Default::default(),
            credentials: CredentialWatch::default(),
        })
    }
}

#[async_trait]
impl Connector for DashlyConnector {
    /// Polls; `connected` once a pass has succeeded, until a pass or a reply finds the
    /// key refused.
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        let mut seen = self.seen.lock().await;
        self.credentials.reset();
        let refused =
            || ConnectorError::Auth("Dashly refused the auth_token when sending a reply".into());
        loop {
            let result = tokio::select! {
                r = poll::pass(&self.client, ctx, &mut seen, &self.params.admin_id.0, self.params.markread) => r,
                _ = self.credentials.until_rejected() => return Err(refused()),
            };
            match result {
                Ok(_) => ctx.set_state(ConnState::Connected),
                Err(_) if ctx.shutdown.is_cancelled() => return Ok(()),
                Err(e) => return Err(e),
            }
            self.client.report_budget(ctx);
            let budget = self.client.budget();
            let wait = poll::pace(
                self.params.poll_interval.0,
                budget.remaining(),
                budget.capacity(),
                WINDOW,
            );
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ctx.shutdown.cancelled() => return Ok(()),
                _ = self.credentials.until_rejected() => return Err(refused()),
            }
        }
    }

    fn channel(&self) -> Option<&dyn Channel> {
        Some(self)
    }
}

#[async_trait]
impl Channel for DashlyConnector {
    async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        reply::deliver(
            &self.client,
            &self.credentials,
            ctx,
            &self.params.admin_id.0,
            out,
        )
        .await
    }
}
