//! End-to-end: a SmartSupp visitor (a real Prosody on loopback and an XMPP client
//! written for the tests) routed to a fake nimchat desk (issue 16): the visitor's
//! messages reach the desk as contact + conversation + messages, the agent's signed
//! reply reaches the visitor, a private note does not.
#![cfg(all(feature = "smartsupp", feature = "nimchat", feature = "api"))]

mod common;
#[path = "fakes/nimchat.rs"]
mod nimchat;
#[path = "fakes/smartsupp/prosody.rs"]
mod prosody;
#[path = "fakes/smartsupp/visitor.rs"]
mod visitor;

use std::time::Duration;

use common::*;
use nimchat::*;
use prosody::{Prosody, Security};
use serde_json::json;
use visitor::Visitor;

const T: Duration = Duration::from_secs(20);
const AGENT: (&str, &str) = ("agent", "agent-secret-1");
const VISITOR: (&str, &str) = ("visitor", "visitor-secret-1");
const AGENT_JID: &str = "agent@localhost";

fn config(dir: &std::path::Path, port: u16, fake: &FakeNimchat) -> String {
    format!(
        r#"{base}{api}
[services.chat]
type = "smartsupp"
desk = "desk"
[services.chat.params]
jid = "{AGENT_JID}"
host = "127.0.0.1"
port = {port}
password = "{password}"
tls = "none"

[services.desk]
type = "nimchat"
[services.desk.params]
base_url = "{url}"
inbox_identifier = "{INBOX}"
hmac_token = "{HMAC_TOKEN}"
webhook_secret = "{SECRET}"
"#,
        base = base_config(dir),
        api = api_service(""),
        password = AGENT.1,
        url = fake.url()
    )
}

#[tokio::test]
async fn a_visitor_reaches_the_desk_and_the_agents_reply_reaches_the_visitor() {
    let xmpp = Prosody::start(Security::Plain, &[AGENT, VISITOR], "info");
    let mut fake = FakeNimchat::start().await;
    let h = Harness::start(|dir| config(dir, xmpp.port, &fake));
    h.api.wait_state_within("chat", "connected", T).await;
    let visitor = Visitor::connect(xmpp.port, VISITOR.0, VISITOR.1).await;
    visitor
        .say(AGENT_JID, "v-1", "Hello, is anyone there?")
        .await;
    visitor
        .say(AGENT_JID, "v-2", "I need help with my order")
        .await;

    let at_desk = eventually(T, "both messages at the desk", || async {
        let all = fake.all_messages();
        (all.len() >= 2).then_some(all)
    })
    .await;
    let texts: Vec<&str> = at_desk.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        texts,
        ["Hello, is anyone there?", "I need help with my order"]
    );
    let contacts = fake.contacts();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    let convs = fake.conversations();
    assert_eq!(convs.len(), 1, "{convs:?}");
    let theirs = convs[0].id;

    let d = &h.daemon;
    let now = jiff::Timestamp::now().as_second();
    let note = fake.agent_message(theirs, "internal: VIP visitor", json!({"private": true}));
    assert_eq!(
        post_webhook(d.addr, "/hooks/desk", &note, Some(SECRET), now, "dlv-n").await,
        200
    );
    let reply = fake.agent_message(theirs, "Hi! Anna here, which order?", json!({}));
    assert_eq!(
        post_webhook(d.addr, "/hooks/desk", &reply, Some(SECRET), now, "dlv-r").await,
        200
    );
    let got = eventually(T, "the reply at the visitor", || async {
        visitor
            .inbox
            .lock()
            .unwrap()
            .iter()
            .find(|g| g.body == "Hi! Anna here, which order?")
            .cloned()
    })
    .await;
    assert_eq!(got.from, AGENT_JID);
    assert!(
        !visitor.bodies().iter().any(|b| b.contains("VIP")),
        "a private note reached the visitor: {:?}",
        visitor.bodies()
    );
    assert_eq!(fake.problems(), Vec::<String>::new());
    visitor.close().await;
    h.finish();
    fake.down().await;
}
