//! A website visitor: a minimal XMPP client written for the tests on tokio-xmpp's XML
//! stream primitives (plain TCP, SASL, bind, presence), independent of the connector's
//! session code. One task owns its stream; messages it receives are recorded.
#![allow(dead_code)]

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::bind::{BindQuery, BindResponse};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::{Id, Lang, Message, MessageType};
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::parsers::{ns, stanza::Stanza};
use tokio_xmpp::xmlstream::{
    self, FallibleStreamElement, ReadError, StreamHeader, Timeouts, XmppStreamElement,
};

type Stream = xmlstream::XmppStream<BufStream<TcpStream>>;

/// A chat message the visitor got.
#[derive(Debug, Clone)]
pub struct Got {
    /// The stanza id.
    pub id: Option<String>,
    /// The body.
    pub body: String,
    /// The sender's bare JID.
    pub from: String,
    /// Whether it asked for a XEP-0184 receipt.
    pub wants_receipt: bool,
}

enum Cmd {
    Send(Vec<Message>),
    Close(oneshot::Sender<()>),
}

/// A connected visitor.
pub struct Visitor {
    /// Its bare JID.
    pub jid: BareJid,
    tx: mpsc::Sender<Cmd>,
    /// Chat messages received so far.
    pub inbox: Arc<Mutex<Vec<Got>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Visitor {
    /// Logs in as `user@localhost` over plain TCP to `port`, announces presence.
    pub async fn connect(port: u16, user: &str, password: &str) -> Visitor {
        let jid = BareJid::new(&format!("{user}@localhost")).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let header = || StreamHeader {
            to: Some(Cow::Borrowed("localhost")),
            from: None,
            id: None,
        };
        let pending = xmlstream::initiate_stream(
            BufStream::new(tcp),
            ns::JABBER_CLIENT,
            header(),
            Timeouts::tight(),
        )
        .await
        .unwrap();
        let (features, stream): (_, Stream) = pending.recv_features().await.unwrap();
        let creds = sasl::common::Credentials::default()
            .with_username(user)
            .with_password(password)
            .with_channel_binding(sasl::common::ChannelBinding::None);
        let stream = tokio_xmpp::client_login(stream, features.sasl_mechanisms, creds)
            .await
            .expect("the visitor logs in");
        let (_, mut stream): (_, Stream) = stream
            .send_header(header())
            .await
            .unwrap()
            .recv_features()
            .await
            .unwrap();
        let bind = Iq::from_set("bind", BindQuery::new(Some("web".into())));
        stream
            .send(&XmppStreamElement::Stanza(Stanza::Iq(bind)))
            .await
            .unwrap();
        loop {
            let el = stream.next().await.unwrap().unwrap();
            if let FallibleStreamElement::Ok(XmppStreamElement::Stanza(Stanza::Iq(Iq::Result {
                id,
                payload: Some(p),
                ..
            }))) = el
            {
                assert_eq!(id, "bind");
                BindResponse::try_from(p).unwrap();
                break;
            }
        }
        stream
            .send(&XmppStreamElement::Stanza(Stanza::Presence(
                Presence::available(),
            )))
            .await
            .unwrap();
        let inbox: Arc<Mutex<Vec<Got>>> = Default::default();
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(run(stream, rx, inbox.clone()));
        Visitor {
            jid,
            tx,
            inbox,
            task,
        }
    }

    /// Sends chat messages `(id, body)` to `to`, in order.
    pub async fn send_many(&self, to: &str, msgs: &[(String, String)]) {
        let to: Jid = to.parse().unwrap();
        let stanzas = msgs
            .iter()
            .map(|(id, body)| {
                let mut m = Message::chat(Some(to.clone())).with_body(Lang::new(), body.clone());
                m.id = Some(Id(id.clone()));
                m
            })
            .collect();
        self.tx.send(Cmd::Send(stanzas)).await.unwrap();
    }

    /// Sends one chat message.
    pub async fn say(&self, to: &str, id: &str, body: &str) {
        self.send_many(to, &[(id.to_owned(), body.to_owned())])
            .await;
    }

    /// Sends a raw, prepared message (chat states, no id, …).
    pub async fn send_message(&self, m: Message) {
        self.tx.send(Cmd::Send(vec![m])).await.unwrap();
    }

    /// Bodies received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.inbox
            .lock()
            .unwrap()
            .iter()
            .map(|g| g.body.clone())
            .collect()
    }

    /// Closes the stream cleanly.
    pub async fn close(self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Cmd::Close(done)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        }
        self.task.abort();
    }
}

async fn run(mut stream: Stream, mut rx: mpsc::Receiver<Cmd>, inbox: Arc<Mutex<Vec<Got>>>) {
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Send(msgs)) => {
                    for m in msgs {
                        if stream.feed(&XmppStreamElement::Stanza(Stanza::Message(m))).await.is_err() {
                            return;
                        }
                    }
                    if <Stream as SinkExt<&XmppStreamElement>>::flush(&mut stream).await.is_err() {
                        return;
                    }
                }
                Some(Cmd::Close(done)) => {
                    let _ = stream.shutdown().await;
                    let _ = tokio::time::timeout(Duration::from_secs(3), async {
                        while let Some(Ok(_)) = stream.next().await {}
                    }).await;
                    let _ = done.send(());
                    return;
                }
                None => return,
            },
            el = stream.next() => match el {
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(Stanza::Message(m))))) => {
                    if m.type_ == MessageType::Chat {
                        if let Some((_, body)) = m.get_best_body_cloned(vec![]) {
                            inbox.lock().unwrap().push(Got {
                                id: m.id.as_ref().map(|i| i.0.clone()),
                                body,
                                from: m.from.as_ref().map(|f| f.to_bare().to_string()).unwrap_or_default(),
                                wants_receipt: m.payloads.iter().any(|p| p.is("request", ns::RECEIPTS)),
                            });
                        }
                    }
                }
                Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) | Some(Err(ReadError::ParseError(_))) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}
