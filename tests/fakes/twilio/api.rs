//! A fake Twilio REST API on 127.0.0.1:0: the Messages and Accounts endpoints, checking
//! requests the way the spec (`twilio_api_v2010.json`) documents them and answering
//! like Twilio (201 with a sid; JSON errors `{code, message, more_info, status}`).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde_json::json;

use crate::common::FakeServer;

use super::requests::{
    ACCOUNT_SID, AUTH_TOKEN, path_of, post_form, status_params, twilio_signature,
};

/// One request to the Messages endpoint.
#[derive(Debug, Clone)]
pub struct SendRequest {
    /// When it arrived.
    pub at: Instant,
    /// Its form fields, in order.
    pub form: Vec<(String, String)>,
    /// What the fake answered.
    pub answered: u16,
    /// The sid of the message created, if one was.
    pub sid: Option<String>,
}

impl SendRequest {
    /// The first value of a field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer other than 201, for the next valid send.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// Twilio's JSON error.
    Error {
        status: u16,
        retry_after: Option<&'static str>,
        code: u32,
        message: &'static str,
    },
    /// The message is created and its `sent` status callback delivered to the daemon,
    /// but the answer to the send is a 503 (as if lost on the way).
    CreatedButAnswerLost { daemon: SocketAddr },
}

#[derive(Default)]
struct FakeState {
    sends: Vec<SendRequest>,
    script: VecDeque<Scripted>,
    created: u32,
    revoked: bool,
}

/// The fake Twilio API.
pub struct FakeTwilio {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    server: FakeServer,
}

impl FakeTwilio {
    /// Starts on 127.0.0.1:0.
    pub async fn start() -> FakeTwilio {
        let state: Arc<Mutex<FakeState>> = Default::default();
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{account}",
                axum::routing::get(account),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                axum::routing::post(create_message),
            )
            .with_state(state.clone());
        let server = FakeServer::spawn(app).await;
        let addr = server.addr;
        FakeTwilio {
            addr,
            state,
            server,
        }
    }

    /// The `api_base` to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues an answer for the next valid send.
    pub fn script(&self, s: Scripted) {
        self.state.lock().unwrap().script.push_back(s);
    }

    /// While set, the account's credentials are refused (as after a token rotation).
    pub fn revoke_credentials(&self, revoked: bool) {
        self.state.lock().unwrap().revoked = revoked;
    }

    /// Every send request so far.
    pub fn requests(&self) -> Vec<SendRequest> {
        self.state.lock().unwrap().sends.clone()
    }

    /// Stops listening.
    pub async fn stop(self) {
        self.server.stop().await
    }
}

/// A refusal, answered with Twilio's error body.
pub struct Refusal {
    status: u16,
    code: u32,
    message: String,
}

fn refuse(status: u16, code: u32, message: &str) -> Refusal {
    Refusal {
        status,
        code,
        message: message.to_owned(),
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.status, self.code, &self.message)
    }
}

