//! A daemon in its own temporary directory with a client for its API, which is what
//! nearly every end-to-end test starts from, and the conversations a test opens on it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{Api, Daemon, eventually};

/// A running daemon, its API client and the directory that holds its config and
/// database (removed when the harness is dropped, after the daemon).
pub struct Harness {
    /// The daemon.
    pub daemon: Daemon,
    /// A client with the full-scope test token.
    pub api: Api,
    /// Config, database and whatever files the config names.
    pub dir: tempfile::TempDir,
}

impl Harness {
    /// Starts a daemon on `config(dir)` in a new temporary directory.
    pub fn start(config: impl FnOnce(&Path) -> String) -> Harness {
        Self::start_with_env(config, &[])
    }

    /// [`Harness::start`] with extra environment.
    pub fn start_with_env(config: impl FnOnce(&Path) -> String, env: &[(&str, &str)]) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, config(dir.path())).unwrap();
        let daemon = Daemon::start_at(&path, env);
        let api = Api::new(&daemon);
        Harness { daemon, api, dir }
    }

    /// The config file the daemon reads (`dir/switchboard.toml`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("switchboard.toml")
    }

    /// The config file's text.
    pub fn config(&self) -> String {
        std::fs::read_to_string(self.config_path()).unwrap()
    }

    /// Replaces the config file (for a reload or the next start).
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// SIGTERM and a clean exit, then the daemon again on the same config file and
    /// database (with `env`), and a new client.
    pub fn restart(&mut self, env: &[(&str, &str)]) {
        self.stop();
        self.start_again(env);
    }

    /// SIGTERM and a clean exit; [`Harness::start_again`] brings it back.
    pub fn stop(&mut self) {
        let status = self.daemon.stop();
        assert!(
            status.success(),
            "switchboard did not exit 0: {status}\n{}",
            self.daemon.log_text()
        );
    }

    /// SIGKILL: a crash; [`Harness::start_again`] brings it back.
    pub fn crash(&mut self) {
        self.daemon.crash();
    }

    /// Starts the daemon again (after [`Harness::stop`] or [`Harness::crash`]) on the same
    /// config file and database, with `env`, and a new client.
    pub fn start_again(&mut self, env: &[(&str, &str)]) {
        self.daemon = Daemon::start_at(&self.config_path(), env);
        self.api = Api::new(&self.daemon);
    }

    /// The conversation of `service` with this provider id, once it is stored (waits up
    /// to 15 s): open one by posting the provider's message first.
    pub async fn conversation(&self, service: &str, external_id: &str) -> Value {
        eventually(
            Duration::from_secs(15),
            &format!("conversation {external_id:?} on {service}"),
            || async {
                self.api
                    .conversations(service)
                    .await
                    .into_iter()
                    .find(|c| c["external_id"] == external_id)
            },
        )
        .await
    }

    /// SIGTERM, and a clean exit within the deadline.
    pub fn finish(self) {
        let Harness { daemon, dir, .. } = self;
        assert!(daemon.terminate().success(), "switchboard did not exit 0");
        drop(dir);
    }
}
