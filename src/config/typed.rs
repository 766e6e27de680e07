//! Typing a raw config tree with every problem named by its key path: serde stops at
//! the first error, so each bad key is removed and the rest typed again.

use config::{Value, ValueKind};
use serde::de::DeserializeOwned;
use switchboard_core::Issue;

use super::tree::join;

/// Deserializes `value` as `T`, recording every unknown key and every type error with
/// its full key path. serde stops at the first error, so each bad key is removed and the
/// rest deserialized again, until what remains is clean or a required key is missing.
pub fn typed<T: DeserializeOwned>(
    value: Value,
    prefix: &str,
    issues: &mut Vec<Issue>,
) -> Option<T> {
    typed_with(value, prefix, Unknown::Error, issues)
}

/// What to do with keys the schema does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Report each as a problem (the config file: a typo must not pass silently).
    Error,
    /// Ignore them (services from the hub, which carries keys for other consumers).
    Ignore,
}

/// [`typed`] with a choice of how unknown keys count.
pub fn typed_with<T: DeserializeOwned>(
    mut value: Value,
    prefix: &str,
    unknown_keys: Unknown,
    issues: &mut Vec<Issue>,
) -> Option<T> {
    let mut bad: Vec<String> = Vec::new();
    for _ in 0..64 {
        let mut unknown = Vec::new();
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let de = serde_ignored::Deserializer::new(value.clone(), &mut record);
        let result: Result<T, _> = serde_path_to_error::deserialize(de);
        if unknown_keys == Unknown::Ignore {
            unknown.clear();
        }
        let err = match result {
            Ok(v) => {
                for key in &unknown {
                    issues.push(Issue {
                        path: join(prefix, key),
                        message: "unknown key".into(),
                    });
                }
                return (bad.is_empty() && unknown.is_empty()).then_some(v);
            }
            Err(e) => e,
        };
        let at = err.path().to_string();
        let at = if at == "." { String::new() } else { at };
        let message = clean_message(&err.inner().to_string());
        let missing = message
            .strip_prefix("missing field `")
            .or_else(|| message.strip_prefix("missing configuration field \""))
            .map(|rest| rest.trim_end_matches(['`', '"']).to_owned());
        match missing {
            Some(field) => {
                let path = join(&join(prefix, &at), &field);
                // A key removed for a type error is reported once, not again as missing.
                if !bad.contains(&path) {
                    issues.push(Issue {
                        path,
                        message: "required".into(),
                    });
                }
                // A missing key is found at the end of its table, after every other key
                // was seen: the unknown ones are all known by now.
                for key in &unknown {
                    issues.push(Issue {
                        path: join(prefix, key),
                        message: "unknown key".into(),
                    });
                }
                return None;
            }
            None => {
                let path = join(prefix, &at);
                issues.push(Issue {
                    path: path.clone(),
                    message,
                });
                bad.push(path);
                let segments: Vec<serde_path_to_error::Segment> =
                    err.path().iter().cloned().collect();
                if segments.is_empty() || !remove_path(&mut value, &segments) {
                    return None;
                }
            }
        }
    }
    None
}

/// Removes the value at `path` from a config tree; false if it is not there.
fn remove_path(value: &mut Value, path: &[serde_path_to_error::Segment]) -> bool {
    use serde_path_to_error::Segment;
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = value;
    for seg in parents {
        cur = match (seg, &mut cur.kind) {
            (Segment::Map { key }, ValueKind::Table(t)) => match t.get_mut(key) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Seq { index }, ValueKind::Array(a)) => match a.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, &mut cur.kind) {
        (Segment::Map { key }, ValueKind::Table(t)) => t.remove(key).is_some(),
        (Segment::Seq { index }, ValueKind::Array(a)) if *index < a.len() => {
            a.remove(*index);
            true
        }
        _ => false,
    }
}

/// Drops the config crate's own location suffixes; our path is more precise.
fn clean_message(m: &str) -> String {
    let m = m.split(" for key `").next().unwrap_or(m);
    let m = m.split(" in `").next().unwrap_or(m);
    m.trim().to_owned()
}
