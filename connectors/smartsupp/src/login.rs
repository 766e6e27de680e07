//! Opening an XMPP session: TCP to the configured `host:port` (no DNS SRV), TLS per
//! `tls`, SASL, resource binding, XEP-0198 stream management when offered, and the
//! initial presence that shows the account online.
//!
//! Built from tokio-xmpp's XML stream primitives rather than its `Client`, which
//! reconnects by itself and swallows authentication failures.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sasl::common::{ChannelBinding, Credentials};
use tokio::io::{AsyncBufRead, AsyncWrite, BufStream};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_xmpp::connect::AsyncReadAndWrite;
use tokio_xmpp::error::{AuthError, Error as XmppError};
use tokio_xmpp::jid::{BareJid, FullJid};
use tokio_xmpp::parsers::bind::{BindQuery, BindResponse};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::parsers::sm;
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::parsers::stream_features::StreamFeatures;
use tokio_xmpp::parsers::{ns, stanza::Stanza};
use tokio_xmpp::xmlstream::{ReadError, StreamHeader, Timeouts, XmppStreamElement};
use tokio_xmpp::{Error as TokioXmppError, xmlstream};

use crate::config::TlsMode;
use crate::tls;
use switchboard_core::Secret;

/// The transport under the XML stream, whatever the TLS mode.
pub type Io = Box<dyn AsyncReadAndWrite + Send + 'static>;
/// The XML stream of a session.
pub type XmppStream = xmlstream::XmppStream<Io>;

/// How long connecting and logging in may take before the attempt counts as failed.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Silence after which we prod the server (`<r/>` or a ping), and how long it then has
/// to answer before the connection counts as dead.
pub const TIMEOUTS: Timeouts = Timeouts {
    read_timeout: Duration::from_secs(60),
    response_timeout: Duration::from_secs(20),
};
const BIND_ID: &str = "switchboard-bind";

/// Everything needed to open a session, prepared once per service.
#[derive(Debug, Clone)]
pub struct Account {
    /// The account.
    pub jid: BareJid,
    /// Its password.
    pub password: Secret,
    /// Where to connect.
    pub host: String,
    /// Port.
    pub port: u16,
    /// How to secure the connection.
    pub tls: TlsMode,
    /// The TLS client config (system roots plus `ca_file`).
    pub tls_config: Arc<rustls::ClientConfig>,
}

/// A bound, ready session.
pub struct Session {
    /// The stream, after the initial presence was written.
    pub stream: XmppStream,
    /// The full JID the server bound us to.
    pub bound: FullJid,
    /// Whether XEP-0198 stream management is enabled.
    pub sm: bool,
}

/// Why a login did not succeed, classified for the supervisor.
#[derive(Debug)]
pub enum LoginError {
    /// The server refused the credentials.
    Auth(String),
    /// Something an operator must fix (certificate, no STARTTLS, no common mechanism).
    Fatal(String),
    /// Worth retrying soon (refused, reset, timed out).
    Transient(String),
}

impl From<std::io::Error> for LoginError {
    fn from(e: std::io::Error) -> Self {
        match tls::is_certificate_error(&e) {
            Some(reason) => LoginError::Fatal(format!("TLS handshake failed: {reason}")),
            None => LoginError::Transient(format!("connection failed: {e}")),
        }
    }
}

impl From<XmppError> for LoginError {
    fn from(e: XmppError) -> Self {
        match e {
            XmppError::Io(io) => io.into(),
            XmppError::Auth(AuthError::Fail(condition)) => LoginError::Auth(format!(
                "the server rejected the credentials ({})",
                sasl_condition(&condition)
            )),
            XmppError::Auth(AuthError::NoMechanism) => {
                LoginError::Fatal("the server offers no SASL mechanism this client supports".into())
            }
            XmppError::Auth(other) => LoginError::Auth(other.to_string()),
            XmppError::StreamError(e) => {
                LoginError::Transient(format!("the server closed the stream: {e}"))
            }
            other => LoginError::Transient(other.to_string()),
        }
    }
}

