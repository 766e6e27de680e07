//! The compliance suite: what every connector must do, checked the same way for each.
//! A connector's `tests.rs` gives a small [`Fixture`] (params, an independent signer,
//! sample bodies, its provider's answers) and calls [`compliance_suite!`](crate::compliance_suite).
//!
//! - **Hooks** ([`hooks`]): a wrong method is 405, an unknown sub-path 404; missing or
//!   bad credentials are 401 before the body is parsed (a body that would fail to parse
//!   still gets 401) and write nothing, and a head without them never earns a full body
//!   read; signed garbage is 400 or 422 and writes nothing; one request is one ingest
//!   (for a desk: one reply, on a conversation the fixture links first); a replay stores
//!   nothing new (and is 401 where the provider's credentials are one-time).
//! - **Config** ([`config`]): `Debug` of the params never shows a secret; every
//!   validation problem names its key path.
//! - **Delivery** ([`delivery`]), against a fake provider on 127.0.0.1:0: a refusal of
//!   our credentials is transient and makes `run` fail the service (the reply is held);
//!   429 carries `Retry-After` (transient, or throttled: a wait that spends no attempt);
//!   5xx is transient; other 4xx are permanent with the provider's own text; a retry
//!   after a failure part-way sends no part twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;

use super::RecordingHost;
use super::fake::{Answer, Recorder, Request, Script};
use crate::{
    ConnState, Connector, ConnectorError, DeliveryError, HookAdmission, HookError, HookHead,
    HookRequest, OutboundMessage, Params, Registered, ServiceContext, ServiceType, Validator,
};

/// The service id the suite runs as.
pub const SERVICE_ID: &str = "svc";
/// The key prefix of its params, as validation problems name them.
pub const PREFIX: &str = "services.svc.params";
/// The API base of configs whose provider the suite never calls.
pub const NOWHERE: &str = "http://127.0.0.1:9";
/// The text of the provider's error answers, which a permanent failure must carry.
pub const PROVIDER_TEXT: &str = "the provider's own words about this message";

/// A request a provider would post to `/hooks/svc[/{subpath}]`.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Below `/hooks/svc`, without the slash.
    pub subpath: String,
    /// The raw query, if any.
    pub query: Option<String>,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Sample {
    /// A POST to the hook itself.
    pub fn new(content_type: &str, body: impl Into<Vec<u8>>) -> Sample {
        Sample {
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            ..Sample::default()
        }
    }

    /// Sets (or replaces) a header.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_owned(), value.into()));
    }

    /// `/hooks/svc[/sub][?query]`.
    pub fn path_and_query(&self) -> String {
        let mut p = format!("/hooks/{SERVICE_ID}");
        if !self.subpath.is_empty() {
            p.push('/');
            p.push_str(&self.subpath);
        }
        if let Some(q) = &self.query {
            p.push('?');
            p.push_str(q);
        }
        p
    }

    /// As the HTTP layer hands it to the connector.
    pub fn request(&self, method: Method) -> HookRequest {
        let mut headers = HeaderMap::new();
        for (n, v) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(n.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.append(n, v);
            }
        }
        HookRequest {
            head: HookHead {
                method,
                subpath: self.subpath.clone(),
                path_and_query: self.path_and_query(),
                query: self.query.clone(),
                headers,
            },
            body: Bytes::from(self.body.clone()),
        }
    }
}

