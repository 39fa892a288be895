//! The `custos` binary: parses arguments, resolves the principal, calls one
//! `custos-platform` method per command, prints human or `--json` output, and
//! maps errors to the exit codes of DESIGN §8 in one place ([`exit_code`]).
#![forbid(unsafe_code)]

mod args;
mod cmd;
mod config;
mod confirm;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use custos_platform::PlatformError;

use crate::args::Cli;

/// Exit code for usage errors (sysexits EX_USAGE); never 2, which means access denied.
const EXIT_USAGE: u8 = 64;

/// Error type carrying an explicit exit code (e.g. verify's 5 after printing its report).
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}
impl std::error::Error for Exit {}

fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(x) = e.downcast_ref::<Exit>() {
        return x.0;
    }
    if let Some(p) = e.downcast_ref::<PlatformError>() {
        return p.exit_code() as u8;
    }
    if let Some(custos_eventlog::LogError::Integrity { .. }) = e.downcast_ref::<custos_eventlog::LogError>() {
        return 5;
    }
    1
}

fn main() -> ExitCode {
    let parsed = Cli::command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m).map(|c| (m, c)));
    let (matches, cli) = match parsed {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => EXIT_USAGE,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let level = match cli.global.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CUSTOS_LOG").unwrap_or_else(|_| level.into()))
        .with_writer(std::io::stderr)
        .try_init();
    let settings = match config::resolve(&matches, &cli.global) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("custos: {e}");
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    match cmd::run(cli, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            eprintln!("custos: {e:#}");
            ExitCode::from(code)
        }
    }
}