impl From<xmlstream::RecvFeaturesError> for LoginError {
    fn from(e: xmlstream::RecvFeaturesError) -> Self {
        LoginError::from(TokioXmppError::from(e))
    }
}

/// `not-authorized` rather than `NotAuthorized`.
fn sasl_condition(c: &tokio_xmpp::parsers::sasl::DefinedCondition) -> String {
    crate::stanza::kebab(&format!("{c:?}"))
}

/// Connects, authenticates, binds, enables stream management and announces presence.
pub async fn login(account: &Account) -> Result<Session, LoginError> {
    match tokio::time::timeout(LOGIN_TIMEOUT, login_inner(account)).await {
        Ok(r) => r,
        Err(_) => Err(LoginError::Transient(format!(
            "logging in took longer than {}s",
            LOGIN_TIMEOUT.as_secs()
        ))),
    }
}

async fn login_inner(account: &Account) -> Result<Session, LoginError> {
    let tcp = TcpStream::connect((account.host.as_str(), account.port))
        .await
        .map_err(|e| LoginError::Transient(format!("connecting to the server failed: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let domain = account.jid.domain().as_str();

    let io: Io = match account.tls {
        TlsMode::None => Box::new(BufStream::new(tcp)),
        TlsMode::Direct => Box::new(BufStream::new(handshake(account, tcp).await?)),
        TlsMode::StartTls => {
            let (features, stream) = open_stream(BufStream::new(tcp), domain).await?;
            if !features.can_starttls() {
                return Err(LoginError::Fatal(
                    "the server does not offer STARTTLS (set tls = \"direct\" for a TLS port)"
                        .into(),
                ));
            }
            let tcp = starttls(stream).await?;
            Box::new(BufStream::new(handshake(account, tcp).await?))
        }
    };
    let (features, stream) = open_stream(io, domain).await?;

    let username = account.jid.node().map(|n| n.as_str()).unwrap_or_default();
    let creds = Credentials::default()
        .with_username(username)
        .with_password(account.password.expose())
        .with_channel_binding(ChannelBinding::None);
    // Never ANONYMOUS, which tokio-xmpp would fall back to: that is not our account.
    let mut mechanisms = features.sasl_mechanisms;
    mechanisms.remove("ANONYMOUS");
    if mechanisms.is_empty() {
        let hint = if account.tls == TlsMode::None {
            " without TLS; use tls = \"starttls\" or \"direct\""
        } else {
            ""
        };
        return Err(LoginError::Fatal(format!(
            "the server offers no way to log in with a password{hint}"
        )));
    }
    let stream = tokio_xmpp::client_login(stream, mechanisms, creds).await?;
    let pending = stream
        .send_header(header(domain))
        .await
        .map_err(LoginError::from)?;
    let (features, mut stream) = pending.recv_features().await?;

    let bound = bind(&mut stream).await?;
    let sm = features.stream_management.is_some() && enable_sm(&mut stream).await?;
    send(
        &mut stream,
        &XmppStreamElement::Stanza(Stanza::Presence(Presence::available())),
    )
    .await?;
    Ok(Session { stream, bound, sm })
}

fn header(domain: &str) -> StreamHeader<'_> {
    StreamHeader {
        to: Some(Cow::Borrowed(domain)),
        from: None,
        id: None,
    }
}

async fn open_stream<I: AsyncBufRead + AsyncWrite + Unpin>(
    io: I,
    domain: &str,
) -> Result<(StreamFeatures, xmlstream::XmppStream<I>), LoginError> {
    let pending = xmlstream::initiate_stream(io, ns::JABBER_CLIENT, header(domain), TIMEOUTS)
        .await
        .map_err(LoginError::from)?;
    Ok(pending.recv_features().await?)
}

/// `<starttls/>` → `<proceed/>`, then the bare TCP stream for the TLS handshake.
async fn starttls(
    mut stream: xmlstream::XmppStream<BufStream<TcpStream>>,
) -> Result<TcpStream, LoginError> {
    send(
        &mut stream,
        &XmppStreamElement::Starttls(starttls::Nonza::Request(starttls::Request)),
    )
    .await?;
    loop {
        match next(&mut stream).await? {
            XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)) => break,
            XmppStreamElement::Starttls(_) => {
                return Err(LoginError::Fatal("the server refused STARTTLS".into()));
            }
            _ => {}
        }
    }
    // The buffer is empty: the server sends nothing after <proceed/> until the handshake.
    Ok(stream.into_inner().into_inner())
}

