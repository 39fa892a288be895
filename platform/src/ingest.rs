use std::collections::BTreeMap;
use std::io::BufRead;

use custos_compliance::redact::Redactor;
use custos_domain::{now_micros, parse_event_line, Category, NewEvent, TenantId};
use custos_eventlog::{Pending, Receipt};
use serde::Serialize;

use crate::{Platform, PlatformError, Principal, SYSTEM_ACTOR};

/// How `ingest` batches its single transaction.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Events sealed and inserted per batch (all batches commit together).
    pub batch: usize,
    /// Redact PII/secrets in the string fields of `data` before events are sealed
    /// (`ingest --redact`); counts are recorded as one `ingest_redacted` event in `_system`.
    pub redactor: Option<Redactor>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self { batch: 4096, redactor: None }
    }
}

/// What `ingest --redact` replaced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    /// Matches replaced, by type.
    pub counts: BTreeMap<String, u64>,
    /// Sum of `counts`.
    pub total: u64,
    /// Events whose data changed.
    pub events_redacted: u64,
    /// Global seq of the `ingest_redacted` event.
    pub recorded_seq: u64,
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
        Ok(self.ingest_with_report(p, input, opts, progress)?.0)
    }

    /// [`Platform::ingest`], also answering what redaction replaced (with `opts.redactor`).
    /// The receipt counts the input's events only; the `ingest_redacted` event commits in the same transaction.
    pub fn ingest_with_report(
        &mut self,
        p: &Principal,
        input: &mut dyn BufRead,
        opts: &IngestOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(Receipt, Option<IngestReport>), PlatformError> {
        let now = now_micros();
        let mut report = opts.redactor.as_ref().map(|_| IngestReport::default());
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
            let mut ev = parse_event_line(t, now).map_err(|e| PlatformError::BadLine { line: lineno, detail: e.to_string() })?;
            if let (Some(r), Some(rep)) = (&opts.redactor, report.as_mut()) {
                let c = r.redact_json(&mut ev.data);
                if !c.is_empty() {
                    rep.events_redacted += 1;
                }
                for (k, v) in c {
                    rep.total += v;
                    *rep.counts.entry(k).or_default() += v;
                }
            }
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
        if let (Some(r), Some(rep)) = (&opts.redactor, report.as_mut()) {
            let data = serde_json::json!({
                "actor": p.name, "strategy": r.strategy().as_str(), "counts": rep.counts, "total": rep.total,
                "events_redacted": rep.events_redacted, "lines": lineno,
            });
            let ev = NewEvent {
                tenant: TenantId::system(),
                category: Category::Governance,
                kind: "ingest_redacted".into(),
                occurred_at: None,
                label: None,
                data,
            };
            rep.recorded_seq = a.push(&[Pending { event: ev, actor: SYSTEM_ACTOR.into() }])?.first().copied().unwrap_or(0);
        }
        let mut receipt = a.commit()?;
        if report.is_some() {
            // The receipt counts the caller's events; the governance record is reported beside it.
            receipt.appended = receipt.appended.saturating_sub(1);
        }
        Ok((receipt, report))
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
