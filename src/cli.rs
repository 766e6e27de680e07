//! The command line: `run`, `check-config`, `migrate`, `services`, `deliveries`
//! (docs/contract.md, "CLI").

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};

/// Bridges the chat tools a business uses into one place where its agents and bots answer.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    /// The config file.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_CONFIG",
        default_value = "/etc/switchboard/switchboard.toml"
    )]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon until SIGTERM or SIGINT.
    Run,
    /// Load and validate the config; exit 2 with one line per problem.
    CheckConfig,
    /// Apply storage migrations and exit.
    Migrate,
    /// List the services with their live state.
    Services,
    /// List or retry dead deliveries, through the running daemon's API.
    Deliveries {
        /// What to do.
        #[command(subcommand)]
        action: crate::deliveries_cmd::Action,
    },
}

/// Exit status for an invalid config.
const EXIT_CONFIG: u8 = 2;

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::load(&cli.config) {
        Ok(c) => c,
        Err(errors) => {
            for issue in &errors.0 {
                eprintln!("{issue}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command {
        Command::CheckConfig => {
            println!(
                "{}: valid ({} service{})",
                cli.config.display(),
                config.services.len(),
                if config.services.len() == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        Command::Run => {
            crate::telemetry::init(&config.log);
            let result = runtime().block_on(crate::daemon::run(config, cli.config));
            report(result)
        }
        Command::Migrate => report(runtime().block_on(migrate(&config))),
        Command::Services => report(runtime().block_on(crate::services_cmd::print(&config))),
        Command::Deliveries { action } => {
            report(runtime().block_on(crate::deliveries_cmd::run(&config, action)))
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sb-worker")
        .build()
        .expect("the tokio runtime starts")
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let location = config.storage.location().map_err(anyhow::Error::msg)?;
    crate::store::migrate_at(&location)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = match &location {
        crate::config::StorageLocation::Sqlite { path, .. } => path.display().to_string(),
        crate::config::StorageLocation::Postgres { url } => crate::config::redact_url(url),
    };
    println!("{name}: migrations applied");
    Ok(())
}
