use std::io::BufRead;

use custos_domain::{now_micros, parse_event_line};
use custos_eventlog::{Pending, Receipt};

use crate::{Platform, PlatformError, Principal};

/// How `ingest` batches its single transaction.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Events sealed and inserted per batch (all batches commit together).
    pub batch: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self { batch: 4096 }
    }
}

impl Platform {
    /// Bulk append of JSONL events in **one** transaction: a bad line anywhere
    /// rejects the whole input (naming its line number) and nothing is appended.
    /// Memory stays bounded by one batch whatever the input size.
    pub fn ingest(
        &mut self,
        p: &Principal,
        input: &mut dyn BufRead,
        opts: &IngestOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Receipt, PlatformError> {
        let now = now_micros();
        let mut a = self.log.appender()?;
        let mut batch: Vec<Pending> = Vec::with_capacity(opts.batch);
        let mut line = String::new();
        let mut lineno = 0u64;
        loop {
            line.clear();
            let n = input.read_line(&mut line).map_err(|e| PlatformError::Io(format!("reading input at line {}: {e}", lineno + 1)))?;
            if n == 0 {
                break;
            }
            lineno += 1;
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            let ev = parse_event_line(t, now).map_err(|e| PlatformError::BadLine { line: lineno, detail: e.to_string() })?;
            batch.push(Pending { event: ev, actor: p.name.clone() });
            if batch.len() >= opts.batch {
                a.push(&batch).map_err(|e| at_line(e, lineno))?;
                batch.clear();
                progress(lineno);
            }
        }
        if !batch.is_empty() {
            a.push(&batch).map_err(|e| at_line(e, lineno))?;
        }
        progress(lineno);
        Ok(a.commit()?)
    }
}

fn at_line(e: custos_eventlog::LogError, line: u64) -> PlatformError {
    match e {
        custos_eventlog::LogError::TenantDeleted(_) | custos_eventlog::LogError::Conflict(_) => {
            PlatformError::BadLine { line, detail: format!("(in the batch ending here) {e}") }
        }
        e => e.into(),
    }
}
