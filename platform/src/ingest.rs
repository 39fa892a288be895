use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::mpsc;

use custos_compliance::redact::Redactor;
use custos_domain::{now_micros, parse_event_line, Category, NewEvent, TenantId};
use custos_eventlog::{prepare, Pending, Prepared, Receipt};
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

/// What the parsing stage hands to the writer: a prepared batch and the last line it covers.
type Parsed = Result<(Vec<Prepared>, u64), PlatformError>;

impl Platform {
    /// Bulk append of JSONL events in **one** transaction: a bad line anywhere
    /// rejects the whole input (naming its line number) and nothing is appended.
    /// Memory stays bounded by a few batches whatever the input size.
    pub fn ingest(
        &mut self,
        p: &Principal,
        input: &mut (dyn BufRead + Send),
        opts: &IngestOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Receipt, PlatformError> {
        Ok(self.ingest_with_report(p, input, opts, progress)?.0)
    }

    /// [`Platform::ingest`], also answering what redaction replaced (with `opts.redactor`).
    /// The receipt counts the input's events only; the `ingest_redacted` event commits in
    /// the same transaction.
    ///
    /// Two stages on two cores: a scoped thread reads, parses, validates, redacts and
    /// builds the committed bodies (canonical JSON, salt, commitment); this thread seals,
    /// chains and inserts — SQLite is the bottleneck, so it never waits for parsing.
    pub fn ingest_with_report(
        &mut self,
        p: &Principal,
        input: &mut (dyn BufRead + Send),
        opts: &IngestOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(Receipt, Option<IngestReport>), PlatformError> {
        let now = now_micros();
        let batch_size = opts.batch.max(1);
        let actor = p.name.clone();
        let redactor = opts.redactor.as_ref();
        let mut a = self.log.appender()?;
        let (lines, mut report) = std::thread::scope(|scope| {
            let (tx, rx) = mpsc::sync_channel::<Parsed>(2);
            let parser = scope.spawn(move || parse_stage(input, &actor, now, batch_size, redactor, &tx));
            for msg in rx {
                let (batch, lineno) = msg?;
                a.push_prepared_owned(batch).map_err(|e| at_line(e, lineno))?;
                progress(lineno);
            }
            parser.join().map_err(|_| PlatformError::Io("the ingest parser thread panicked".into()))
        })?;
        if let (Some(r), Some(rep)) = (redactor, report.as_mut()) {
            let data = serde_json::json!({
                "actor": p.name, "strategy": r.strategy().as_str(), "counts": rep.counts, "total": rep.total,
                "events_redacted": rep.events_redacted, "lines": lines,
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

/// Reads and prepares batches; returns the number of lines read and the redaction counts.
/// Errors travel through the channel so the writer stops and rolls back.
fn parse_stage(
    input: &mut (dyn BufRead + Send),
    actor: &str,
    now: i64,
    batch_size: usize,
    redactor: Option<&Redactor>,
    tx: &mpsc::SyncSender<Parsed>,
) -> (u64, Option<IngestReport>) {
    let mut report = redactor.map(|_| IngestReport::default());
    let mut batch: Vec<Pending> = Vec::with_capacity(batch_size);
    let mut line = String::new();
    let mut lineno = 0u64;
    let send = |batch: &mut Vec<Pending>, lineno: u64| -> bool {
        let msg = prepare(std::mem::take(batch)).map(|b| (b, lineno)).map_err(PlatformError::from);
        tx.send(msg).is_ok()
    };
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(Err(PlatformError::Io(format!("reading input at line {}: {e}", lineno + 1))));
                return (lineno, report);
            }
        }
        lineno += 1;
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let mut ev = match parse_event_line(t, now) {
            Ok(ev) => ev,
            Err(e) => {
                let _ = tx.send(Err(PlatformError::BadLine { line: lineno, detail: e.to_string() }));
                return (lineno, report);
            }
        };
        if let (Some(r), Some(rep)) = (redactor, report.as_mut()) {
            let c = r.redact_json(&mut ev.data);
            if !c.is_empty() {
                rep.events_redacted += 1;
            }
            for (k, v) in c {
                rep.total += v;
                *rep.counts.entry(k).or_default() += v;
            }
        }
        batch.push(Pending { event: ev, actor: actor.to_string() });
        if batch.len() >= batch_size && !send(&mut batch, lineno) {
            return (lineno, report); // the writer stopped (it failed); its error is what the user sees
        }
    }
    if !batch.is_empty() {
        send(&mut batch, lineno);
    }
    (lineno, report)
}

fn at_line(e: custos_eventlog::LogError, line: u64) -> PlatformError {
    match e {
        custos_eventlog::LogError::TenantDeleted(_) | custos_eventlog::LogError::Conflict(_) => {
            PlatformError::BadLine { line, detail: format!("(in the batch ending here) {e}") }
        }
        e => e.into(),
    }
}
