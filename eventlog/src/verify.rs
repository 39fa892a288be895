//! Full verification of a log (DESIGN §3): everything is recomputed, nothing trusted.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use custos_crypto::{commitment, ct_eq, verify_signature};

use crate::backend::Query;
use crate::log::{checkpoint_message, EventLog, VerifyOptions, VerifyReport};
use crate::record::{link, split_body, GENESIS, GLOBAL_CHAIN_PREFIX, TENANT_CHAIN_PREFIX};
use crate::LogError;

/// Kinds of `_system` events allowed to purge bodies.
pub const PURGE_KINDS: &[&str] = &["retention_enforced", "tenant_deleted"];

pub(crate) fn run(log: &EventLog, opts: &VerifyOptions, rep: &mut VerifyReport, progress: &mut dyn FnMut(u64)) -> Result<(), LogError> {
    let keys = if opts.with_keys { Some(log.keys()?) } else { None };
    let backend = log.backend();
    let mut expected_seq = 1u64;
    let mut global = GENESIS;
    let mut tenants: HashMap<String, (u64, [u8; 32])> = HashMap::new();
    let mut purge_refs: Vec<PurgedRecord> = vec![];
    // seq -> what the purge event covers (None without keys: header-level check only).
    let mut purge_events: HashMap<u64, Option<Coverage>> = HashMap::new();
    let mut tenant_names: HashMap<String, Arc<str>> = HashMap::new();
    let checkpoints = backend.checkpoints()?;
    let mut cp_at: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, c) in checkpoints.iter().enumerate() {
        cp_at.entry(c.size).or_default().push(i);
    }
    let expects: HashMap<u64, [u8; 32]> = opts.expect.iter().copied().collect();
    let mut seen_expect: BTreeSet<u64> = BTreeSet::new();
    let mut buf = Vec::with_capacity(1024);

    backend.scan(&Query::default(), &mut |rec| {
        let h = &rec.header;
        let seq = h.global_seq;
        if seq != expected_seq {
            return Err(LogError::integrity(expected_seq, format!("record {expected_seq} is missing (next stored record is {seq})")));
        }
        expected_seq += 1;
        let entry = h.entry_hash();
        let t = tenants.entry(h.tenant.to_string()).or_insert((0, GENESIS));
        if h.tenant_seq != t.0 + 1 {
            return Err(LogError::integrity(seq, format!("tenant {} jumps from tenant_seq {} to {}", h.tenant, t.0, h.tenant_seq)));
        }
        t.0 = h.tenant_seq;
        t.1 = link(TENANT_CHAIN_PREFIX, &t.1, &entry);
        if !ct_eq(&t.1, &rec.tenant_chain) {
            return Err(LogError::integrity(seq, "tenant chain does not match the recomputed value (header, commitment or chain altered)"));
        }
        global = link(GLOBAL_CHAIN_PREFIX, &global, &entry);
        if !ct_eq(&global, &rec.global_chain) {
            return Err(LogError::integrity(seq, "global chain does not match the recomputed value (header, commitment or chain altered)"));
        }
        if let Some(want) = expects.get(&seq) {
            if !ct_eq(want, &global) {
                return Err(LogError::integrity(
                    seq,
                    format!("receipt mismatch: expected head {} at seq {seq}, log has {}", hex::encode(want), hex::encode(global)),
                ));
            }
            seen_expect.insert(seq);
        }
        if let Some(idx) = cp_at.get(&seq) {
            for &i in idx {
                let c = &checkpoints[i];
                if !ct_eq(&c.head, &global) {
                    return Err(LogError::integrity(
                        seq,
                        format!("signed checkpoint of size {seq} does not match the log (rollback or fork)"),
                    ));
                }
            }
        }
        let is_purge_event = h.tenant.is_system() && PURGE_KINDS.contains(&h.kind.as_str());
        if is_purge_event {
            purge_events.insert(seq, None);
        }
        match (&rec.nonce, &rec.body) {
            (Some(nonce), Some(body)) => {
                if rec.purged_by.is_some() {
                    return Err(LogError::integrity(seq, "record has a body but is marked purged"));
                }
                if let Some(keys) = keys {
                    let dek = keys
                        .dek(backend, h.tenant.as_str(), rec.dek_version)?
                        .ok_or_else(|| LogError::integrity(seq, format!("DEK v{} of tenant {} is missing", rec.dek_version, h.tenant)))?;
                    buf.clear();
                    buf.extend_from_slice(body);
                    custos_crypto::open_in_place(&dek, nonce, &h.aad(rec.dek_version), &mut buf)
                        .map_err(|_| LogError::integrity(seq, "body does not decrypt under its header (ciphertext altered or moved)"))?;
                    let (salt, canon) = split_body(&buf).ok_or_else(|| LogError::integrity(seq, "body too short"))?;
                    if !ct_eq(&commitment(salt, canon), &h.commitment) {
                        return Err(LogError::integrity(seq, "decrypted body does not match its commitment"));
                    }
                    if is_purge_event {
                        purge_events.insert(seq, Some(Coverage::parse(&h.kind, canon).map_err(|d| LogError::integrity(seq, d))?));
                    }
                    rep.bodies_checked += 1;
                }
            }
            (None, None) => match rec.purged_by {
                Some(by) if by > seq => {
                    let tenant = tenant_names.entry(h.tenant.to_string()).or_insert_with(|| Arc::from(h.tenant.as_str())).clone();
                    purge_refs.push(PurgedRecord { seq, by, tenant, category: h.category.as_str(), occurred_at: h.occurred_at });
                    rep.purged += 1;
                }
                _ => return Err(LogError::integrity(seq, "body is missing and no retention run or deletion covers it")),
            },
            _ => return Err(LogError::integrity(seq, "record has a nonce without a body or a body without a nonce")),
        }
        rep.events += 1;
        if rep.events.is_multiple_of(65_536) {
            progress(rep.events);
        }
        Ok(true)
    })?;
    progress(rep.events);
    let size = expected_seq - 1;
    rep.tenants = tenants.len() as u64;

    for r in &purge_refs {
        match purge_events.get(&r.by) {
            None => {
                return Err(LogError::integrity(r.seq, format!("body is missing and seq {} is not a retention run or deletion", r.by)));
            }
            Some(None) if keys.is_some() => {
                return Err(LogError::integrity(r.seq, format!("body is missing and purge event {} cannot be read to check it", r.by)));
            }
            Some(None) => {}
            Some(Some(c)) => c.check(r)?,
        }
    }
    for h in backend.tenant_heads()? {
        let (n, chain) = tenants.get(&h.tenant).copied().unwrap_or((0, GENESIS));
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
    for (t, _) in tenants.iter() {
        if !backend.tenant_heads()?.iter().any(|h| &h.tenant == t) {
            return Err(LogError::integrity(0, format!("tenant {t} has records but no stream head")));
        }
    }
    let signing = backend.signing_key()?;
    for c in &checkpoints {
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
        if !seen_expect.contains(seq) {
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
