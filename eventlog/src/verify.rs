//! Full verification of a log (DESIGN §3): everything is recomputed, nothing trusted.
//!
//! Two stages on two cores: this thread streams rows out of the backend (which is not
//! `Sync`), a scoped worker recomputes hashes, chains and — with keys — decrypts each
//! body and checks its commitment. DEKs are unwrapped once, before the scan.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{mpsc, Arc};

use custos_crypto::{commitment, ct_eq, verify_signature, Aead};

use crate::backend::{CheckpointRow, Query, StoredRecord};
use crate::log::{checkpoint_message, EventLog, VerifyOptions, VerifyReport};
use crate::record::{link, split_body, GENESIS, GLOBAL_CHAIN_PREFIX, TENANT_CHAIN_PREFIX};
use crate::LogError;

/// Kinds of `_system` events allowed to purge bodies.
pub const PURGE_KINDS: &[&str] = &["retention_enforced", "tenant_deleted"];

const BATCH: usize = 2048;

/// DEKs by tenant and version; an unwrap failure is kept and reported by the record that needs it.
type DekMap = HashMap<String, HashMap<u32, Result<Arc<Aead>, String>>>;

/// What the worker accumulates while walking the log in order.
struct Walk<'a> {
    deks: Option<&'a DekMap>,
    expects: &'a HashMap<u64, [u8; 32]>,
    checkpoints: &'a HashMap<u64, Vec<[u8; 32]>>,
    expected_seq: u64,
    global: [u8; 32],
    tenants: HashMap<String, (u64, [u8; 32])>,
    purge_refs: Vec<(u64, u64)>,
    purge_events: HashSet<u64>,
    seen_expect: BTreeSet<u64>,
    events: u64,
    bodies_checked: u64,
    purged: u64,
    buf: Vec<u8>,
    aad: Vec<u8>,
}

impl Walk<'_> {
    fn check(&mut self, rec: &StoredRecord) -> Result<(), LogError> {
        let h = &rec.header;
        let seq = h.global_seq;
        if seq != self.expected_seq {
            return Err(LogError::integrity(
                self.expected_seq,
                format!("record {} is missing (next stored record is {seq})", self.expected_seq),
            ));
        }
        self.expected_seq += 1;
        let entry = h.entry_hash();
        let t = match self.tenants.get_mut(h.tenant.as_str()) {
            Some(t) => t,
            None => self.tenants.entry(h.tenant.to_string()).or_insert((0, GENESIS)),
        };
        if h.tenant_seq != t.0 + 1 {
            return Err(LogError::integrity(seq, format!("tenant {} jumps from tenant_seq {} to {}", h.tenant, t.0, h.tenant_seq)));
        }
        t.0 = h.tenant_seq;
        t.1 = link(TENANT_CHAIN_PREFIX, &t.1, &entry);
        if !ct_eq(&t.1, &rec.tenant_chain) {
            return Err(LogError::integrity(seq, "tenant chain does not match the recomputed value (header, commitment or chain altered)"));
        }
        self.global = link(GLOBAL_CHAIN_PREFIX, &self.global, &entry);
        if !ct_eq(&self.global, &rec.global_chain) {
            return Err(LogError::integrity(seq, "global chain does not match the recomputed value (header, commitment or chain altered)"));
        }
        if let Some(want) = self.expects.get(&seq) {
            if !ct_eq(want, &self.global) {
                return Err(LogError::integrity(
                    seq,
                    format!("receipt mismatch: expected head {} at seq {seq}, log has {}", hex::encode(want), hex::encode(self.global)),
                ));
            }
            self.seen_expect.insert(seq);
        }
        if let Some(heads) = self.checkpoints.get(&seq) {
            if heads.iter().any(|c| !ct_eq(c, &self.global)) {
                return Err(LogError::integrity(seq, format!("signed checkpoint of size {seq} does not match the log (rollback or fork)")));
            }
        }
        if h.tenant.is_system() && PURGE_KINDS.contains(&h.kind.as_str()) {
            self.purge_events.insert(seq);
        }
        match (&rec.nonce, &rec.body) {
            (Some(nonce), Some(body)) => {
                if rec.purged_by.is_some() {
                    return Err(LogError::integrity(seq, "record has a body but is marked purged"));
                }
                if let Some(deks) = self.deks {
                    let dek = match deks.get(h.tenant.as_str()).and_then(|m| m.get(&rec.dek_version)) {
                        Some(Ok(d)) => d,
                        Some(Err(e)) => return Err(LogError::integrity(seq, e.clone())),
                        None => {
                            return Err(LogError::integrity(seq, format!("DEK v{} of tenant {} is missing", rec.dek_version, h.tenant)))
                        }
                    };
                    self.buf.clear();
                    self.buf.extend_from_slice(body);
                    h.aad_into(rec.dek_version, &mut self.aad);
                    custos_crypto::open_in_place(dek, nonce, &self.aad, &mut self.buf)
                        .map_err(|_| LogError::integrity(seq, "body does not decrypt under its header (ciphertext altered or moved)"))?;
                    let (salt, canon) = split_body(&self.buf).ok_or_else(|| LogError::integrity(seq, "body too short"))?;
                    if !ct_eq(&commitment(salt, canon), &h.commitment) {
                        return Err(LogError::integrity(seq, "decrypted body does not match its commitment"));
                    }
                    self.bodies_checked += 1;
                }
            }
            (None, None) => match rec.purged_by {
                Some(by) if by > seq => {
                    self.purge_refs.push((seq, by));
                    self.purged += 1;
                }
                _ => return Err(LogError::integrity(seq, "body is missing and no retention run or deletion covers it")),
            },
            _ => return Err(LogError::integrity(seq, "record has a nonce without a body or a body without a nonce")),
        }
        self.events += 1;
        Ok(())
    }
}

