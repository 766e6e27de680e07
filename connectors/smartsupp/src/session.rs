//! One live XMPP session, driven by a single task that owns the stream and does all its
//! reading and writing: incoming stanzas, outgoing replies, XEP-0198 acknowledgements
//! and the closing handshake. Nothing else touches the stream, so there is no lock to
//! contend for and no split half whose wake-up can be lost (the tokio-xmpp 6.0.0
//! `StanzaReceiver` trap).
//!
//! Acknowledgements are tied to the store: an incoming stanza counts as handled (and is
//! acknowledged with `<a h/>`) only once the message it carried is committed. A stanza
//! the server never saw acknowledged is stored offline by the server when the session
//! ends and re-delivered on the next login, where the dedupe key makes it a no-op. Our
//! own replies count as sent when the server acknowledges them, or once written when
//! the server offers no stream management.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchboard_core::{
    ConnectorError, DeliveryError, HostError, InboundMessage, Ingested, MessageStatus,
    ServiceContext,
};
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::jid::BareJid;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::parsers::sm;
use tokio_xmpp::parsers::stanza::Stanza;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, ReadError, StreamElementError, XmppStreamElement,
};

use crate::login::{Session, XmppStream};
use crate::stanza::{Incoming, classify};

/// Most inbound messages committed in one transaction.
const MAX_BATCH: usize = 256;
/// Parsed messages held while the store catches up; reading pauses beyond this.
const MAX_PENDING: usize = 1024;
/// Replies written before one `<r/>` and one flush.
const MAX_WRITE_BATCH: usize = 64;
/// How long a clean close may take (our footer, the server's last `<a/>` and footer).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A reply handed to the session: the stanza, and where to report the outcome.
pub struct Outgoing {
    /// The `<message/>`.
    pub stanza: Stanza,
    /// `Ok` once the server acknowledged it (or it was written, without acks).
    pub done: oneshot::Sender<Result<(), DeliveryError>>,
}

type IngestFuture<'c> = Pin<Box<dyn Future<Output = Result<Vec<Ingested>, HostError>> + Send + 'c>>;

/// Stream-management counters and the stanzas waiting on them.
struct Acks {
    /// Whether XEP-0198 is on for this stream.
    enabled: bool,
    /// Stanzas received (the server's count of what it sent us).
    received: u32,
    /// `received` positions of messages not yet committed, oldest first.
    uncommitted: VecDeque<u32>,
    /// The server asked for an acknowledgement we have not fully given yet.
    requested: bool,
    /// The last `h` we sent.
    last_sent: u32,
    /// Stanzas we sent since enabling.
    sent: u32,
    /// Our replies waiting for the server's `<a h/>`, by their position in `sent`.
    waiting: VecDeque<(u32, oneshot::Sender<Result<(), DeliveryError>>)>,
}

impl Acks {
    /// Everything up to here is handled: received, and committed where it was a message.
    fn handled(&self) -> u32 {
        match self.uncommitted.front() {
            Some(first) => first.wrapping_sub(1),
            None => self.received,
        }
    }

    /// Resolves the replies the server says it has (`h` counts modulo 2^32).
    fn acked(&mut self, h: u32) {
        while let Some((pos, _)) = self.waiting.front() {
            if (h.wrapping_sub(*pos) as i32) < 0 {
                break;
            }
            let (_, done) = self.waiting.pop_front().expect("front exists");
            let _ = done.send(Ok(()));
        }
    }

    fn fail_waiting(&mut self, reason: &str) {
        for (_, done) in self.waiting.drain(..) {
            let _ = done.send(Err(DeliveryError::transient(format!(
                "{reason} before the server acknowledged the message"
            ))));
        }
    }
}

/// How a session ended.
pub enum End {
    /// `ctx.shutdown` fired and the stream was closed cleanly.
    Shutdown,
    /// The connection broke or the server closed it.
    Lost(String),
}