/// Twilio's error body.
fn error(status: u16, code: u32, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        json!({"code": code, "message": message,
               "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status})
        .to_string(),
    )
        .into_response()
}

/// Checks HTTP Basic `AccountSid:AuthToken` and the account in the path.
fn authenticate(headers: &HeaderMap, account: &str, revoked: bool) -> Result<(), Refusal> {
    let expected = format!(
        "Basic {}",
        B64.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if given != expected || revoked {
        return Err(refuse(401, 20003, "Authenticate"));
    }
    if account != ACCOUNT_SID {
        return Err(refuse(404, 20404, "The requested resource was not found"));
    }
    Ok(())
}

async fn account(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(account) = account.strip_suffix(".json") else {
        return error(404, 20404, "The requested resource was not found");
    };
    let revoked = state.lock().unwrap().revoked;
    if let Err(r) = authenticate(&headers, account, revoked) {
        return r.into_response();
    }
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({"sid": ACCOUNT_SID, "friendly_name": "test", "status": "active", "type": "Full"})
            .to_string(),
    )
        .into_response()
}

fn is_sid(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Checks a create-Message request against the spec: `To` required; `From` or
/// `MessagingServiceSid`; `Body` or `MediaUrl`; SIDs and URLs well-formed.
fn check_send(form: &[(String, String)]) -> Result<(), Refusal> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    const KNOWN: &[&str] = &[
        "To",
        "From",
        "MessagingServiceSid",
        "Body",
        "MediaUrl",
        "StatusCallback",
    ];
    if let Some((k, _)) = form.iter().find(|(k, _)| !KNOWN.contains(&k.as_str())) {
        return Err(refuse(400, 21000, &format!("unexpected parameter {k}")));
    }
    for single in [
        "To",
        "From",
        "MessagingServiceSid",
        "Body",
        "StatusCallback",
    ] {
        if form.iter().filter(|(k, _)| k == single).count() > 1 {
            return Err(refuse(400, 21000, &format!("{single} given twice")));
        }
    }
    if get("To").is_none_or(str::is_empty) {
        return Err(refuse(400, 21604, "A 'To' phone number is required."));
    }
    match (get("From"), get("MessagingServiceSid")) {
        (None, None) => return Err(refuse(400, 21603, "A 'From' phone number is required.")),
        (_, Some(mg)) if !is_sid(mg, "MG") => {
            return Err(refuse(400, 21701, "The Messaging Service Sid is invalid."));
        }
        _ => {}
    }
    let media: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "MediaUrl")
        .map(|(_, v)| v.as_str())
        .collect();
    if get("Body").is_none_or(str::is_empty) && media.is_empty() {
        return Err(refuse(400, 21602, "Message body is required."));
    }
    if media.len() > 10 {
        return Err(refuse(400, 21623, "Too many media URLs"));
    }
    for url in media.iter().copied().chain(get("StatusCallback")) {
        match url::Url::parse(url) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some_and(|h| !h.contains('_')) => {}
            _ => return Err(refuse(400, 21609, &format!("Invalid URL: {url}"))),
        }
    }
    Ok(())
}

async fn create_message(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let revoked = state.lock().unwrap().revoked;
    if let Err(r) = authenticate(&headers, &account, revoked) {
        state.lock().unwrap().sends.push(SendRequest {
            at,
            form: serde_urlencoded::from_bytes(&body).unwrap_or_default(),
            answered: r.status,
            sid: None,
        });
        return r.into_response();
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/x-www-form-urlencoded" {
        return error(400, 20001, "expected a form-encoded body");
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
    let record = |answered: u16, sid: Option<String>| {
        state.lock().unwrap().sends.push(SendRequest {
            at,
            form: form.clone(),
            answered,
            sid,
        })
    };
    if let Err(r) = check_send(&form) {
        record(r.status, None);
        return r.into_response();
    }
    let scripted = state.lock().unwrap().script.pop_front();
    let new_sid = || {
        let mut s = state.lock().unwrap();
        s.created += 1;
        format!("SM{:032x}", 0xabc0000 + s.created)
    };
    match scripted {
        Some(Scripted::Error {
            status,
            retry_after,
            code,
            message,
        }) => {
            record(status, None);
            let mut r = error(status, code, message);
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            r
        }
        Some(Scripted::CreatedButAnswerLost { daemon }) => {
            let sid = new_sid();
            let callback = form
                .iter()
                .find(|(k, _)| k == "StatusCallback")
                .map(|(_, v)| v.clone())
                .expect("a StatusCallback");
            let params = status_params(&sid, "sent", None);
            let sig = twilio_signature(AUTH_TOKEN, &callback, &params);
            let answer = post_form(daemon, &path_of(&callback), &params, Some(&sig)).await;
            assert_eq!(
                answer.status, 200,
                "status callback refused: {}",
                answer.body
            );
            record(503, Some(sid));
            error(503, 20500, "Service Unavailable")
        }
        None => {
            let sid = new_sid();
            record(201, Some(sid.clone()));
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let num_media = form.iter().filter(|(k, _)| k == "MediaUrl").count();
            (
                StatusCode::CREATED,
                [("content-type", "application/json")],
                json!({
                    "account_sid": ACCOUNT_SID, "api_version": "2010-04-01",
                    "body": get("Body").unwrap_or_default(), "direction": "outbound-api",
                    "error_code": null, "error_message": null,
                    "from": get("From"), "messaging_service_sid": get("MessagingServiceSid"),
                    "num_media": num_media.to_string(), "num_segments": "1",
                    "sid": sid, "status": if get("MessagingServiceSid").is_some() { "accepted" } else { "queued" },
                    "to": get("To"),
                    "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"),
                })
                .to_string(),
            )
                .into_response()
        }
    }
}
