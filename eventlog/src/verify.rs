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
    purge_refs: Vec<PurgedRecord>,
    // seq -> what the purge event covers (None without keys: header-level check only).
    purge_events: HashMap<u64, Option<Coverage>>,
    tenant_names: HashMap<String, Arc<str>>,
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
        let is_purge_event = h.tenant.is_system() && PURGE_KINDS.contains(&h.kind.as_str());
        if is_purge_event {
            self.purge_events.insert(seq, None);
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
                    if is_purge_event {
                        self.purge_events.insert(seq, Some(Coverage::parse(&h.kind, canon).map_err(|d| LogError::integrity(seq, d))?));
                    }
                    self.bodies_checked += 1;
                }
            }
            (None, None) => match rec.purged_by {
                Some(by) if by > seq => {
                    let tenant = match self.tenant_names.get(h.tenant.as_str()) {
                        Some(t) => t.clone(),
                        None => self.tenant_names.entry(h.tenant.to_string()).or_insert_with(|| Arc::from(h.tenant.as_str())).clone(),
                    };
                    self.purge_refs.push(PurgedRecord { seq, by, tenant, category: h.category.as_str(), occurred_at: h.occurred_at });
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
                purge_events: HashMap::new(),
                tenant_names: HashMap::new(),
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
    for r in &w.purge_refs {
        match w.purge_events.get(&r.by) {
            None => {
                return Err(LogError::integrity(r.seq, format!("body is missing and seq {} is not a retention run or deletion", r.by)));
            }
            Some(None) if w.deks.is_some() => {
                return Err(LogError::integrity(r.seq, format!("body is missing and purge event {} cannot be read to check it", r.by)));
            }
            Some(None) => {}
            Some(Some(c)) => c.check(r)?,
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

/// A record whose body is gone, and what it claims purged it.
struct PurgedRecord {
    seq: u64,
    by: u64,
    tenant: Arc<str>,
    category: &'static str,
    occurred_at: i64,
}

/// What a purge event (decrypted) says it covers.
///
/// - `tenant_deleted` `{"tenant": T, ...}` covers every record of T.
/// - `retention_enforced` `{"cutoffs": {"default": {CAT: µs}, "tenants": {T: {CAT: µs}}},
///   "held": {T: n}, ...}` covers a record of tenant T, category CAT when T is not
///   `_system`, T is not in `held`, and `occurred_at` < the tenant's cutoff for CAT
///   (or the default cutoff when T has none). A category without a cutoff is never covered.
enum Coverage {
    Tenant(String),
    Retention { default: HashMap<String, i64>, tenants: HashMap<String, HashMap<String, i64>>, held: BTreeSet<String> },
}

fn cutoff_map(v: Option<&serde_json::Value>) -> Result<HashMap<String, i64>, String> {
    let mut out = HashMap::new();
    if let Some(m) = v {
        let m = m.as_object().ok_or("retention cutoffs are not an object")?;
        for (k, v) in m {
            out.insert(k.clone(), v.as_i64().ok_or_else(|| format!("retention cutoff for {k} is not an integer"))?);
        }
    }
    Ok(out)
}

impl Coverage {
    fn parse(kind: &str, canon: &[u8]) -> Result<Self, String> {
        let v: serde_json::Value = serde_json::from_slice(canon).map_err(|e| format!("purge event body is not JSON: {e}"))?;
        let data = v.get("data").ok_or("purge event has no data")?;
        match kind {
            "tenant_deleted" => {
                Ok(Coverage::Tenant(data.get("tenant").and_then(|t| t.as_str()).ok_or("tenant_deleted names no tenant")?.to_string()))
            }
            _ => {
                let cut = data.get("cutoffs").ok_or("retention_enforced records no cutoffs")?;
                let default = cutoff_map(cut.get("default"))?;
                let mut tenants = HashMap::new();
                if let Some(t) = cut.get("tenants") {
                    for (name, m) in t.as_object().ok_or("retention tenant cutoffs are not an object")? {
                        tenants.insert(name.clone(), cutoff_map(Some(m))?);
                    }
                }
                let held = match data.get("held") {
                    Some(h) => h.as_object().ok_or("retention held is not an object")?.keys().cloned().collect(),
                    None => BTreeSet::new(),
                };
                Ok(Coverage::Retention { default, tenants, held })
            }
        }
    }

    fn check(&self, r: &PurgedRecord) -> Result<(), LogError> {
        match self {
            Coverage::Tenant(t) if t.as_str() == &*r.tenant => Ok(()),
            Coverage::Tenant(t) => Err(LogError::integrity(
                r.seq,
                format!("body of tenant {} is missing but purge event {} deleted tenant {t}", r.tenant, r.by),
            )),
            Coverage::Retention { default, tenants, held } => {
                let why = if &*r.tenant == custos_domain::SYSTEM_TENANT {
                    Some("retention never purges _system".to_string())
                } else if held.contains(&*r.tenant) {
                    Some(format!("tenant {} was under legal hold in that run", r.tenant))
                } else {
                    let cutoff = tenants.get(&*r.tenant).and_then(|m| m.get(r.category)).or_else(|| default.get(r.category));
                    match cutoff {
                        Some(&c) if r.occurred_at < c => None,
                        Some(&c) => Some(format!(
                            "it occurred at {} but that run's {} cutoff was {}",
                            custos_domain::format_ts(r.occurred_at),
                            r.category,
                            custos_domain::format_ts(c)
                        )),
                        None => Some(format!("that run had no cutoff for category {}", r.category)),
                    }
                };
                match why {
                    None => Ok(()),
                    Some(w) => {
                        Err(LogError::integrity(r.seq, format!("body is missing but retention run {} does not cover it: {w}", r.by)))
                    }
                }
            }
        }
    }
}
