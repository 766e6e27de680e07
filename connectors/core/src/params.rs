//! Helpers for connector params: the validation report, and value types that accept what
//! admins (TOML), environment overrides (always strings) and the Web1on1 hub (JSON, ports
//! as strings) give us.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// A connector's params: deserialized from `[services.<id>.params]` (or the hub), then
/// validated. Every problem names its key path.
pub trait Params: DeserializeOwned + Send + Sync + std::fmt::Debug + 'static {
    /// Secret params that may instead be given as `<name>_file` (dotted paths, `*` for
    /// any table key, e.g. `tokens.*.token`).
    const SECRETS: &'static [&'static str] = &[];

    /// Checks what serde cannot: required combinations, ranges, URL shapes.
    fn validate(&self, v: &mut Validator) {
        let _ = v;
    }
}

/// One problem with the config, printed as `path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted key path, e.g. `services.website_chat.params.port`.
    pub path: String,
    /// What is wrong, never containing a secret's value.
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects issues under a key prefix.
#[derive(Debug)]
pub struct Validator {
    prefix: String,
    issues: Vec<Issue>,
}

impl Validator {
    /// Starts a report for the keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Validator {
            prefix: prefix.into(),
            issues: Vec::new(),
        }
    }

    /// Records a problem with `key` (relative to the prefix; empty for the prefix itself).
    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let path = match (self.prefix.is_empty(), key.is_empty()) {
            (_, true) => self.prefix.clone(),
            (true, false) => key.to_owned(),
            (false, false) => format!("{}.{}", self.prefix, key),
        };
        self.issues.push(Issue {
            path,
            message: message.into(),
        });
    }

    /// Requires an `http`/`https` URL with a host.
    pub fn url(&mut self, key: &str, value: &str) {
        match url::Url::parse(value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => self.error(key, format!("expected an http(s) URL, got {value:?}")),
            Err(e) => self.error(key, format!("expected an http(s) URL, got {value:?} ({e})")),
        }
    }

    /// Requires a base URL that API paths are appended to: an http(s) URL ([`url`](Self::url))
    /// without a query or fragment.
    pub fn api_base(&mut self, key: &str, value: &str) {
        self.url(key, value);
        if let Ok(u) = url::Url::parse(value)
            && (u.query().is_some() || u.fragment().is_some())
        {
            self.error(
                key,
                "must not have a query or fragment: API paths are appended to it",
            );
        }
    }

    /// Requires a non-empty value.
    pub fn non_empty(&mut self, key: &str, value: &str) {
        if value.trim().is_empty() {
            self.error(key, "must not be empty");
        }
    }

    /// The issues found.
    pub fn into_issues(self) -> Vec<Issue> {
        self.issues
    }
}

/// Implements `as_str`, `Display` and `TryFrom<String>` for a config enum of plain
/// words, so that a wrong value reads "unknown value \"x\"; expected a, b or c" whatever
/// format it came from. Use with `#[serde(try_from = "String")]`.
#[macro_export]
macro_rules! string_enum {
    ($name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $name {
            /// The config spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl ::std::convert::TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                match s.as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => {
                        let all: &[&str] = &[$($text),+];
                        Err(format!("unknown value {s:?}; expected one of {}", all.join(", ")))
                    }
                }
            }
        }
    };
}

/// A TCP port, given as a number or a string ("5222" from a Web1on1 hub).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = NumberOrString::deserialize(d)?;
        let text = raw.to_string();
        match text.trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(Port(p)),
            _ => Err(serde::de::Error::custom(format!(
                "expected an integer 1-65535, got {}",
                raw.quoted()
            ))),
        }
    }
}

/// A duration, given as humantime text (`"10s"`, `"24h"`, `"1m 30s"`) or whole seconds,
/// at most [`DurationParam::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationParam(pub Duration);

impl DurationParam {
    /// The longest duration any key takes: ten years (of 365 days). Anything longer is
    /// a typo, and unbounded values overflow when added to a timestamp at run time.
    pub const MAX: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
}

impl<'de> Deserialize<'de> for DurationParam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expected = |got: String| {
            serde::de::Error::custom(format!(
                "expected a duration such as \"10s\" or \"5m\", got {got}"
            ))
        };
        let parsed = match NumberOrString::deserialize(d)? {
            NumberOrString::Number(n) if n >= 0 => Duration::from_secs(n as u64),
            NumberOrString::String(s) => {
                humantime::parse_duration(s.trim()).map_err(|_| expected(format!("{s:?}")))?
            }
            other => return Err(expected(other.quoted())),
        };
        if parsed > Self::MAX {
            return Err(serde::de::Error::custom(format!(
                "must be at most 10 years, got {}",
                humantime::format_duration(parsed)
            )));
        }
        Ok(DurationParam(parsed))
    }
}

/// An id given as a string or a number (`assignee_id = 846956` or `"846956"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdString(pub String);

impl<'de> Deserialize<'de> for IdString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(IdString(NumberOrString::deserialize(d)?.to_string()))
    }
}

impl std::fmt::Display for IdString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a number or a string")]
enum NumberOrString {
    Number(i64),
    String(String),
}

impl NumberOrString {
    fn quoted(&self) -> String {
        match self {
            NumberOrString::Number(n) => n.to_string(),
            NumberOrString::String(s) => format!("{s:?}"),
        }
    }
}

impl std::fmt::Display for NumberOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NumberOrString::Number(n) => write!(f, "{n}"),
            NumberOrString::String(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_numbers_and_strings() {
        assert_eq!(serde_json::from_str::<Port>("5222").unwrap(), Port(5222));
        assert_eq!(
            serde_json::from_str::<Port>("\"5223\"").unwrap(),
            Port(5223)
        );
        let err = serde_json::from_str::<Port>("\"abc\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("expected an integer 1-65535, got \"abc\""),
            "{err}"
        );
        assert!(serde_json::from_str::<Port>("0").is_err());
        assert!(serde_json::from_str::<Port>("70000").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            serde_json::from_str::<DurationParam>("\"1m 30s\"")
                .unwrap()
                .0,
            Duration::from_secs(90)
        );
        assert_eq!(
            serde_json::from_str::<DurationParam>("10").unwrap().0,
            Duration::from_secs(10)
        );
        assert!(serde_json::from_str::<DurationParam>("\"soon\"").is_err());
    }

    /// `"18446744073709551615s"` passed validation, then panicked the supervisor when it
    /// was added to a timestamp (issue 14, item 10).
    #[test]
    fn durations_are_bounded() {
        for text in ["\"18446744073709551615s\"", "\"3651d\"", "315360001"] {
            let err = serde_json::from_str::<DurationParam>(text)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("must be at most 10 years, got "),
                "{text}: {err}"
            );
        }
        assert_eq!(
            serde_json::from_str::<DurationParam>("\"3650d\"")
                .unwrap()
                .0,
            DurationParam::MAX
        );
    }

    #[test]
    fn validator_names_paths() {
        let mut v = Validator::new("services.x.params");
        v.url("api_base", "ftp://example.com");
        v.non_empty("token", " ");
        let issues: Vec<String> = v.into_issues().iter().map(|i| i.to_string()).collect();
        assert_eq!(
            issues[0],
            "services.x.params.api_base: expected an http(s) URL, got \"ftp://example.com\""
        );
        assert_eq!(issues[1], "services.x.params.token: must not be empty");
    }
}
