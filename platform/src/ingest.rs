use std::io::BufRead;
use std::sync::mpsc;

use custos_domain::{now_micros, parse_event_line};
use custos_eventlog::{prepare, Pending, Prepared, Receipt};

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

/// What the parsing stage hands to the writer: a prepared batch and the last line it covers.
type Parsed = Result<(Vec<Prepared>, u64), PlatformError>;

impl Platform {
    /// Bulk append of JSONL events in **one** transaction: a bad line anywhere
    /// rejects the whole input (naming its line number) and nothing is appended.
    /// Memory stays bounded by a few batches whatever the input size.
    ///
    /// Two stages on two cores: a scoped thread reads, parses, validates and builds
    /// the committed bodies (canonical JSON, salt, commitment); this thread seals,
    /// chains and inserts — SQLite is the bottleneck, so it never waits for parsing.
    pub fn ingest(
        &mut self,
        p: &Principal,
        input: &mut (dyn BufRead + Send),
        opts: &IngestOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Receipt, PlatformError> {
        let now = now_micros();
        let batch_size = opts.batch.max(1);
        let actor = p.name.clone();
        let mut a = self.log.appender()?;
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::sync_channel::<Parsed>(2);
            scope.spawn(move || parse_stage(input, &actor, now, batch_size, &tx));
            for msg in rx {
                let (batch, lineno) = msg?;
                a.push_prepared(batch).map_err(|e| at_line(e, lineno))?;
                progress(lineno);
            }
            Ok::<(), PlatformError>(())
        })?;
        Ok(a.commit()?)
    }
}

fn parse_stage(input: &mut (dyn BufRead + Send), actor: &str, now: i64, batch_size: usize, tx: &mpsc::SyncSender<Parsed>) {
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
                return;
            }
        }
        lineno += 1;
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        match parse_event_line(t, now) {
            Ok(ev) => batch.push(Pending { event: ev, actor: actor.to_string() }),
            Err(e) => {
                let _ = tx.send(Err(PlatformError::BadLine { line: lineno, detail: e.to_string() }));
                return;
            }
        }
        if batch.len() >= batch_size && !send(&mut batch, lineno) {
            return; // the writer stopped (it failed); its error is what the user sees
        }
    }
    if !batch.is_empty() {
        send(&mut batch, lineno);
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