fn load_deks(log: &EventLog) -> Result<DekMap, LogError> {
    let keys = log.keys()?;
    let mut map: DekMap = HashMap::new();
    for row in log.backend().deks(None)? {
        let d = keys.dek_from_row(&row).map_err(|e| format!("DEK v{} of tenant {} cannot be opened: {e}", row.version, row.tenant));
        map.entry(row.tenant.clone()).or_default().insert(row.version, d);
    }
    Ok(map)
}

pub(crate) fn run(log: &EventLog, opts: &VerifyOptions, rep: &mut VerifyReport, progress: &mut dyn FnMut(u64)) -> Result<(), LogError> {
    let deks = if opts.with_keys { Some(load_deks(log)?) } else { None };
    let backend = log.backend();
    let checkpoints = backend.checkpoints()?;
    let mut cp_at: HashMap<u64, Vec<[u8; 32]>> = HashMap::new();
    for c in &checkpoints {
        cp_at.entry(c.size).or_default().push(c.head);
    }
    let expects: HashMap<u64, [u8; 32]> = opts.expect.iter().copied().collect();

    let walked = std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Vec<StoredRecord>>(4);
        let (deks, expects, cp_at) = (deks.as_ref(), &expects, &cp_at);
        let worker = scope.spawn(move || {
            let mut w = Walk {
                deks,
                expects,
                checkpoints: cp_at,
                expected_seq: 1,
                global: GENESIS,
                tenants: HashMap::new(),
                purge_refs: vec![],
                purge_events: HashSet::new(),
                seen_expect: BTreeSet::new(),
                events: 0,
                bodies_checked: 0,
                purged: 0,
                buf: Vec::with_capacity(1024),
                aad: Vec::with_capacity(192),
            };
            for batch in rx {
                for rec in &batch {
                    w.check(rec)?;
                }
            }
            Ok::<_, LogError>(w)
        });
        let mut batch = Vec::with_capacity(BATCH);
        let mut scanned = 0u64;
        let scan = backend.scan(&Query::default(), &mut |rec| {
            batch.push(rec);
            if batch.len() == BATCH {
                scanned += BATCH as u64;
                progress(scanned);
                // A closed channel means the worker found a failure: stop reading.
                return Ok(tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_ok());
            }
            Ok(true)
        });
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        let walked = worker.join().map_err(|_| LogError::Storage("verify worker panicked".into()))?;
        // A worker failure explains an early stop better than the scan's own result.
        let w = walked?;
        scan?;
        Ok::<_, LogError>(w)
    })?;
    progress(walked.events);
    let size = walked.expected_seq - 1;
    rep.events = walked.events;
    rep.bodies_checked = walked.bodies_checked;
    rep.purged = walked.purged;
    rep.tenants = walked.tenants.len() as u64;
    finish(log, &walked, &checkpoints, opts, size, rep)
}

fn finish(
    log: &EventLog,
    w: &Walk<'_>,
    checkpoints: &[CheckpointRow],
    opts: &VerifyOptions,
    size: u64,
    rep: &mut VerifyReport,
) -> Result<(), LogError> {
    let backend = log.backend();
    for (seq, by) in &w.purge_refs {
        if !w.purge_events.contains(by) {
            return Err(LogError::integrity(*seq, format!("body is missing and seq {by} is not a retention run or deletion")));
        }
    }
    let heads = backend.tenant_heads()?;
    for h in &heads {
        let (n, chain) = w.tenants.get(&h.tenant).copied().unwrap_or((0, GENESIS));
        if h.last_seq != n || !ct_eq(&h.chain, &chain) {
            return Err(LogError::integrity(
                size + 1,
                format!(
                    "tenant {} should end at tenant_seq {} but the log ends at {n} (records removed from its tail)",
                    h.tenant, h.last_seq
                ),
            ));
        }
    }
    let known: HashSet<&str> = heads.iter().map(|h| h.tenant.as_str()).collect();
    for t in w.tenants.keys() {
        if !known.contains(t.as_str()) {
            return Err(LogError::integrity(0, format!("tenant {t} has records but no stream head")));
        }
    }
    let signing = backend.signing_key()?;
    for c in checkpoints {
        if c.size > size {
            return Err(LogError::integrity(
                size + 1,
                format!("a signed checkpoint covers {} records but the log has only {size} (tail truncated)", c.size),
            ));
        }
        let msg = checkpoint_message(c.size, &c.head, c.signed_at, None);
        if verify_signature(&c.public_key, &msg, &c.signature).is_err() {
            return Err(LogError::integrity(c.size, "a checkpoint signature does not verify"));
        }
        if let Some(s) = &signing {
            if s.public_key != c.public_key {
                return Err(LogError::integrity(c.size, "a checkpoint is signed by a key that is not this store's"));
            }
        }
        rep.checkpoints += 1;
    }
    for (seq, _) in &opts.expect {
        if !w.seen_expect.contains(seq) {
            return Err(LogError::integrity(
                size + 1,
                format!("receipt for seq {seq} cannot be checked: the log has only {size} records (truncated or rolled back)"),
            ));
        }
    }
    Ok(())
}