/// Drives `session` until shutdown or a break. `replies` carries agents' messages.
pub async fn drive(
    ctx: &ServiceContext,
    session: Session,
    own: &BareJid,
    replies: &mut mpsc::Receiver<Outgoing>,
) -> Result<End, ConnectorError> {
    let mut driver = Driver {
        ctx,
        own,
        stream: session.stream,
        acks: Acks {
            enabled: session.sm,
            received: 0,
            uncommitted: VecDeque::new(),
            requested: false,
            last_sent: 0,
            // The initial presence, written after <enabled/>, is our first stanza.
            sent: u32::from(session.sm),
            waiting: VecDeque::new(),
        },
        pending: Vec::new(),
        ping_counter: 0,
    };
    let result = driver.run(replies).await;
    if result.is_err() {
        // Storage failed or a write broke: the stream may still be up, so end it
        // properly. Only committed messages are acknowledged; the server keeps the rest.
        driver.close(None).await;
    }
    let reason = match &result {
        Ok(End::Shutdown) => "the session closed",
        _ => "the connection broke",
    };
    driver.acks.fail_waiting(reason);
    result
}

struct Driver<'c> {
    ctx: &'c ServiceContext,
    own: &'c BareJid,
    stream: XmppStream,
    acks: Acks,
    /// Messages parsed and waiting for the next commit (their stanza positions are in
    /// `acks.uncommitted`).
    pending: Vec<InboundMessage>,
    ping_counter: u64,
}

impl<'c> Driver<'c> {
    async fn run(&mut self, replies: &mut mpsc::Receiver<Outgoing>) -> Result<End, ConnectorError> {
        let ctx = self.ctx;
        let mut inflight: Option<(IngestFuture<'c>, usize)> = None;
        loop {
            if inflight.is_none() && !self.pending.is_empty() {
                let n = self.pending.len().min(MAX_BATCH);
                let batch: Vec<InboundMessage> = self.pending.drain(..n).collect();
                inflight = Some((Box::pin(ctx.ingest(batch)), n));
            }
            self.send_ack_if_due().await?;
            let reading = self.pending.len() < MAX_PENDING;
            tokio::select! {
                _ = ctx.shutdown.cancelled() => {
                    self.close(inflight.take()).await;
                    return Ok(End::Shutdown);
                }
                result = async { (&mut inflight.as_mut().expect("guarded").0).await }, if inflight.is_some() => {
                    let (_, n) = inflight.take().expect("guarded");
                    self.committed(result, n)?;
                }
                item = self.stream.next(), if reading => {
                    if let Some(end) = self.on_read(item).await? {
                        return Ok(end);
                    }
                }
                Some(first) = replies.recv() => {
                    self.write_replies(first, replies).await?;
                }
            }
        }
    }

    /// A batch commit finished: its stanzas are now handled.
    fn committed(
        &mut self,
        result: Result<Vec<Ingested>, HostError>,
        n: usize,
    ) -> Result<(), ConnectorError> {
        match result {
            Ok(done) => {
                let created = done.iter().filter(|i| i.created).count();
                tracing::debug!(messages = n, created, "inbound messages stored");
            }
            Err(HostError::Invalid(reason)) => {
                // Not retryable: parsing only yields messages with text or attachments.
                tracing::error!(messages = n, error = %reason, "inbound messages rejected by the store; dropped");
            }
            Err(e) => {
                // Unacknowledged, so the server keeps them and re-delivers after we
                // reconnect.
                return Err(ConnectorError::Transient(format!(
                    "storing inbound messages failed: {e}"
                )));
            }
        }
        for _ in 0..n {
            self.acks.uncommitted.pop_front();
        }
        Ok(())
    }

    /// Answers the server's `<r/>` with what is handled, and keeps answering as commits
    /// complete until everything it had sent is acknowledged.
    async fn send_ack_if_due(&mut self) -> Result<(), ConnectorError> {
        let acks = &mut self.acks;
        if !acks.enabled || !acks.requested {
            return Ok(());
        }
        let h = acks.handled();
        if h == acks.received || h != acks.last_sent {
            acks.last_sent = h;
            acks.requested = h != acks.received;
            self.write(&XmppStreamElement::SM(sm::Nonza::Ack(sm::A::new(h))), true)
                .await?;
        }
        Ok(())
    }

    async fn on_read(
        &mut self,
        item: Option<Result<FallibleStreamElement, ReadError>>,
    ) -> Result<Option<End>, ConnectorError> {
        let element = match item {
            None => return Ok(Some(End::Lost("the server closed the connection".into()))),
            Some(Err(ReadError::SoftTimeout)) => {
                self.probe().await?;
                return Ok(None);
            }
            Some(Err(ReadError::StreamFooterReceived)) => {
                // Answer with our footer, as RFC 6120 asks, before letting go.
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, close_sink(&mut self.stream)).await;
                return Ok(Some(End::Lost("the server closed the stream".into())));
            }
            Some(Err(ReadError::HardError(e))) => {
                return Ok(Some(End::Lost(format!("the connection broke: {e}"))));
            }
            Some(Err(ReadError::ParseError(e))) => {
                tracing::warn!(error = %e, "ignoring an element the XML parser rejected");
                return Ok(None);
            }
            Some(Ok(FallibleStreamElement::Err(StreamElementError::InvalidStanza {
                name,
                header,
                error,
                ..
            }))) => {
                self.acks.received = self.acks.received.wrapping_add(1);
                tracing::warn!(stanza = %name, from = ?header.from, id = ?header.id, error = %error, "ignoring a stanza that does not parse");
                return Ok(None);
            }
            Some(Ok(FallibleStreamElement::Err(e))) => {
                tracing::debug!(error = %e, "ignoring an invalid stream element");
                return Ok(None);
            }
            Some(Ok(FallibleStreamElement::Ok(el))) => el,
        };
        match element {
            XmppStreamElement::Stanza(stanza) => {
                self.acks.received = self.acks.received.wrapping_add(1);
                self.on_stanza(stanza).await?;
            }
            XmppStreamElement::SM(sm::Nonza::Req(_)) => self.acks.requested = true,
            XmppStreamElement::SM(sm::Nonza::Ack(a)) => self.acks.acked(a.h),
            XmppStreamElement::StreamError(e) => {
                return Ok(Some(End::Lost(format!("the server ended the stream: {e}"))));
            }
            other => tracing::debug!(element = ?other, "ignoring a stream element"),
        }
        Ok(None)
    }