/// What the suite needs of one connector.
pub trait Fixture: 'static {
    /// The type under test.
    type Type: ServiceType;

    /// Statuses with which the provider refuses our credentials (or the account's
    /// access) on a send, rather than the message.
    const REFUSALS: &'static [u16] = &[401, 403];

    /// Whether the provider's credentials are one-time (Mailgun's `token`), so that a
    /// replayed request is refused with 401 rather than taken as a duplicate.
    const REPLAY_REFUSED: bool = false;

    /// `[services.svc.params]` as JSON, for a provider API at `api_base`.
    fn params(api_base: &str) -> Value;

    /// Params that deserialize but that validation refuses, each with the keys (below
    /// the params) its problems must name.
    fn invalid() -> Vec<(Value, Vec<&'static str>)>;

    /// An unsigned request carrying contact message `n` (different `n`, different
    /// provider ids); `None` for a type without hooks.
    fn message(n: u32) -> Option<Sample> {
        let _ = n;
        None
    }

    /// Authenticates `sample` the way the provider documents it, computed here and not
    /// with the connector's code; `url` is where it is posted.
    fn sign(sample: &mut Sample, url: &str) {
        let _ = (sample, url);
    }

    /// Unsigned requests that are not what the provider sends, each with the status
    /// (400 or 422) it must get once signed. The suite adds a truncated and a non-UTF-8
    /// copy of [`message`](Self::message).
    fn garbage() -> Vec<(Sample, u16)> {
        Vec::new()
    }

    /// A message to deliver, with as many parts as the provider takes it in (two or
    /// more where it takes one request per attachment); `None` for a type that sends
    /// nothing over HTTP.
    fn outbound() -> Option<OutboundMessage> {
        None
    }

    /// Whether a request to the fake provider sends a message, and the provider's answer
    /// when it succeeds (token, account check and poll requests included).
    fn route(req: &Request) -> (bool, Answer) {
        let _ = req;
        (false, Answer::empty(404))
    }

    /// For a desk: the links the host holds before the hook checks, so that the sample
    /// replies answer a conversation of ours.
    fn links() -> Vec<crate::DeskLink> {
        Vec::new()
    }

    /// The provider's error answer, in its documented shape, carrying `text`.
    fn error(status: u16, text: &str) -> Answer {
        Answer::json(status, serde_json::json!({ "error": text }))
    }
}

type ParamsOf<F> = <<F as Fixture>::Type as ServiceType>::Params;

fn typed<F: Fixture>(json: Value) -> ParamsOf<F> {
    serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("the fixture's params do not deserialize ({e}): {json}"))
}

fn problems<F: Fixture>(p: &ParamsOf<F>) -> Vec<crate::Issue> {
    let mut v = Validator::new(PREFIX);
    p.validate(&mut v);
    v.into_issues()
}

fn build<F: Fixture>(api_base: &str) -> Arc<dyn Connector> {
    let p = typed::<F>(F::params(api_base));
    let found = problems::<F>(&p);
    assert!(
        found.is_empty(),
        "the fixture's params are invalid: {found:?}"
    );
    <F::Type as ServiceType>::build(&p).expect("valid params build")
}

fn context<F: Fixture>() -> (ServiceContext, Arc<RecordingHost>) {
    RecordingHost::context(SERVICE_ID, <F::Type as ServiceType>::NAME, None)
}

fn signed<F: Fixture>(ctx: &ServiceContext, mut s: Sample) -> Sample {
    let url = format!("{}{}", ctx.public_url, s.path_and_query());
    F::sign(&mut s, &url);
    s
}

