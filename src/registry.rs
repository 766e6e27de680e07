//! The service types compiled into this build: one line per connector in
//! `src/connectors.rs`, each behind its Cargo feature, expanded here by `connectors!`. Everything the daemon needs of a type (its
//! name, secret params, parsing, building, tokens, event subscription, whether it can be
//! a desk) comes through [`switchboard_core::ServiceType`] from that line; no other file
//! of the daemon names a connector type.

use std::sync::Arc;

use config::Value;
use switchboard_core::{AnyParams, Issue, Params, Registered, ServiceType, Validator};

use crate::config::typed::{Unknown, typed_with};

/// Every type name of Web1on1 (docs/web1on1.md) and switchboard's own, compiled in or
/// not: a config naming one that is not compiled in is told which Cargo feature it
/// needs rather than that the type does not exist.
pub const KNOWN_TYPES: &[&str] = &[
    "api",
    "webhook",
    "smartsupp",
    "twilio",
    "smooch",
    "intercom",
    "gbm",
    "mailgun",
    "messenger",
    "nimchat",
    "askhandle",
    "dashly",
    "haptik",
];

/// Parses and validates the params of one type into their type-erased form.
type ParseFn = fn(Value, &str, Unknown, &mut Vec<Issue>) -> Option<Arc<dyn AnyParams>>;

/// One compiled-in service type.
#[derive(Clone, Copy)]
pub struct TypeEntry {
    /// `type = "…"`.
    pub name: &'static str,
    /// Params that may instead be given as `<name>_file` ([`Params::SECRETS`]).
    pub secrets: &'static [&'static str],
    /// Whether a service of this type can be a desk.
    pub desk: bool,
    parse: ParseFn,
}

impl TypeEntry {
    #[allow(dead_code, reason = "unused in a build without connectors")]
    const fn of<T: ServiceType>() -> TypeEntry {
        TypeEntry {
            name: T::NAME,
            secrets: <T::Params as Params>::SECRETS,
            desk: T::DESK,
            parse: parse_as::<T>,
        }
    }
}

/// Expands the list (`#[cfg(feature = "…")] crate::Type` per connector) into [`TYPES`],
/// and [`crates`], which re-exports each connector crate so that the fuzz targets reach
/// their parsers through the list instead of a second one. Tests that must cover every
/// type (`tests/hostile_bodies.rs`) expand the same file with a macro of their own.
macro_rules! connectors {
    ($( #[$cfg:meta] $krate:ident :: $ty:ident ),* $(,)?) => {
        /// The service types compiled into this build.
        pub static TYPES: &[TypeEntry] = &[$( #[$cfg] TypeEntry::of::<$krate::$ty>(), )*];

        /// The connector crates compiled into this build.
        pub mod crates {
            $( #[$cfg] pub use $krate; )*
        }
    };
}

include!("connectors.rs");

/// The compiled-in type named `kind`.
pub fn entry(kind: &str) -> Option<&'static TypeEntry> {
    TYPES.iter().find(|t| t.name == kind)
}

/// The names of the types compiled into this build.
pub fn compiled_types() -> Vec<&'static str> {
    TYPES.iter().map(|t| t.name).collect()
}

/// The message for a `type` this build cannot run.
pub fn unknown_type_message(kind: &str) -> String {
    if KNOWN_TYPES.contains(&kind) {
        format!("service type {kind:?} is not compiled into this build (Cargo feature {kind:?})")
    } else {
        format!(
            "unknown service type {kind:?}; expected one of {}",
            compiled_types().join(", ")
        )
    }
}

/// Types and validates the params of a service of the compiled-in type `entry`.
pub fn parse(
    entry: &TypeEntry,
    value: Value,
    prefix: &str,
    unknown: Unknown,
    issues: &mut Vec<Issue>,
) -> Option<Arc<dyn AnyParams>> {
    (entry.parse)(value, prefix, unknown, issues)
}

#[allow(dead_code, reason = "unused in a build without connectors")]
fn parse_as<T: ServiceType>(
    value: Value,
    prefix: &str,
    unknown: Unknown,
    issues: &mut Vec<Issue>,
) -> Option<Arc<dyn AnyParams>> {
    let params: T::Params = typed_with(value, prefix, unknown, issues)?;
    let mut v = Validator::new(prefix);
    params.validate(&mut v);
    let found = v.into_issues();
    if found.is_empty() {
        Some(Registered::<T>::erase(params))
    } else {
        issues.extend(found);
        None
    }
}
