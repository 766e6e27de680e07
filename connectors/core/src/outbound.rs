//! Outgoing HTTP: the one client policy every request of the daemon shares. Redirects
//! are never followed: a 302 would turn a signed POST into a GET that "succeeds", and a
//! 307 would re-send the signed body, signature included, wherever the target points.

use std::time::Duration;

/// Why a request failed when the far side answered with a redirect. It is the error
/// inside the `reqwest::Error` that [`redirect_policy`] produces, and what
/// [`crate::DeliveryError::from_reqwest`] reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("answered HTTP {status} redirecting to {location}; redirects are not followed")]
pub struct Redirected {
    /// The 3xx status.
    pub status: u16,
    /// Where it pointed, without any user name or password the URL carried.
    pub location: String,
}

/// Stops at the first redirect with a [`Redirected`] error naming where it pointed.
/// (A 3xx without a usable `Location` is not a redirect to reqwest: it comes back as an
/// answer, and [`crate::DeliveryError::from_status`] counts it as a failed attempt.)
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let mut url = attempt.url().clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let mut location = url.to_string();
        if location.len() > 200 {
            let mut end = 200;
            while !location.is_char_boundary(end) {
                end -= 1;
            }
            location.truncate(end);
            location.push('…');
        }
        let status = attempt.status().as_u16();
        attempt.error(Redirected { status, location })
    })
}

/// A client builder with the daemon's policy: redirects refused ([`redirect_policy`]),
/// a 10 s connect timeout and a 30 s overall timeout (requests may set their own).
/// Build every `reqwest::Client` from this.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .redirect(redirect_policy())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
}

/// The [`Redirected`] a request failed with, if that is why it failed.
pub fn redirected(err: &reqwest::Error) -> Option<&Redirected> {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<Redirected>() {
            return Some(r);
        }
        source = e.source();
    }
    None
}
