//! Human vs `--json` output, and progress bars that appear only on a terminal.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Where and how a command prints.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// Machine output.
    pub json: bool,
    /// Nothing but errors.
    pub quiet: bool,
}

impl Out {
    /// Prints `value` as one JSON line with `--json`, else the human text (unless quiet).
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) -> anyhow::Result<()> {
        let mut o = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer(&mut o, value)?;
            writeln!(o)?;
        } else if !self.quiet {
            let s = human();
            write!(o, "{s}")?;
            if !s.ends_with('\n') {
                writeln!(o)?;
            }
        }
        Ok(())
    }

    /// Human-only remark (stderr, so it never pollutes piped stdout).
    pub fn note(&self, msg: &str) {
        if !self.quiet && !self.json {
            eprintln!("{msg}");
        }
    }

    /// A progress bar on stderr when it is a terminal; hidden otherwise.
    pub fn progress(&self, len: Option<u64>, what: &str) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let pb = match len {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let tpl =
            if len.is_some() { "{prefix} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})" } else { "{prefix} {spinner} {pos} ({per_sec})" };
        if let Ok(style) = ProgressStyle::with_template(tpl) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.set_prefix(what.to_string());
        pb
    }
}
