//! One handler per command: parse → one platform call → print.

mod admin;
pub mod alerts;
pub(crate) mod approvals;
pub mod artifacts;
mod bench;
mod bench_keys;
mod bench_postgres;
mod bench_retention;
pub(crate) mod budgets;
pub mod export;
pub mod freeze;
pub mod holds;
mod keys_lifecycle;
pub mod lifecycle;
mod log;
mod meta;
mod quickstart;
pub mod redact;
pub mod serve;
mod status;

use std::path::PathBuf;

use anyhow::Context;
use custos_platform::{Platform, PlatformError, Principal};

use crate::args::{Cli, Command, ConfigCmd, Global};
use crate::config::Effective;
use crate::output::Out;

/// What every handler needs: where the store is, how to authenticate, how to print.
pub struct Ctx {
    pub store: String,
    pub root_key: PathBuf,
    pub token_file: Option<PathBuf>,
    pub out: Out,
    /// `--yes`: destructive commands skip their typed confirmation.
    pub yes: bool,
    /// Defaults from the config file, for settings the log has not recorded.
    pub defaults: custos_platform::Defaults,
}

impl Ctx {
    fn new(g: &Global, e: &Effective) -> Self {
        Self {
            store: e.store.clone(),
            root_key: e.root_key.clone(),
            token_file: e.token_file.clone(),
            out: Out { json: g.json, quiet: g.quiet },
            yes: g.yes,
            defaults: e.defaults.clone(),
        }
    }

    /// The caller's token: `--token-file` / `CUSTOS_TOKEN_FILE`, else `CUSTOS_TOKEN`.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        if let Some(f) = &self.token_file {
            let t = std::fs::read_to_string(f).map_err(|e| PlatformError::Input(format!("cannot read token file {}: {e}", f.display())))?;
            return Ok(Some(t.trim().to_string()));
        }
        Ok(std::env::var("CUSTOS_TOKEN").ok())
    }

    /// Opens the store with its root key.
    pub fn open(&self) -> anyhow::Result<Platform> {
        Platform::open(&self.store, &self.root_key)
            .map(|p| p.with_defaults(self.defaults.clone()))
            .with_context(|| format!("opening store {}", custos_eventlog::postgres::redact(&self.store)))
    }

    /// Opens the store and authorizes `action` (recording a denial on failure).
    pub fn authorized(&self, action: &str, tenant: Option<&str>) -> anyhow::Result<(Platform, Principal)> {
        let mut p = self.open()?;
        let who = p.authorize(self.token()?.as_deref(), action, tenant)?;
        Ok((p, who))
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli, settings: Effective) -> anyhow::Result<()> {
    let ctx = Ctx::new(&cli.global, &settings);
    match cli.command {
        Command::Init(a) => log::init(&ctx, a),
        Command::Ingest(a) => log::ingest(&ctx, a),
        Command::Events(c) => log::events(&ctx, c),
        Command::Verify(a) => log::verify(&ctx, a),
        Command::Checkpoint => log::checkpoint(&ctx),
        Command::Rebuild => log::rebuild(&ctx),
        Command::Keys(c) => admin::keys(&ctx, c),
        Command::Actors(c) => admin::actors(&ctx, c),
        Command::Whoami => admin::whoami(&ctx),
        Command::Status => status::run(&ctx),
        Command::Freeze(a) => freeze::freeze(&ctx, a),
        Command::Unfreeze(a) => freeze::unfreeze(&ctx, a),
        Command::Quickstart(a) => quickstart::run(&ctx, a),
        Command::Bench(a) => bench::run(&ctx, a),
        Command::Compliance(c) => holds::compliance(&ctx, c),
        Command::Retention(c) => holds::retention(&ctx, c),
        Command::Backup(a) => holds::backup(&ctx, a),
        Command::Restore(a) => holds::restore(&ctx, a),
        Command::Cost(c) => budgets::cost(&ctx, c),
        Command::Budget(c) => budgets::budget(&ctx, c),
        Command::Approvals(c) => approvals::run(&ctx, c),
        Command::Artifacts(c) => artifacts::run(&ctx, c),
        Command::Lifecycle(c) => lifecycle::run(&ctx, c),
        Command::Redact(a) => redact::run(&ctx, a),
        Command::Alerts(a) => alerts::run(&ctx, a),
        Command::Serve(a) => serve::run(&ctx, a),
        Command::Config(ConfigCmd::Show) => meta::config_show(&ctx, &settings),
        Command::Completions { shell } => meta::completions(shell),
        Command::Man { out_dir } => meta::man(&ctx, out_dir.as_deref()),
    }
}