    async fn on_stanza(&mut self, stanza: Stanza) -> Result<(), ConnectorError> {
        match stanza {
            Stanza::Message(msg) => match classify(&msg, self.own) {
                Incoming::Chat { message, typing } => {
                    if let Some(typing) = typing {
                        self.ctx.typing(&message.contact.external_id, typing);
                    }
                    self.acks.uncommitted.push_back(self.acks.received);
                    self.pending.push(message);
                }
                Incoming::Typing { contact, typing } => self.ctx.typing(&contact, typing),
                Incoming::Receipt { id } => {
                    if let Err(e) = self
                        .ctx
                        .update_status(&id, MessageStatus::Delivered, None)
                        .await
                    {
                        tracing::warn!(error = %e, "recording a delivery receipt failed");
                    }
                }
                Incoming::Bounced { id, reason } => {
                    tracing::warn!(message_id = %id, error = %reason, "the server bounced a reply");
                    if let Err(e) = self
                        .ctx
                        .update_status(&id, MessageStatus::Failed, Some(reason))
                        .await
                    {
                        tracing::warn!(error = %e, "recording a bounced reply failed");
                    }
                }
                Incoming::Ignored => {}
            },
            Stanza::Iq(iq) => self.on_iq(iq).await?,
            // Presence of visitors is not part of the conversation model.
            Stanza::Presence(_) => {}
        }
        Ok(())
    }

    /// RFC 6120 §8.2.3: every get/set is answered. Pings get a result, the rest an error.
    async fn on_iq(&mut self, iq: Iq) -> Result<(), ConnectorError> {
        let reply = match iq {
            Iq::Get {
                from, id, payload, ..
            } if payload.is("ping", ns::PING) => Iq::Result {
                from: None,
                to: from,
                id,
                payload: None,
            },
            Iq::Get { from, id, .. } | Iq::Set { from, id, .. } => {
                let mut r = Iq::from_error(
                    id,
                    StanzaError::new(
                        ErrorType::Cancel,
                        DefinedCondition::ServiceUnavailable,
                        "en",
                        "not supported by this client",
                    ),
                );
                if let Some(from) = from {
                    r = r.with_to(from);
                }
                r
            }
            Iq::Result { .. } | Iq::Error { .. } => return Ok(()),
        };
        self.write(&XmppStreamElement::Stanza(Stanza::Iq(reply)), true)
            .await
    }

    /// The stream has been silent: make the server say something before the hard timeout.
    async fn probe(&mut self) -> Result<(), ConnectorError> {
        if self.acks.enabled {
            self.write(&XmppStreamElement::SM(sm::Nonza::Req(sm::R)), true)
                .await
        } else {
            self.ping_counter += 1;
            let iq = Iq::from_get(format!("switchboard-ping-{}", self.ping_counter), Ping);
            self.write(&XmppStreamElement::Stanza(Stanza::Iq(iq)), true)
                .await
        }
    }

