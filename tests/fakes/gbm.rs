//! Fakes of Google for the `gbm` tests, on 127.0.0.1:0: the OAuth 2.0 token endpoint,
//! which verifies each JWT grant with the public key of a key pair made here by the
//! `openssl` CLI and checks its claims, and `conversations.messages.create`, which
//! checks the bearer token and the `Message` body as the Business Messages reference
//! describes them and answers like Google.
#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Value, json};
use sha2::Sha512;

use crate::common::FakeServer;

/// The service account's identity.
pub const CLIENT_EMAIL: &str = "switchboard@bm-partner.iam.gserviceaccount.com";
/// Its key id.
pub const KEY_ID: &str = "5e3f2a9c0b7d41e6a8c2f0d4b6e1a3c5d7f9b0a2";
/// The scope every grant must ask for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/businessmessages";

/// An RSA key pair made by the `openssl` CLI, once per test binary.
pub struct KeyPair {
    /// PKCS#8 PEM, as in a Google key file.
    pub private_pem: String,
    /// PKCS#1 DER of the public key, for verifying.
    pub public_der: Vec<u8>,
}

/// The test key pair.
pub fn key_pair() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("key.pem");
        let der = dir.path().join("pub.der");
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .output()
                .expect("the openssl CLI is installed (scripts/test.sh installs it)");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            pem.to_str().unwrap(),
        ]);
        openssl(&[
            "rsa",
            "-in",
            pem.to_str().unwrap(),
            "-RSAPublicKey_out",
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ]);
        KeyPair {
            private_pem: std::fs::read_to_string(&pem).unwrap(),
            public_der: std::fs::read(&der).unwrap(),
        }
    })
}

/// A service-account key file as Google issues it, naming `token_uri`.
pub fn key_file(token_uri: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": "bm-partner",
        "private_key_id": KEY_ID,
        "private_key": key_pair().private_pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "109876543210987654321",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/switchboard%40bm-partner.iam.gserviceaccount.com",
    })
    .to_string()
}

/// `X-Goog-Signature` for `body`: base64 HMAC-SHA512 keyed with the client token.
pub fn goog_signature(client_token: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(client_token.as_bytes()).unwrap();
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// How the fake answers the next Create Message.
#[derive(Clone, Debug)]
pub enum Answer {
    /// An error status with Google's `{"error": {code, message, status}}`.
    Error(u16, &'static str, &'static str),
    /// Creates the message, then answers 503 as if the answer were lost on the way.
    AcceptThenFail,
}

/// One token request.
#[derive(Clone, Debug)]
pub struct TokenCall {
    /// What the request did wrong; empty when it was a valid grant.
    pub problems: Vec<String>,
    /// The status it got.
    pub status: u16,
}

/// One Create Message request.
#[derive(Clone, Debug)]
pub struct Call {
    /// When it arrived.
    pub at: Instant,
    /// The conversation of its path.
    pub conversation: String,
    /// Its `Authorization` header.
    pub authorization: String,
    /// Its JSON body.
    pub body: Value,
    /// What it did wrong by the reference; empty when well-formed.
    pub problems: Vec<String>,
    /// The status it got.
    pub status: u16,
}

struct FakeState {
    /// The URL the grants must name as `aud`.
    token_url: String,
    tokens_issued: usize,
    valid_tokens: HashSet<String>,
    token_calls: Vec<TokenCall>,
    calls: Vec<Call>,
    created: HashSet<String>,
    script: VecDeque<Answer>,
}

/// The running fake.
pub struct FakeGoogle {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<FakeState>>,
    server: FakeServer,
}

impl FakeGoogle {
    /// Starts both endpoints on one loopback port.
    pub async fn start() -> FakeGoogle {
        let state = Arc::new(Mutex::new(FakeState {
            token_url: String::new(),
            tokens_issued: 0,
            valid_tokens: HashSet::new(),
            token_calls: Vec::new(),
            calls: Vec::new(),
            created: HashSet::new(),
            script: VecDeque::new(),
        }));
        let app = axum::Router::new()
            .route("/token", axum::routing::post(token))
            .route(
                "/v1/conversations/{conversation_id}/messages",
                axum::routing::post(create_message),
            )
            .fallback(undocumented)
            .with_state(state.clone());
        let server = FakeServer::spawn(app).await;
        let addr = server.addr;
        // The audience the JWT must name: known once the port is.
        state.lock().unwrap().token_url = format!("http://{addr}/token");
        FakeGoogle {
            addr,
            state,
            server,
        }
    }

    /// The API base, for `api_base`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint, for the key file's `token_uri`.
    pub fn token_url(&self) -> String {
        self.state.lock().unwrap().token_url.clone()
    }

    /// Answers the next Create Message requests in this order, then normally again.
    pub fn script(&self, answers: &[Answer]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().cloned());
    }

    /// Revokes every token issued so far.
    pub fn revoke_tokens(&self) {
        self.state.lock().unwrap().valid_tokens.clear();
    }

    /// Token requests so far.
    pub fn token_calls(&self) -> Vec<TokenCall> {
        self.state.lock().unwrap().token_calls.clone()
    }

    /// Create Message requests so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Stops listening.
    pub async fn stop(self) {
        self.server.stop().await
    }
}

