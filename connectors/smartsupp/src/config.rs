//! `[services.<id>.params]` of a `smartsupp` service: the XMPP account and where its
//! server is.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use switchboard_core::{Params, Port, Secret, Validator};
use tokio_xmpp::jid::BareJid;

/// How the connection to the XMPP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum TlsMode {
    /// Plain TCP, then `<starttls/>` before authenticating (RFC 6120); refuses servers that
    /// do not offer it.
    StartTls,
    /// TLS from the first byte (XEP-0368 "direct TLS", usually port 5223).
    Direct,
    /// No encryption at all; only allowed to a loopback host (tests, a local proxy).
    None,
}

switchboard_core::string_enum!(TlsMode {
    StartTls = "starttls",
    Direct = "direct",
    None = "none",
});

/// A SmartSupp XMPP account.
#[derive(Debug, Clone, Deserialize)]
pub struct SmartsuppParams {
    /// The account's bare JID, `user@domain` (required). Its domain names the XMPP
    /// service and the TLS certificate expected from it.
    pub jid: String,
    /// The account's password (required; or `password_file`).
    pub password: Secret,
    /// The server to connect to, a host name or IP address (required). Used as given: no
    /// DNS SRV lookup.
    pub host: String,
    /// The server's port. Default 5222.
    #[serde(default = "default_port")]
    pub port: Port,
    /// `starttls` (default), `direct`, or `none` (loopback hosts only).
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    /// A PEM file of extra trust roots for the server's certificate, added to the system's.
    /// Default: none (the system's trust store only).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_port() -> Port {
    Port(5222)
}

fn default_tls() -> TlsMode {
    TlsMode::StartTls
}

impl SmartsuppParams {
    /// The account JID, parsed. Validation guarantees it is a bare JID with a local part.
    pub fn bare_jid(&self) -> Result<BareJid, String> {
        let jid = BareJid::new(self.jid.trim())
            .map_err(|e| format!("expected a JID such as \"agent@example.com\" ({e})"))?;
        if jid.node().is_none() {
            return Err("expected a JID with a user part, such as \"agent@example.com\"".into());
        }
        Ok(jid)
    }

    /// Whether `host` is a loopback address (`localhost`, 127.0.0.0/8, ::1).
    pub fn host_is_loopback(&self) -> bool {
        let host = self
            .host
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl Params for SmartsuppParams {
    const SECRETS: &'static [&'static str] = &["password"];

    fn validate(&self, v: &mut Validator) {
        if let Err(e) = self.bare_jid() {
            v.error("jid", e);
        }
        if self.password.is_empty() {
            v.error("password", "must not be empty");
        }
        v.non_empty("host", &self.host);
        if self.host.contains(['/', ' ']) || self.host.contains("://") {
            v.error(
                "host",
                format!("expected a host name or IP address, got {:?}", self.host),
            );
        }
        if self.tls == TlsMode::None && !self.host_is_loopback() {
            v.error(
                "tls",
                "\"none\" sends the password in clear text and is only allowed to a loopback \
                 host (localhost, 127.0.0.1, ::1); use \"starttls\" or \"direct\"",
            );
        }
        if let Some(path) = &self.ca_file {
            if let Err(e) = crate::tls::read_roots(path) {
                v.error("ca_file", e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<SmartsuppParams, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    fn issues(p: &SmartsuppParams) -> Vec<String> {
        let mut v = Validator::new("p");
        p.validate(&mut v);
        v.into_issues().iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn defaults_and_string_ports() {
        let p = parse(
            serde_json::json!({"jid": "agent@example.com", "password": "pw",
            "host": "xmpp.example.com", "port": "5223"}),
        )
        .unwrap();
        assert_eq!(p.port, Port(5223));
        assert_eq!(p.tls, TlsMode::StartTls);
        assert!(p.ca_file.is_none());
        assert!(issues(&p).is_empty(), "{:?}", issues(&p));
        assert!(!format!("{p:?}").contains("pw\""));
        let p =
            parse(serde_json::json!({"jid": "a@b", "password": "pw", "host": "h", "port": 5222}))
                .unwrap();
        assert_eq!(p.port, Port(5222));
    }

    #[test]
    fn cleartext_only_to_loopback() {
        for host in ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"] {
            let p = parse(
                serde_json::json!({"jid": "a@b", "password": "pw", "host": host, "tls": "none"}),
            )
            .unwrap();
            assert!(issues(&p).is_empty(), "{host}: {:?}", issues(&p));
        }
        let p = parse(
            serde_json::json!({"jid": "a@b", "password": "pw", "host": "10.0.0.1", "tls": "none"}),
        )
        .unwrap();
        let found = issues(&p);
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("p.tls: \"none\""), "{found:?}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let err =
            parse(serde_json::json!({"jid": "a@b", "password": "pw", "host": "h", "tls": "ssl"}))
                .unwrap_err();
        assert!(err.contains("unknown value \"ssl\""), "{err}");
        let p = parse(
            serde_json::json!({"jid": "no-user-part", "password": "", "host": "http://x",
            "ca_file": "/nonexistent/ca.pem"}),
        )
        .unwrap();
        let found = issues(&p);
        assert!(found.iter().any(|i| i.starts_with("p.jid: ")), "{found:?}");
        assert!(
            found.iter().any(|i| i == "p.password: must not be empty"),
            "{found:?}"
        );
        assert!(found.iter().any(|i| i.starts_with("p.host: ")), "{found:?}");
        assert!(
            found.iter().any(|i| i.starts_with("p.ca_file: ")),
            "{found:?}"
        );
    }
}