    /// Writes `first` and whatever else is queued (bounded), flushes once, and asks for
    /// one acknowledgement covering them all.
    async fn write_replies(
        &mut self,
        first: Outgoing,
        replies: &mut mpsc::Receiver<Outgoing>,
    ) -> Result<(), ConnectorError> {
        let mut batch = vec![first];
        while batch.len() < MAX_WRITE_BATCH {
            match replies.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut written = Vec::with_capacity(batch.len());
        for Outgoing { stanza, done } in batch {
            if done.is_closed() {
                // The dispatcher gave up on this attempt (timeout); it will retry.
                continue;
            }
            self.write(&XmppStreamElement::Stanza(stanza), false)
                .await?;
            written.push((self.acks.sent, done));
        }
        if self.acks.enabled && !written.is_empty() {
            self.feed(&XmppStreamElement::SM(sm::Nonza::Req(sm::R)))
                .await?;
        }
        self.flush().await?;
        for (pos, done) in written {
            if self.acks.enabled {
                self.acks.waiting.push_back((pos, done));
            } else {
                let _ = done.send(Ok(()));
            }
        }
        Ok(())
    }

    /// Writes one element; stanzas advance our sent counter.
    async fn write(&mut self, el: &XmppStreamElement, flush: bool) -> Result<(), ConnectorError> {
        self.feed(el).await?;
        if flush {
            self.flush().await?;
        }
        Ok(())
    }

    async fn feed(&mut self, el: &XmppStreamElement) -> Result<(), ConnectorError> {
        if matches!(el, XmppStreamElement::Stanza(_)) && self.acks.enabled {
            self.acks.sent = self.acks.sent.wrapping_add(1);
        }
        self.stream
            .feed(el)
            .await
            .map_err(|e| ConnectorError::Transient(format!("writing to the server failed: {e}")))
    }

    async fn flush(&mut self) -> Result<(), ConnectorError> {
        <XmppStream as SinkExt<&XmppStreamElement>>::flush(&mut self.stream)
            .await
            .map_err(|e| ConnectorError::Transient(format!("writing to the server failed: {e}")))
    }

    /// Commits what is in hand, acknowledges it, sends our footer, and reads until the
    /// server's (its last `<a/>` resolves replies still waiting), all within a deadline.
    async fn close(&mut self, inflight: Option<(IngestFuture<'c>, usize)>) {
        let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
        if let Some((fut, n)) = inflight {
            match tokio::time::timeout_at(deadline, fut).await {
                // A failed commit leaves its stanzas unacknowledged: the server keeps
                // them and re-delivers them at the next login.
                Ok(result) => drop(self.committed(result, n)),
                Err(_) => {
                    tracing::warn!("storing inbound messages did not finish before the close")
                }
            }
        }
        if self.acks.enabled {
            let h = self.acks.handled();
            if h != self.acks.last_sent {
                self.acks.last_sent = h;
                let _ = self
                    .write(&XmppStreamElement::SM(sm::Nonza::Ack(sm::A::new(h))), true)
                    .await;
            }
        }
        match tokio::time::timeout_at(deadline, self.stream.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the stream footer could not be sent");
                return;
            }
            Err(_) => {
                tracing::warn!("sending the stream footer timed out");
                return;
            }
        }
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::SM(sm::Nonza::Ack(
                    a,
                )))))) => self.acks.acked(a.h),
                // Stanzas after our footer stay unacknowledged; the server keeps them.
                Ok(Some(Ok(_)))
                | Ok(Some(Err(ReadError::SoftTimeout | ReadError::ParseError(_)))) => {}
                Ok(Some(Err(ReadError::StreamFooterReceived))) | Ok(None) => {
                    tracing::debug!("XMPP stream closed cleanly");
                    break;
                }
                Ok(Some(Err(ReadError::HardError(e)))) => {
                    tracing::debug!(error = %e, "connection ended during the close");
                    break;
                }
                Err(_) => {
                    tracing::warn!("the server did not close the stream in time");
                    break;
                }
            }
        }
        let _ = tokio::time::timeout_at(deadline, close_sink(&mut self.stream)).await;
    }
}

/// Closes the transport (after the footer, if not yet sent).
async fn close_sink(stream: &mut XmppStream) -> std::io::Result<()> {
    <XmppStream as SinkExt<&XmppStreamElement>>::close(stream).await
}
