//! The config loader: `config::load_str` on TOML text plus environment overrides, i.e.
//! the TOML parser, the `SWITCHBOARD_…__…` overlay, typing with every problem named,
//! each service type's params and cross-checks.
//!
//! Input: TOML text, then optionally a NUL byte and `KEY=VALUE` lines, each KEY taken as
//! `SWITCHBOARD_<KEY>` (so `SERVER__LISTEN=…` overrides `server.listen`).

#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use switchboard::config::{load_str, valid_service_id};

/// A credentials directory with one secret, for relative `*_file` keys.
static CREDENTIALS: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temp dir").keep();
    std::fs::write(dir.join("token"), "a-secret-token-of-32-characters!\n").unwrap();
    dir
});

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // `*_file` keys read files, and a config is the operator's: a path to a device
    // (`/dev/zero`, `/dev/stdin`) would hang or exhaust memory by design, not by bug.
    // Absolute paths and TOML escapes that could spell one are left out.
    if s.contains("/dev")
        || s.contains("/proc")
        || s.contains("/sys")
        || s.contains("\\u")
        || s.contains("\\U")
    {
        return;
    }
    let (text, env_text) = s.split_once('\0').unwrap_or((s, ""));
    let env: Vec<(String, String)> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (format!("SWITCHBOARD_{k}"), v.to_owned()))
        .collect();

    match load_str(text, &env, Some(&CREDENTIALS)) {
        Ok(c) => {
            assert!(c.server.max_body >= 1024);
            assert!(c.delivery.max_attempts >= 1);
            for (id, svc) in &c.services {
                assert!(valid_service_id(id) && *id == svc.id, "{id:?}");
                assert!(!svc.organization.trim().is_empty());
                assert!(!svc.fingerprint.is_empty());
            }
            // Loading is a pure function of its input: same services, same fingerprints.
            let again = load_str(text, &env, Some(&CREDENTIALS)).expect("loads again");
            let prints = |c: &switchboard::config::Config| -> Vec<(String, String)> {
                c.services
                    .values()
                    .map(|s| (s.id.clone(), s.fingerprint.clone()))
                    .collect()
            };
            assert_eq!(prints(&again), prints(&c));
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error with no problem in it");
            for issue in &errors.0 {
                assert!(!issue.message.is_empty(), "{issue:?}");
            }
            let _ = errors.to_string();
        }
    }
});