/// `signed` with each credential the signer added or changed altered in one character:
/// in the headers, in a path token, and in the body where the signer wrote its
/// credentials there (Mailgun's form fields).
fn tampered(unsigned: &Sample, signed: &Sample) -> Sample {
    let mut out = signed.clone();
    if unsigned.body != signed.body {
        let (a, b) = (&unsigned.body, &signed.body);
        let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let suffix = a[prefix..]
            .iter()
            .rev()
            .zip(b[prefix..].iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        let changed = prefix..b.len() - suffix;
        if !changed.is_empty() {
            let i = changed.start + changed.len() / 2;
            out.body[i] = match out.body[i] {
                c @ (b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y') => c + 1,
                b'9' => b'0',
                b'z' => b'a',
                b'Z' => b'A',
                _ => b'x',
            };
        }
    }
    for (name, value) in &mut out.headers {
        let before = unsigned.headers.iter().find(|(n, _)| n == name);
        if before.is_some_and(|(_, v)| v == value) {
            continue;
        }
        let mut chars: Vec<char> = value.chars().collect();
        let i = chars.len() / 2;
        if let Some(c) = chars.get_mut(i) {
            *c = match *c {
                '0'..='8' | 'a'..='y' | 'A'..='Y' => char::from(*c as u8 + 1),
                '9' => '0',
                'z' => 'a',
                'Z' => 'A',
                _ => 'x',
            };
        }
        *value = chars.into_iter().collect();
    }
    if out.subpath != unsigned.subpath {
        // A path token (a desk its provider cannot sign for): alter it the same way.
        out.subpath = alter_one(&out.subpath);
    }
    out
}

/// `s` with its first alphanumeric character changed.
fn alter_one(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if let Some(c) = chars.iter_mut().find(|c| c.is_ascii_alphanumeric()) {
        *c = if *c == 'x' { 'y' } else { 'x' };
    }
    chars.into_iter().collect()
}

fn expect_status(
    what: &str,
    got: Result<crate::HookResponse, HookError>,
    allowed: &[u16],
) -> HookError {
    match got {
        Err(e) if allowed.contains(&e.status().as_u16()) => e,
        Err(e) => panic!("{what}: expected {allowed:?}, got {} ({e})", e.status()),
        Ok(r) => panic!(
            "{what}: expected {allowed:?}, got {} ({:?})",
            r.status, r.body
        ),
    }
}

/// The hook checks; nothing for a type whose fixture has no [`Fixture::message`].
pub async fn hooks<F: Fixture>() {
    let Some(first) = F::message(1) else {
        return;
    };
    let c = build::<F>(NOWHERE);
    assert!(
        c.hooks().is_some(),
        "the fixture has messages but the type no hooks"
    );
    let (ctx, host) = context::<F>();
    let seeded = F::links();
    host.recorded().links.extend(seeded.iter().cloned());
    let untouched = |h: &RecordingHost| {
        let mut rec = h.recorded();
        let links = std::mem::take(&mut rec.links);
        let nothing = rec.wrote_nothing() && links == seeded;
        rec.links = links;
        nothing
    };
    let desk = <F::Type as ServiceType>::DESK;
    let send = |s: &Sample, m: Method| c.handle_webhook(&ctx, s.request(m));

    let good = signed::<F>(&ctx, first.clone());
    expect_status("a GET", send(&good, Method::GET).await, &[405]);
    let elsewhere = signed::<F>(
        &ctx,
        Sample {
            subpath: "no-such-hook".into(),
            ..first.clone()
        },
    );
    expect_status(
        "an unknown sub-path",
        send(&elsewhere, Method::POST).await,
        &[404],
    );

    // Credentials: missing, or altered; over the real message and over a body that a
    // parser would refuse with 400, so a 401 for it shows nothing was parsed first.
    let junk = Sample {
        body: b"{\"not\": \"what the provider sends\"".to_vec(),
        ..first.clone()
    };
    for (name, unsigned) in [("a message", &first), ("a malformed body", &junk)] {
        let what = format!("{name} without credentials");
        expect_status(&what, send(unsigned, Method::POST).await, &[401]);
        let bad = tampered(unsigned, &signed::<F>(&ctx, unsigned.clone()));
        let what = format!("{name} with altered credentials");
        expect_status(&what, send(&bad, Method::POST).await, &[401]);
        // The head alone, as the daemon checks it before reading the body: refused, or
        // admitted to a bounded read of a body that authenticates itself — never to a
        // full read.
        let head = unsigned.request(Method::POST).head;
        let what = format!("{name} without credentials, by its head");
        match c.authorize_hook(&ctx, &head) {
            Err(e) => assert_eq!(e.status().as_u16(), 401, "{what}: {e}"),
            Ok(HookAdmission::Signed) => {
                panic!("{what}: admitted to a full body read")
            }
            Ok(HookAdmission::BodyAuthenticated { .. }) => {
                // Authenticated by the body: the whole request must still be refused.
                expect_status(&what, send(unsigned, Method::POST).await, &[401]);
            }
        }
    }
    assert!(
        untouched(&host),
        "a refused request wrote: {:?}",
        host.recorded()
    );

    // Signed garbage.
    let mut garbage = F::garbage();
    let half = first.body.len() / 2;
    garbage.push((
        Sample {
            body: first.body[..half].to_vec(),
            ..first.clone()
        },
        0,
    ));
    let mut latin1 = first.body.clone();
    if let Some(b) = latin1.iter_mut().find(|b| b.is_ascii_alphabetic()) {
        *b = 0xe9;
    }
    garbage.push((
        Sample {
            body: latin1,
            ..first.clone()
        },
        400,
    ));
    for (i, (sample, status)) in garbage.into_iter().enumerate() {
        let s = signed::<F>(&ctx, sample);
        let allowed: &[u16] = if status == 0 { &[400, 422] } else { &[status] };
        let what = format!(
            "signed garbage #{i} ({:?})",
            String::from_utf8_lossy(&s.body)
        );
        expect_status(&what, send(&s, Method::POST).await, allowed);
    }
    assert!(
        untouched(&host),
        "signed garbage wrote: {:?}",
        host.recorded()
    );

    // One request, one ingest; a replay stores nothing new; another message does.
    let ok = |r: Result<crate::HookResponse, HookError>, what: &str| match r {
        Ok(resp) if resp.status.is_success() => resp,
        other => panic!("{what}: {other:?}"),
    };
    ok(send(&good, Method::POST).await, "a signed message");
    let ids = |h: &RecordingHost| -> Vec<String> {
        let rec = h.recorded();
        if desk {
            let mut keys: Vec<String> = Vec::new();
            for r in &rec.replies {
                if !keys.contains(&r.idempotency_key) {
                    keys.push(r.idempotency_key.clone());
                }
            }
            return keys;
        }
        rec.stored().iter().map(|m| m.external_id.clone()).collect()
    };
    let writes = |h: &RecordingHost| {
        let rec = h.recorded();
        if desk {
            rec.replies.len()
        } else {
            rec.ingests.len()
        }
    };
    let once = ids(&host);
    assert_eq!(writes(&host), 1, "one request, one ingest");
    assert!(!once.is_empty(), "the sample message stored nothing");
    if F::REPLAY_REFUSED {
        expect_status("a replay", send(&good, Method::POST).await, &[401]);
    } else {
        ok(send(&good, Method::POST).await, "a replay");
    }
    assert_eq!(ids(&host), once, "a replay stores nothing new");
    let second = signed::<F>(&ctx, F::message(2).expect("a second message"));
    ok(send(&second, Method::POST).await, "a second message");
    let twice = ids(&host);
    assert!(twice.len() > once.len(), "message 2 has ids of its own");
    let taken = if F::REPLAY_REFUSED { 2 } else { 3 };
    assert_eq!(writes(&host), taken, "one ingest per request taken");
}

/// The values at `paths` (dotted, `*` for any key) of `json`.
fn values_at(json: &Value, paths: &[&str]) -> Vec<String> {
    fn walk(v: &Value, path: &[&str], out: &mut Vec<String>) {
        let Some((head, rest)) = path.split_first() else {
            if let Some(s) = v.as_str() {
                out.push(s.to_owned());
            }
            return;
        };
        let Some(obj) = v.as_object() else { return };
        for (k, child) in obj {
            if *head == "*" || head == k {
                walk(child, rest, out);
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        let segments: Vec<&str> = p.split('.').collect();
        walk(json, &segments, &mut out);
    }
    out.retain(|s| s.len() >= 4);
    out
}

/// The config checks.
pub fn config<F: Fixture>() {
    let json = F::params(NOWHERE);
    let secrets = values_at(&json, ParamsOf::<F>::SECRETS);
    assert!(
        ParamsOf::<F>::SECRETS.is_empty() || !secrets.is_empty(),
        "the fixture's params carry none of the secrets {:?}",
        ParamsOf::<F>::SECRETS
    );
    let shown = format!(
        "{:?} {:?}",
        typed::<F>(json.clone()),
        Registered::<F::Type>::erase(typed::<F>(json.clone()))
    );
    for s in &secrets {
        assert!(!shown.contains(s.as_str()), "Debug shows a secret: {shown}");
    }
    assert!(problems::<F>(&typed::<F>(json)).is_empty());

    let invalid = F::invalid();
    assert!(!invalid.is_empty(), "the fixture has no invalid params");
    for (bad, keys) in invalid {
        let found = problems::<F>(&typed::<F>(bad.clone()));
        let named: BTreeSet<String> = found
            .iter()
            .map(|i| {
                i.path
                    .strip_prefix(&format!("{PREFIX}."))
                    .unwrap_or_else(|| panic!("a problem outside the params: {i}"))
                    .to_owned()
            })
            .collect();
        let expected: BTreeSet<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        assert_eq!(named, expected, "problems of {bad}: {found:?}");
        let bad_secrets = values_at(&bad, ParamsOf::<F>::SECRETS);
        for i in &found {
            for s in &bad_secrets {
                assert!(
                    !i.message.contains(s.as_str()),
                    "a problem shows a secret: {i}"
                );
            }
        }
    }
}

/// A connector against `provider`, with a fresh context.
fn fresh<F: Fixture>(
    provider: &Recorder,
) -> (Arc<dyn Connector>, ServiceContext, Arc<RecordingHost>) {
    let (ctx, host) = context::<F>();
    (build::<F>(&provider.url("")), ctx, host)
}

/// Sends the provider answered 2xx, after the first `skip` requests: their bodies.
fn accepted_sends(provider: &Recorder, skip: usize) -> Vec<Bytes> {
    provider
        .requests()
        .into_iter()
        .skip(skip)
        .filter(|s| s.send && (200..300).contains(&s.status))
        .map(|s| s.request.body)
        .collect()
}

/// The delivery checks; nothing for a type whose fixture has no
/// [`Fixture::outbound`].
pub async fn delivery<F: Fixture>() {
    let Some(out) = F::outbound() else {
        return;
    };
    let provider = Recorder::start(F::route).await;

    let (c, ctx, _) = fresh::<F>(&provider);
    c.deliver_message(&ctx, &out)
        .await
        .expect("a delivery the provider accepts");
    let parts = accepted_sends(&provider, 0).len();
    assert!(parts >= 1, "the provider saw no send");

    // Refused credentials: held (transient), and the service fails.
    for &status in F::REFUSALS {
        provider.script(Script::All(F::error(status, PROVIDER_TEXT)));
        let (c, ctx, host) = fresh::<F>(&provider);
        let run = tokio::spawn({
            let (c, ctx) = (c.clone(), ctx.clone());
            async move { c.run(&ctx).await }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !host.recorded().states.contains(&ConnState::Connected) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "run never reported connected: {:?}",
                host.recorded().states
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match c.deliver_message(&ctx, &out).await {
            Err(DeliveryError::Transient { .. }) => {}
            other => panic!("HTTP {status} on a send: expected transient, got {other:?}"),
        }
        match tokio::time::timeout(Duration::from_secs(5), run).await {
            Ok(Ok(Err(ConnectorError::Auth(_)))) => {}
            other => panic!("HTTP {status} on a send: run should fail the service, got {other:?}"),
        }
        ctx.shutdown.cancel();
    }

    // 429 with Retry-After, 5xx, and other 4xx.
    let retry = F::error(429, PROVIDER_TEXT).with_header("retry-after", "7");
    provider.script(Script::Nth(1, retry));
    let (c, ctx, _) = fresh::<F>(&provider);
    match c.deliver_message(&ctx, &out).await {
        Err(
            DeliveryError::Transient { retry_after, .. }
            | DeliveryError::Throttled { retry_after, .. },
        ) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)), "Retry-After: 7")
        }
        other => panic!("HTTP 429: expected transient or throttled, got {other:?}"),
    }
    provider.script(Script::Nth(1, F::error(503, PROVIDER_TEXT)));
    let (c, ctx, _) = fresh::<F>(&provider);
    assert!(
        matches!(
            c.deliver_message(&ctx, &out).await,
            Err(DeliveryError::Transient { .. })
        ),
        "HTTP 503 is transient"
    );
    let permanent = [400, 401, 403, 404, 422]
        .into_iter()
        .filter(|s| !F::REFUSALS.contains(s));
    for status in permanent {
        provider.script(Script::Nth(1, F::error(status, PROVIDER_TEXT)));
        let (c, ctx, _) = fresh::<F>(&provider);
        match c.deliver_message(&ctx, &out).await {
            Err(DeliveryError::Permanent { reason }) => assert!(
                reason.contains(PROVIDER_TEXT),
                "HTTP {status}: the reason should carry the provider's text: {reason}"
            ),
            other => panic!("HTTP {status}: expected permanent, got {other:?}"),
        }
    }

    // A retry after a failure part-way (or at once, for one part) sends each part once.
    let mark = provider.requests().len();
    provider.script(Script::Nth(parts.min(2), F::error(503, PROVIDER_TEXT)));
    let (c, ctx, _) = fresh::<F>(&provider);
    assert!(
        c.deliver_message(&ctx, &out).await.is_err(),
        "the scripted 503"
    );
    let retry = OutboundMessage {
        attempt: 2,
        ..out.clone()
    };
    c.deliver_message(&ctx, &retry)
        .await
        .expect("the retry is accepted");
    let sent = accepted_sends(&provider, mark);
    assert_eq!(sent.len(), parts, "each part accepted once: {sent:?}");
    let distinct: BTreeSet<&Bytes> = sent.iter().collect();
    assert_eq!(distinct.len(), sent.len(), "a part sent twice: {sent:?}");
    provider.stop().await;
}

/// An agent's message with `text` and an attachment per URL of `files`, on a
/// conversation with the provider's id `thread` (if any) and contact `contact`.
pub fn outbound(
    thread: Option<&str>,
    contact: &str,
    text: &str,
    files: &[&str],
) -> OutboundMessage {
    let t = jiff::Timestamp::UNIX_EPOCH;
    let contact = crate::Contact {
        id: "1".into(),
        service_id: SERVICE_ID.into(),
        external_id: contact.into(),
        name: Some("Mary".into()),
        email: None,
        phone: None,
    };
    OutboundMessage {
        message: crate::Message {
            id: "7".into(),
            conversation_id: "1".into(),
            service_id: SERVICE_ID.into(),
            direction: crate::Direction::Outbound,
            external_id: None,
            text: Some(text.into()),
            attachments: files
                .iter()
                .map(|url| crate::Attachment {
                    url: (*url).into(),
                    content_type: None,
                    name: None,
                })
                .collect(),
            author: crate::Author {
                kind: crate::AuthorType::Agent,
                name: Some("Anna".into()),
            },
            status: crate::MessageStatus::Pending,
            error: None,
            created_at: t,
        },
        conversation: crate::Conversation {
            id: "1".into(),
            service_id: SERVICE_ID.into(),
            organization: "default".into(),
            external_id: thread.map(str::to_owned),
            status: crate::ConversationStatus::Open,
            contact,
            created_at: t,
            updated_at: t,
            last_message_at: Some(t),
            desk: None,
            desk_external_id: None,
        },
        attempt: 1,
        idempotency_key: format!("{SERVICE_ID}-7"),
    }
}

/// Runs `fut` on a fresh runtime (the suite's tests need no `tokio` dependency of the
/// connector's own).
pub fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(fut)
}

/// The suite as three tests of the calling crate, for `$fixture` (a [`Fixture`]).
#[macro_export]
macro_rules! compliance_suite {
    ($fixture:ty) => {
        #[test]
        fn compliance_hooks() {
            $crate::testkit::compliance::block_on($crate::testkit::compliance::hooks::<$fixture>())
        }

        #[test]
        fn compliance_config() {
            $crate::testkit::compliance::config::<$fixture>()
        }

        #[test]
        fn compliance_delivery() {
            $crate::testkit::compliance::block_on(
                $crate::testkit::compliance::delivery::<$fixture>(),
            )
        }
    };
}