async fn handshake(
    account: &Account,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, LoginError> {
    let name = rustls::pki_types::ServerName::try_from(account.jid.domain().as_str().to_owned())
        .map_err(|e| LoginError::Fatal(format!("the JID's domain is not a TLS name: {e}")))?;
    let connector = TlsConnector::from(account.tls_config.clone());
    Ok(connector.connect(name, tcp).await?)
}

async fn bind(stream: &mut XmppStream) -> Result<FullJid, LoginError> {
    // The server picks the resource, so two daemons on one account do not kick each other.
    let iq = Iq::from_set(BIND_ID, BindQuery::new(None));
    send(stream, &XmppStreamElement::Stanza(Stanza::Iq(iq))).await?;
    loop {
        if let XmppStreamElement::Stanza(Stanza::Iq(iq)) = next(stream).await? {
            match iq {
                Iq::Result {
                    id,
                    payload: Some(payload),
                    ..
                } if id == BIND_ID => {
                    return BindResponse::try_from(payload)
                        .map(FullJid::from)
                        .map_err(|e| LoginError::Fatal(format!("invalid bind response: {e}")));
                }
                Iq::Error { id, error, .. } if id == BIND_ID => {
                    return Err(LoginError::Fatal(format!(
                        "the server refused resource binding: {:?}",
                        error.defined_condition
                    )));
                }
                _ => {}
            }
        }
    }
}

/// Asks for stream management (without resumption: after a break we open a fresh session
/// and the server re-delivers what we had not acknowledged). False when refused.
async fn enable_sm(stream: &mut XmppStream) -> Result<bool, LoginError> {
    send(
        stream,
        &XmppStreamElement::SM(sm::Nonza::Enable(sm::Enable::new())),
    )
    .await?;
    loop {
        match next(stream).await? {
            XmppStreamElement::SM(sm::Nonza::Enabled(_)) => return Ok(true),
            XmppStreamElement::SM(sm::Nonza::Failed(f)) => {
                tracing::warn!(error = ?f.error, "the server refused stream management; continuing without acknowledgements");
                return Ok(false);
            }
            _ => {}
        }
    }
}

async fn send<I: AsyncBufRead + AsyncWrite + Unpin>(
    stream: &mut xmlstream::XmppStream<I>,
    item: &XmppStreamElement,
) -> Result<(), LoginError> {
    stream.send(item).await.map_err(LoginError::from)
}

/// The next element during negotiation; any break is an error.
async fn next<I: AsyncBufRead + AsyncWrite + Unpin>(
    stream: &mut xmlstream::XmppStream<I>,
) -> Result<XmppStreamElement, LoginError> {
    loop {
        match stream.next().await {
            Some(Ok(el)) => match el.into_read_error() {
                Ok(XmppStreamElement::StreamError(e)) => {
                    return Err(LoginError::Transient(format!(
                        "the server closed the stream: {e}"
                    )));
                }
                Ok(el) => return Ok(el),
                Err(e) => return Err(read_error(e)),
            },
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(e)) => return Err(read_error(e)),
            None => {
                return Err(LoginError::Transient(
                    "the server closed the connection".into(),
                ));
            }
        }
    }
}

fn read_error(e: ReadError) -> LoginError {
    match e {
        ReadError::HardError(io) => io.into(),
        ReadError::StreamFooterReceived => {
            LoginError::Transient("the server closed the stream".into())
        }
        other => LoginError::Transient(format!("reading from the server failed: {other}")),
    }
}