/// What RFC 7523 and Google's service-account flow require of a grant: the form's
/// grant type, an RS256 JWT signed by the account's key, and its claims.
fn check_grant(st: &FakeState, headers: &HeaderMap, body: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    let ct = header(headers, "content-type");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        problems.push(format!("content-type: {ct:?}"));
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        problems.push(format!("grant_type: {:?}", field("grant_type")));
    }
    let Some(jwt) = field("assertion") else {
        problems.push("assertion: missing".into());
        return problems;
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        problems.push("assertion: not a JWS compact serialization".into());
        return problems;
    }
    let decode = |s: &str| -> Value {
        URL_SAFE_NO_PAD
            .decode(s)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    };
    let (header, claims) = (decode(parts[0]), decode(parts[1]));
    if header["alg"] != "RS256" {
        problems.push(format!("header.alg: {}", header["alg"]));
    }
    if header["kid"] != KEY_ID {
        problems.push(format!("header.kid: {}", header["kid"]));
    }
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
    let signed = format!("{}.{}", parts[0], parts[1]);
    if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key_pair().public_der)
        .verify(signed.as_bytes(), &signature)
        .is_err()
    {
        problems.push("signature: does not verify with the account's public key".into());
    }
    if claims["iss"] != CLIENT_EMAIL {
        problems.push(format!("iss: {}", claims["iss"]));
    }
    if claims["scope"] != SCOPE {
        problems.push(format!("scope: {}", claims["scope"]));
    }
    if claims["aud"] != st.token_url.as_str() {
        problems.push(format!("aud: {}, expected {}", claims["aud"], st.token_url));
    }
    let now = jiff::Timestamp::now().as_second();
    match (claims["iat"].as_i64(), claims["exp"].as_i64()) {
        (Some(iat), Some(exp)) => {
            if (iat - now).abs() > 60 {
                problems.push(format!("iat: {iat} is not now ({now})"));
            }
            if exp <= now || exp - iat > 3600 {
                problems.push(format!("exp: {exp} (iat {iat}): expired or over an hour"));
            }
        }
        _ => problems.push("iat/exp: missing".into()),
    }
    problems
}

