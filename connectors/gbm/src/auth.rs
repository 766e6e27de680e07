//! OAuth 2.0 for a Google service account: the key file, the RS256 JWT grant (RFC 7523)
//! to the token endpoint, and an access token cached until shortly before it expires.
//!
//! Signing uses `ring` directly (already compiled in for rustls) rather than a JWT
//! crate: one algorithm, one claim set, and no second crypto backend.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::Secret;

/// The OAuth scope of the Business Messages API.
pub const SCOPE: &str = "https://www.googleapis.com/auth/businessmessages";
/// The RFC 7523 grant type.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime asked for in the JWT; Google allows at most an hour.
const ASSERTION_LIFETIME: u64 = 3600;
/// One token request may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A service-account key, parsed and ready to sign. `Debug` shows only who it is.
#[derive(Clone)]
pub struct ServiceAccount {
    /// The account's e-mail address: the JWT's issuer.
    pub client_email: String,
    /// The key's id, sent as the JWT header's `kid`.
    pub private_key_id: Option<String>,
    /// The token endpoint the key file names.
    pub token_uri: Option<String>,
    key: Arc<RsaKeyPair>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Parses the key JSON Google issues for a service account. Errors say what is
    /// wrong without quoting the file: it holds the private key.
    pub fn parse(json: &Secret) -> Result<Self, String> {
        let v: Value = serde_json::from_str(json.expose()).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Eof => "it ends early",
                _ => "it has a syntax error",
            };
            format!(
                "the service-account key (service_account or service_account_file) is not JSON: \
                 {what} at line {}, column {}",
                e.line(),
                e.column()
            )
        })?;
        let text = |name: &str| -> Result<Option<String>, String> {
            match v.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(format!(
                    "the service-account key's \"{name}\" is not a non-empty string"
                )),
            }
        };
        if !v.is_object() {
            return Err("the service-account key is not a JSON object".into());
        }
        if let Some(kind) = text("type")?
            && kind != "service_account"
        {
            return Err(format!(
                "the key's \"type\" is {kind:?}; expected a \"service_account\" key"
            ));
        }
        let client_email =
            text("client_email")?.ok_or("the service-account key has no \"client_email\"")?;
        let pem = text("private_key")?.ok_or("the service-account key has no \"private_key\"")?;
        Ok(ServiceAccount {
            client_email,
            private_key_id: text("private_key_id")?,
            token_uri: text("token_uri")?,
            key: Arc::new(key_pair(&pem)?),
        })
    }

    /// The signed JWT that asks `audience` (the token endpoint) for an access token.
    pub fn assertion(&self, audience: &str, issued_at: u64) -> Result<String, String> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": audience,
            "iat": issued_at,
            "exp": issued_at + ASSERTION_LIFETIME,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "signing the token request failed".to_owned())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// The RSA key of a PEM block: PKCS#8 (`PRIVATE KEY`, what Google issues) or PKCS#1
/// (`RSA PRIVATE KEY`).
fn key_pair(pem: &str) -> Result<RsaKeyPair, String> {
    let bad = || "the service-account key's \"private_key\" is not a PEM private key".to_owned();
    let begin = pem.find("-----BEGIN ").ok_or_else(bad)? + "-----BEGIN ".len();
    let rest = &pem[begin..];
    let label_end = rest.find("-----").ok_or_else(bad)?;
    let label = &rest[..label_end];
    let body = &rest[label_end + 5..];
    let end = body
        .find(&format!("-----END {label}-----"))
        .ok_or_else(bad)?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(b64).map_err(|_| bad())?;
    let parsed = match label {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        _ => return Err(bad()),
    };
    parsed.map_err(|e| format!("the service-account key's \"private_key\" was refused: {e}"))
}

/// Why no access token could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The token endpoint refused the key (400 `invalid_grant`, 401, 403): an operator
    /// must fix the credentials.
    Rejected(String),
    /// Anything else (transport, 429, 5xx): worth retrying.
    Transient(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Rejected(m) | TokenError::Transient(m) => f.write_str(m),
        }
    }
}

