//! Sessions of the status page: a login with an admin token sets a random session id in
//! an HttpOnly, SameSite=Strict cookie; the token itself stays on the server and never
//! travels again. A session is only as good as its token: each request looks the token
//! up afresh, so removing the token (or its admin scope) from the config ends it.
//!
//! Mutations are POST-only and refused when the browser says they come from another
//! origin (`Origin`, `Sec-Fetch-Site`): with SameSite=Strict that is defence in depth
//! against cross-site requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use switchboard_core::Secret;

/// The cookie's name.
pub const COOKIE: &str = "sb_session";
/// How long a session lasts without a new login.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions are kept; the oldest goes first.
const MAX_SESSIONS: usize = 1024;

/// The live sessions, by the SHA-256 of their id (so a lookup never compares the
/// secret id byte by byte, and the map holds no usable id).
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

struct Session {
    token: Secret,
    expires: Instant,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.map.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "Sessions({n})")
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Starts a session for `token` (already checked); returns its id for the cookie.
    pub fn start(&self, token: &str) -> Option<String> {
        let mut raw = [0u8; 32];
        SystemRandom::new().fill(&mut raw).ok()?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut map = self.map.lock().expect("sessions lock");
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            digest(&id),
            Session {
                token: Secret::new(token),
                expires: now + LIFETIME,
            },
        );
        Some(id)
    }

    /// The token of a live session.
    pub fn token(&self, id: &str) -> Option<Secret> {
        let map = self.map.lock().expect("sessions lock");
        map.get(&digest(id))
            .filter(|s| s.expires > Instant::now())
            .map(|s| Secret::new(s.token.expose()))
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        self.map.lock().expect("sessions lock").remove(&digest(id));
    }
}

/// The session id in the request's cookies.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `Set-Cookie` for a new session (`Secure` when the daemon is reached over https).
pub fn set_cookie(id: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        LIFETIME.as_secs()
    );
    HeaderValue::from_str(&v).expect("a cookie of hex and ASCII")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"
    ))
    .expect("an ASCII cookie")
}

/// Whether a state-changing request may come from where the browser says it does:
/// refused when `Sec-Fetch-Site` names another site or `Origin` another origin than
/// this daemon's (its `Host`, or `public_url`). Clients that send neither (curl, the
/// CLI) are not browsers and carry no ambient cookie risk.
pub fn same_origin(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.to_str(), Ok("same-origin" | "none")) {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let own = |scheme: &str| host.is_some_and(|h| origin == format!("{scheme}://{h}"));
    let public = public_url
        .and_then(|u| url::Url::parse(u).ok())
        .is_some_and(|u| u.origin().ascii_serialization() == origin);
    own("http") || own("https") || public
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn sessions_hold_the_token_until_ended() {
        let s = Sessions::default();
        let id = s.start("admin-token").unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(s.start("admin-token").unwrap(), id, "ids are random");
        assert_eq!(s.token(&id).unwrap().expose(), "admin-token");
        assert!(s.token(&"0".repeat(64)).is_none());
        s.end(&id);
        assert!(s.token(&id).is_none());
        assert!(!format!("{s:?}").contains("admin-token"));
    }

    #[test]
    fn the_session_count_is_bounded() {
        let s = Sessions::default();
        for _ in 0..MAX_SESSIONS + 10 {
            s.start("t").unwrap();
        }
        assert_eq!(s.map.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn the_cookie_is_read_among_others_and_must_look_like_an_id() {
        let id = "ab".repeat(32);
        let h = headers(&[("cookie", &format!("a=1; {COOKIE}={id}; b=2"))]);
        assert_eq!(cookie(&h), Some(id.as_str()));
        assert_eq!(cookie(&headers(&[("cookie", "sb_session=x")])), None);
        assert_eq!(cookie(&HeaderMap::new()), None);
        let set = set_cookie(&id, true);
        let set = set.to_str().unwrap();
        for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set_cookie(&id, false).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn cross_site_mutations_are_refused() {
        let host = ("host", "127.0.0.1:8080");
        assert!(same_origin(&headers(&[host]), None));
        assert!(same_origin(
            &headers(&[
                host,
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "same-origin")
            ]),
            None
        ));
        assert!(!same_origin(
            &headers(&[host, ("origin", "https://evil.example")]),
            None
        ));
        assert!(!same_origin(
            &headers(&[host, ("sec-fetch-site", "cross-site")]),
            None
        ));
        assert!(!same_origin(
            &headers(&[host, ("sec-fetch-site", "same-site")]),
            None
        ));
        assert!(!same_origin(&headers(&[host, ("origin", "null")]), None));
        // Behind a proxy: the public origin counts.
        assert!(same_origin(
            &headers(&[
                ("host", "internal:8080"),
                ("origin", "https://chat.example.com")
            ]),
            Some("https://chat.example.com/")
        ));
    }
}
