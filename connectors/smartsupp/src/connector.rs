//! The running `smartsupp` service: one session per `run` (the supervisor's capped
//! backoff, not tokio-xmpp's, paces reconnects, and a refused password surfaces as an
//! authentication failure), and deliveries handed to the live session.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_core::{
    Channel, ConnState, Connector, ConnectorError, Delivered, DeliveryError, OutboundMessage,
    ServiceContext,
};
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::jid::BareJid;

use crate::config::SmartsuppParams;
use crate::login::{self, Account, LoginError};
use crate::session::{self, End, Outgoing};
use crate::stanza;

/// How long a delivery waits for the server's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// Replies queued for the session task at most; senders wait beyond.
const QUEUE_DEPTH: usize = 256;

/// A running `smartsupp` service.
#[derive(Debug)]
pub struct SmartsuppConnector {
    account: Account,
    /// The live session's reply queue; `None` while disconnected.
    live: Mutex<Option<mpsc::Sender<Outgoing>>>,
}

impl SmartsuppConnector {
    /// Builds from validated params: reads `ca_file` and prepares TLS.
    pub fn new(params: SmartsuppParams) -> Result<Self, String> {
        let jid = params.bare_jid()?;
        let roots = match &params.ca_file {
            Some(path) => crate::tls::read_roots(path)?,
            None => Vec::new(),
        };
        let tls_config = crate::tls::client_config(roots)?;
        Ok(SmartsuppConnector {
            account: Account {
                jid,
                password: params.password,
                // "[::1]" in config, "::1" for the socket.
                host: params
                    .host
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port: params.port.0,
                tls: params.tls,
                tls_config: tls_config.into(),
            },
            live: Mutex::new(None),
        })
    }

    fn own(&self) -> &BareJid {
        &self.account.jid
    }

    fn set_live(&self, tx: Option<mpsc::Sender<Outgoing>>) {
        *self.live.lock().expect("live lock") = tx;
    }
}

#[async_trait]
impl Connector for SmartsuppConnector {
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        ctx.set_state(ConnState::Connecting);
        let session = tokio::select! {
            r = login::login(&self.account) => r,
            _ = ctx.shutdown.cancelled() => return Ok(()),
        };
        let session = match session {
            Ok(s) => s,
            Err(LoginError::Auth(reason)) => {
                return Err(ConnectorError::Auth(format!(
                    "{reason} for {}",
                    self.account.jid
                )));
            }
            Err(LoginError::Fatal(reason)) => return Err(ConnectorError::Fatal(reason)),
            Err(LoginError::Transient(reason)) => return Err(ConnectorError::Transient(reason)),
        };
        tracing::info!(jid = %session.bound, stream_management = session.sm, "XMPP session established");
        let (tx, mut rx) = mpsc::channel(QUEUE_DEPTH);
        self.set_live(Some(tx));
        ctx.set_state(ConnState::Connected);
        let result = session::drive(ctx, session, self.own(), &mut rx).await;
        self.set_live(None);
        // Replies still queued were never written: dropping them answers "unavailable".
        drop(rx);
        match result {
            Ok(End::Shutdown) => Ok(()),
            Ok(End::Lost(reason)) => Err(ConnectorError::Transient(reason)),
            Err(e) => Err(e),
        }
    }

    fn needs_connection(&self) -> bool {
        true
    }

    fn channel(&self) -> Option<&dyn Channel> {
        Some(self)
    }
}

#[async_trait]
impl Channel for SmartsuppConnector {
    async fn deliver_message(
        &self,
        _ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        // The same id on every attempt, so a repeat after a lost acknowledgement carries
        // the id (and origin-id) the visitor's client already saw.
        let id = out.idempotency_key.clone();
        let stanza = stanza::outbound(out, &id).map_err(DeliveryError::permanent)?;
        let tx = self
            .live
            .lock()
            .expect("live lock")
            .clone()
            .ok_or_else(|| DeliveryError::unavailable("not connected to the XMPP server"))?;
        let (done, outcome) = oneshot::channel();
        tx.send(Outgoing { stanza, done })
            .await
            .map_err(|_| DeliveryError::unavailable("not connected to the XMPP server"))?;
        match tokio::time::timeout(ACK_TIMEOUT, outcome).await {
            Ok(Ok(Ok(()))) => Ok(Delivered::sent(Some(id))),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(DeliveryError::unavailable(
                "the connection closed before the message was written",
            )),
            Err(_) => Err(DeliveryError::transient(format!(
                "the server did not acknowledge the message within {}s",
                ACK_TIMEOUT.as_secs()
            ))),
        }
    }
}
