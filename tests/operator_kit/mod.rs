//! Test kit for the operator surface's end-to-end tests.
//!
//! - [`browser`] — headless Chromium over the DevTools protocol.

pub mod browser;

use std::path::PathBuf;

/// Where tests leave files for a person to look at (screenshots):
/// `$CARGO_TARGET_DIR/test-artifacts/`, beside the binary's profile directory.
pub fn artifacts() -> PathBuf {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_switchboard"));
    bin.parent()
        .and_then(|profile| profile.parent())
        .expect("the binary lives in <target>/<profile>/")
        .join("test-artifacts")
}