/// An access token and when to stop using it.
struct Token {
    value: Secret,
    refresh_at: Instant,
}

/// Access tokens for one service account, fetched once and shared by every delivery
/// until shortly before they expire.
pub struct TokenSource {
    account: ServiceAccount,
    token_url: String,
    // Held across a fetch so that concurrent deliveries wait for one request instead
    // of each asking for a token.
    cached: tokio::sync::Mutex<Option<Token>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("account", &self.account)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct TokenErrorAnswer {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenSource {
    /// Tokens for `account` from `token_url`.
    pub fn new(account: ServiceAccount, token_url: String) -> Self {
        TokenSource {
            account,
            token_url,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// A token that is still good, fetching one when there is none.
    pub async fn get(&self, http: &reqwest::Client) -> Result<Secret, TokenError> {
        let mut slot = self.cached.lock().await;
        if let Some(t) = slot.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        let token = self.fetch(http).await?;
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }

    /// Forgets `rejected` (the API answered 401 to it), unless another delivery has
    /// already replaced it.
    pub async fn invalidate(&self, rejected: &Secret) {
        let mut slot = self.cached.lock().await;
        if slot.as_ref().is_some_and(|t| &t.value == rejected) {
            *slot = None;
        }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<Token, TokenError> {
        // Google checks iat/exp against its own clock, so they come from the system
        // clock, never from a shifted test clock.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let assertion = self
            .account
            .assertion(&self.token_url, now)
            .map_err(TokenError::Rejected)?;
        let started = Instant::now();
        let resp = http
            .post(&self.token_url)
            .timeout(REQUEST_TIMEOUT)
            .form(&[("grant_type", GRANT_TYPE), ("assertion", &assertion)])
            .send()
            .await
            .map_err(|e| {
                TokenError::Transient(format!(
                    "token request: {}",
                    switchboard_core::DeliveryError::from_reqwest(&e)
                ))
            })?;
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        if status.is_success() {
            let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
                TokenError::Transient("the token endpoint's answer has no access_token".into())
            })?;
            let lifetime = answer.expires_in.unwrap_or(3600);
            tracing::debug!(
                client_email = %self.account.client_email,
                expires_in = lifetime,
                "fetched an access token"
            );
            return Ok(Token {
                value: Secret::new(answer.access_token),
                refresh_at: started + refresh_after(lifetime),
            });
        }
        let e: TokenErrorAnswer = serde_json::from_slice(&body).unwrap_or_default();
        let detail = match (e.error, e.error_description) {
            (Some(code), Some(text)) => format!(": {code}: {}", truncate(&text, 300)),
            (Some(code), None) => format!(": {code}"),
            (None, Some(text)) => format!(": {}", truncate(&text, 300)),
            (None, None) => String::new(),
        };
        let reason = format!(
            "the token endpoint answered HTTP {}{detail}",
            status.as_u16()
        );
        Err(match status.as_u16() {
            400 | 401 | 403 => TokenError::Rejected(format!(
                "{reason} (check service_account for {})",
                self.account.client_email
            )),
            _ => TokenError::Transient(reason),
        })
    }
}

/// How long a token of `lifetime` seconds is used: until five minutes before it
/// expires, or half its life when it is short.
fn refresh_after(lifetime: u64) -> Duration {
    Duration::from_secs(if lifetime > 600 {
        lifetime - 300
    } else {
        lifetime / 2
    })
}

fn truncate(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use std::sync::OnceLock;

    /// A 2048-bit key made by the `openssl` CLI once per test run: PKCS#8 PEM and the
    /// public key as PKCS#1 DER, for checking signatures independently of `ring`'s
    /// signing side.
    pub struct TestKey {
        pub pem: String,
        pub public_der: Vec<u8>,
    }

    impl TestKey {
        pub fn get() -> &'static TestKey {
            static KEY: OnceLock<TestKey> = OnceLock::new();
            KEY.get_or_init(|| {
                let dir = std::env::temp_dir().join(format!("gbm-key-{}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                let pem = dir.join("key.pem");
                let der = dir.join("pub.der");
                let run = |args: &[&str]| {
                    let ok = std::process::Command::new("openssl")
                        .args(args)
                        .stderr(std::process::Stdio::null())
                        .status()
                        .expect("the openssl CLI is installed")
                        .success();
                    assert!(ok, "openssl {args:?}");
                };
                run(&[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                    pem.to_str().unwrap(),
                ]);
                run(&[
                    "rsa",
                    "-in",
                    pem.to_str().unwrap(),
                    "-RSAPublicKey_out",
                    "-outform",
                    "DER",
                    "-out",
                    der.to_str().unwrap(),
                ]);
                let key = TestKey {
                    pem: std::fs::read_to_string(&pem).unwrap(),
                    public_der: std::fs::read(&der).unwrap(),
                };
                let _ = std::fs::remove_dir_all(&dir);
                key
            })
        }
    }

    /// A key file as Google issues it.
    pub fn service_account_json(pem: &str, token_uri: Option<&str>) -> String {
        let mut v = json!({
            "type": "service_account", "project_id": "bm-test",
            "private_key_id": "0123456789abcdef", "private_key": pem,
            "client_email": "bot@bm-test.iam.gserviceaccount.com", "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        });
        if let Some(t) = token_uri {
            v["token_uri"] = json!(t);
        }
        v.to_string()
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_with_googles_claims() {
        let key = TestKey::get();
        let sa = ServiceAccount::parse(&Secret::new(service_account_json(&key.pem, None))).unwrap();
        let jwt = sa
            .assertion("https://oauth2.googleapis.com/token", 1_700_000_000)
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |s: &str| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap()
        };
        assert_eq!(
            decode(parts[0]),
            json!({"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef"})
        );
        assert_eq!(
            decode(parts[1]),
            json!({"iss": "bot@bm-test.iam.gserviceaccount.com", "scope": SCOPE,
                   "aud": "https://oauth2.googleapis.com/token",
                   "iat": 1_700_000_000u64, "exp": 1_700_003_600u64})
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key.public_der)
            .verify(signed.as_bytes(), &sig)
            .expect("the signature verifies with the public key");
        let dbg = format!("{sa:?}");
        assert!(
            dbg.contains("bot@bm-test") && !dbg.contains("PRIVATE"),
            "{dbg}"
        );
    }

    #[test]
    fn bad_key_files_are_explained_without_quoting_them() {
        let key = TestKey::get();
        let err = |json: String| ServiceAccount::parse(&Secret::new(json)).unwrap_err();
        let e = err("{\"private_key\": \"-----BEGIN PRIVATE KEY-----\nAAAA".into());
        assert!(e.contains("not JSON"), "{e}");
        assert!(!e.contains("AAAA"), "{e}");
        assert_eq!(
            err("[1]".into()),
            "the service-account key is not a JSON object"
        );
        assert_eq!(
            err(r#"{"type": "authorized_user", "client_email": "a"}"#.into()),
            "the key's \"type\" is \"authorized_user\"; expected a \"service_account\" key"
        );
        assert_eq!(
            err(json!({"type": "service_account", "private_key": key.pem}).to_string()),
            "the service-account key has no \"client_email\""
        );
        assert_eq!(
            err(json!({"client_email": "a@b", "private_key": 7}).to_string()),
            "the service-account key's \"private_key\" is not a non-empty string"
        );
        let truncated = key.pem.replace("-----END PRIVATE KEY-----", "");
        let e = err(json!({"client_email": "a@b", "private_key": truncated}).to_string());
        assert_eq!(
            e,
            "the service-account key's \"private_key\" is not a PEM private key"
        );
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let e = err(json!({"client_email": "a@b", "private_key": garbage}).to_string());
        assert!(
            e.starts_with("the service-account key's \"private_key\" was refused"),
            "{e}"
        );
        assert!(!e.contains("AAAA"), "{e}");
    }

    #[test]
    fn tokens_are_used_until_shortly_before_they_expire() {
        assert_eq!(refresh_after(3599), Duration::from_secs(3299));
        assert_eq!(refresh_after(600), Duration::from_secs(300));
        assert_eq!(refresh_after(0), Duration::ZERO);
    }
}
