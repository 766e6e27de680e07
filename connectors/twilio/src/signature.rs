//! `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the Auth Token, over the URL
//! Twilio called followed by every POST parameter's name and value, sorted by name.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use switchboard_core::Secret;

/// The header Twilio signs its requests with.
pub const HEADER: &str = "x-twilio-signature";

/// The MAC over `url` and `params` (any order; sorted here as Twilio sorts them).
fn mac(token: &Secret, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Byte order is Twilio's "Unix-style case-sensitive" sort; a name given twice (never
    // in Twilio's own requests) is ordered by value, as its helper libraries do.
    sorted.sort();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(token.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The signature Twilio would send for a request to `url` with `params`.
pub fn sign(token: &Secret, url: &str, params: &[(String, String)]) -> String {
    B64.encode(mac(token, url, params).finalize().into_bytes())
}

/// Whether `presented` signs a request to `public_url` + `path_and_query` with `params`.
/// Like Twilio's own validators, the URL is also tried with its default port added
/// (`https://host:443/…`) or removed, since which form Twilio signs depends on how the
/// webhook URL was entered in its console.
pub fn verify(
    token: &Secret,
    public_url: &str,
    path_and_query: &str,
    params: &[(String, String)],
    presented: &str,
) -> bool {
    let Ok(presented) = B64.decode(presented.trim()) else {
        return false;
    };
    base_variants(public_url).iter().any(|base| {
        let url = format!("{base}{path_and_query}");
        // `verify_slice` compares in constant time.
        mac(token, &url, params).verify_slice(&presented).is_ok()
    })
}

/// `base` as given, plus the same URL with its scheme's default port added when it has
/// no port, or removed when it names the default one.
pub fn base_variants(base: &str) -> Vec<String> {
    let mut out = vec![base.to_owned()];
    let Some((scheme, rest)) = base.split_once("://") else {
        return out;
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match split_port(authority) {
        (host, None) => out.push(format!("{scheme}://{host}:{default}{path}")),
        (host, Some(port)) if port == default => out.push(format!("{scheme}://{host}{path}")),
        (_, Some(_)) => {}
    }
    out
}

/// Splits `host[:port]`, leaving IPv6 literals (`[::1]`) whole.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.starts_with('[') || host.ends_with(']')) =>
        {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The example Twilio publishes in its security documentation and helper libraries.
    #[test]
    fn matches_twilios_published_example() {
        let token = Secret::new("12345");
        let params = pairs(&[
            ("To", "+18005551212"),
            ("CallSid", "CA1234567890ABCDE"),
            ("From", "+14158675310"),
            ("Digits", "1234"),
            ("Caller", "+14158675310"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(sign(&token, url, &params), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        assert!(verify(
            &token,
            "https://mycompany.com",
            "/myapp.php?foo=1&bar=2",
            &params,
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        ));
        // Any change to the URL, a parameter or the key breaks it.
        let check = |base: &str, pq: &str, p: &[(String, String)], t: &str| {
            verify(&Secret::new(t), base, pq, p, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
        };
        assert!(!check(
            "https://mycompany.com",
            "/myapp.php?foo=1&bar=3",
            &params,
            "12345"
        ));
        assert!(!check(
            "http://mycompany.com",
            "/myapp.php?foo=1&bar=2",
            &params,
            "12345"
        ));
        assert!(!check(
            "https://mycompany.com",
            "/myapp.php?foo=1&bar=2",
            &params,
            "12346"
        ));
        let mut tampered = params.clone();
        tampered[0].1 = "+18005551213".into();
        assert!(!check(
            "https://mycompany.com",
            "/myapp.php?foo=1&bar=2",
            &tampered,
            "12345"
        ));
        assert!(!verify(
            &token,
            "https://mycompany.com",
            "/myapp.php",
            &params,
            "not base64!"
        ));
        assert!(!verify(
            &token,
            "https://mycompany.com",
            "/myapp.php",
            &params,
            ""
        ));
    }

    #[test]
    fn default_ports_are_added_or_removed() {
        assert_eq!(
            base_variants("https://sb.example.com"),
            ["https://sb.example.com", "https://sb.example.com:443"]
        );
        assert_eq!(
            base_variants("https://sb.example.com:443/prefix"),
            [
                "https://sb.example.com:443/prefix",
                "https://sb.example.com/prefix"
            ]
        );
        assert_eq!(
            base_variants("http://sb.example.com/x"),
            ["http://sb.example.com/x", "http://sb.example.com:80/x"]
        );
        assert_eq!(
            base_variants("http://sb.example.com:80"),
            ["http://sb.example.com:80", "http://sb.example.com"]
        );
        // A port that is not the scheme's default is part of the address: kept as is.
        assert_eq!(
            base_variants("http://127.0.0.1:8080"),
            ["http://127.0.0.1:8080"]
        );
        assert_eq!(
            base_variants("https://sb.example.com:80"),
            ["https://sb.example.com:80"]
        );
        assert_eq!(
            base_variants("http://[::1]"),
            ["http://[::1]", "http://[::1]:80"]
        );
        assert_eq!(
            base_variants("http://[::1]:80"),
            ["http://[::1]:80", "http://[::1]"]
        );
    }

    #[test]
    fn a_signature_over_either_port_form_verifies() {
        let token = Secret::new("secret");
        let params = pairs(&[("MessageSid", "SM1"), ("Body", "hi")]);
        for signed in [
            "https://sb.example.com/hooks/s",
            "https://sb.example.com:443/hooks/s",
        ] {
            let sig = sign(&token, signed, &params);
            for public in ["https://sb.example.com", "https://sb.example.com:443"] {
                assert!(
                    verify(&token, public, "/hooks/s", &params, &sig),
                    "{signed} via {public}"
                );
            }
            assert!(!verify(
                &token,
                "https://sb.example.com:8443",
                "/hooks/s",
                &params,
                &sig
            ));
        }
    }
}