async fn token(
    State(state): State<Arc<Mutex<FakeState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap();
    let problems = check_grant(&st, &headers, &body);
    if !problems.is_empty() {
        let description = problems.join("; ");
        st.token_calls.push(TokenCall {
            problems,
            status: 400,
        });
        let body = json!({"error": "invalid_grant", "error_description": description});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    st.tokens_issued += 1;
    let token = format!("ya29.fake-access-token-{}", st.tokens_issued);
    st.valid_tokens.insert(token.clone());
    st.token_calls.push(TokenCall {
        problems,
        status: 200,
    });
    let body = json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"});
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// What the Business Messages reference requires of a `Message` an agent creates.
fn check_message(v: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(o) = v.as_object() else {
        return vec!["body: not a JSON object".into()];
    };
    for key in o.keys() {
        if ![
            "name",
            "messageId",
            "representative",
            "suggestions",
            "fallback",
            "containsRichText",
            "text",
            "image",
            "richCard",
        ]
        .contains(&key.as_str())
        {
            problems.push(format!("unknown field {key}"));
        }
    }
    let uuid = v["messageId"].as_str().is_some_and(|id| {
        let groups: Vec<&str> = id.split('-').collect();
        groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
            && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
    });
    if !uuid {
        problems.push(format!("messageId: {} is not a UUID", v["messageId"]));
    }
    match v["representative"]["representativeType"].as_str() {
        Some("BOT" | "HUMAN") => {}
        other => problems.push(format!("representative.representativeType: {other:?}")),
    }
    if let Some(r) = v["representative"].as_object() {
        for key in r.keys() {
            if !["representativeType", "displayName", "avatarImage"].contains(&key.as_str()) {
                problems.push(format!("representative: unknown field {key}"));
            }
        }
    }
    let contents = ["text", "image", "richCard"]
        .iter()
        .filter(|k| o.contains_key(**k))
        .count();
    if contents != 1 {
        problems.push(format!("content: {contents} of text, image, richCard"));
    }
    if let Some(t) = o.get("text") {
        if !t
            .as_str()
            .is_some_and(|t| !t.is_empty() && t.chars().count() <= 3072)
        {
            problems.push("text: empty or over 3072 characters".into());
        }
    }
    if let Some(i) = o.get("image") {
        let url = i["contentInfo"]["fileUrl"].as_str().unwrap_or("");
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            problems.push("image.contentInfo.fileUrl: not a URL".into());
        }
    }
    if o.get("fallback")
        .is_some_and(|f| f.as_str().is_none_or(|f| f.chars().count() > 3072))
    {
        problems.push("fallback: over 3072 characters".into());
    }
    problems
}

fn google_error(status: u16, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": status, "message": message, "status": code}});
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

async fn create_message(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(conversation): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap();
    let authorization = header(&headers, "authorization").to_owned();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut record = Call {
        at: Instant::now(),
        conversation,
        authorization: authorization.clone(),
        body: v.clone(),
        problems: Vec::new(),
        status: 0,
    };
    let token = authorization.strip_prefix("Bearer ").unwrap_or("");
    let (status, resp) = if !st.valid_tokens.contains(token) {
        (
            401,
            google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            ),
        )
    } else {
        let ct = header(&headers, "content-type");
        if !ct.starts_with("application/json") {
            record.problems.push(format!("content-type: {ct:?}"));
        }
        record.problems.extend(check_message(&v));
        let id = v["messageId"].as_str().unwrap_or("").to_owned();
        if !record.problems.is_empty() {
            let message = record.problems.join("; ");
            (400, google_error(400, "INVALID_ARGUMENT", &message))
        } else if st.created.contains(&id) {
            // Google's create methods answer a client-assigned id that exists with
            // ALREADY_EXISTS; the reference only says a reused messageId "may" disturb
            // delivery.
            (
                409,
                google_error(409, "ALREADY_EXISTS", "Requested entity already exists"),
            )
        } else {
            match st.script.pop_front() {
                Some(Answer::Error(status, code, message)) => {
                    (status, google_error(status, code, message))
                }
                Some(Answer::AcceptThenFail) => {
                    st.created.insert(id);
                    (
                        503,
                        google_error(503, "UNAVAILABLE", "The service is currently unavailable."),
                    )
                }
                None => {
                    st.created.insert(id.clone());
                    let mut created = v.clone();
                    created["name"] = json!(format!(
                        "conversations/{}/messages/{id}",
                        record.conversation
                    ));
                    (200, (StatusCode::OK, axum::Json(created)).into_response())
                }
            }
        }
    };
    record.status = status;
    st.calls.push(record);
    resp
}

/// Any other method or path: recorded, answered 404 as Google does.
async fn undocumented(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    state.lock().unwrap().calls.push(Call {
        at: Instant::now(),
        conversation: String::new(),
        authorization: String::new(),
        body: Value::Null,
        problems: vec![format!("{method} {uri}: not a documented path")],
        status: 404,
    });
    google_error(404, "NOT_FOUND", "Requested entity was not found.")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}
