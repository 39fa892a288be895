//! Typed confirmation for commands that destroy data.
//!
//! An operator at a terminal must type the name of what is destroyed (the tenant or
//! key id), so that a command recalled from shell history against the wrong store or
//! tenant stops at the prompt. Scripts and cron pass `--yes`; without a terminal and
//! without `--yes` the command refuses, because a destructive command that silently
//! proceeds when its stdin happens to be a pipe is how accidents get automated.

use std::io::{BufRead, IsTerminal, Write};

use crate::Exit;

/// What the operator is about to do and the word that confirms it.
pub struct Confirm<'a> {
    /// Command as typed, e.g. `compliance delete`.
    pub command: &'a str,
    /// What will happen, in one or more lines, shown before the prompt.
    pub consequences: String,
    /// What must be typed, e.g. the tenant id.
    pub word: &'a str,
    /// What the word is, for the prompt: "the tenant id", "the key id".
    pub word_is: &'a str,
}

impl Confirm<'_> {
    /// Ok when `--yes` was given or the operator typed the word on a terminal.
    /// Errors (exit 1) on a mismatch, on end of input, and when stdin is not a terminal.
    pub fn ask(&self, yes: bool) -> anyhow::Result<()> {
        if yes {
            return Ok(());
        }
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(Exit(
                1,
                format!(
                    "`custos {}` destroys data and asks for typed confirmation, but stdin is not a terminal; \
                     pass --yes to confirm from a script or cron job (nothing was changed)",
                    self.command
                ),
            )
            .into());
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{}\nType {} `{}` to confirm, anything else cancels: ", self.consequences.trim_end(), self.word_is, self.word);
        let _ = err.flush();
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(|e| Exit(1, format!("reading the confirmation: {e}")))?;
        if line.trim() == self.word {
            Ok(())
        } else {
            Err(Exit(1, format!("confirmation did not match `{}`; cancelled, nothing was changed", self.word)).into())
        }
    }
}
