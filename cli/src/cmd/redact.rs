//! `custos redact`: the redaction engine on text, without a store.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use custos_compliance::redact::{Redactor, Strategy};
use custos_platform::PlatformError;
use serde_json::json;

use super::Ctx;

/// `redact`.
#[derive(Debug, Args)]
pub struct RedactArgs {
    /// Text file, or `-` for stdin.
    #[arg(default_value = "-")]
    pub file: String,
    /// label ([REDACTED:TYPE]), mask (****) or partial (keeps a few characters).
    #[arg(long)]
    pub strategy: Option<String>,
    /// Custom rules file (JSON; see docs/OPERATIONS.md).
    #[arg(long)]
    pub rules: Option<PathBuf>,
}

/// Builds the redactor from `--strategy` / `--rules` (shared with `ingest --redact` and export).
pub fn redactor(strategy: Option<&str>, rules: Option<&PathBuf>) -> Result<Redactor, PlatformError> {
    let s: Option<Strategy> = strategy
        .map(|s| s.parse().map_err(|e| PlatformError::Input(format!("invalid --strategy {s:?}: {e} (use label, mask or partial)"))))
        .transpose()?;
    match rules {
        Some(f) => {
            let json =
                std::fs::read_to_string(f).map_err(|e| PlatformError::Input(format!("cannot read rules file {}: {e}", f.display())))?;
            Redactor::from_rules_json(&json, s).map_err(|e| PlatformError::Input(format!("rules file {}: {e}", f.display())))
        }
        None => Ok(Redactor::builtin(s.unwrap_or_default())),
    }
}

pub fn run(ctx: &Ctx, a: RedactArgs) -> anyhow::Result<()> {
    let r = redactor(a.strategy.as_deref(), a.rules.as_ref())?;
    let mut text = String::new();
    if a.file == "-" {
        std::io::stdin().read_to_string(&mut text).map_err(|e| PlatformError::Input(format!("reading stdin: {e}")))?;
    } else {
        text = std::fs::read_to_string(&a.file).map_err(|e| PlatformError::Input(format!("cannot read {}: {e}", a.file)))?;
    }
    let out = r.redact_str(&text);
    let total = out.total();
    if ctx.out.json {
        ctx.out.emit(&json!({"text": out.text, "counts": out.counts, "total": total}), String::new)
    } else {
        if !ctx.out.quiet {
            print!("{}", out.text);
        }
        let summary: Vec<String> = out.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        ctx.out.note(&format!("redacted {total} ({})", if summary.is_empty() { "nothing found".into() } else { summary.join(", ") }));
        Ok(())
    }
}
