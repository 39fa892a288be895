//! Full verification of a log (DESIGN §3): everything is recomputed, nothing trusted.

use std::collections::{BTreeSet, HashMap};

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
    let mut purge_refs: Vec<(u64, u64, String)> = vec![]; // (record seq, purged_by, tenant)
    let mut purge_events: HashMap<u64, (String, u64)> = HashMap::new(); // seq -> (kind, ...)
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
        if h.tenant.is_system() && PURGE_KINDS.contains(&h.kind.as_str()) {
            purge_events.insert(seq, (h.kind.clone(), seq));
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
                    rep.bodies_checked += 1;
                }
            }
            (None, None) => match rec.purged_by {
                Some(by) if by > seq => {
                    purge_refs.push((seq, by, h.tenant.to_string()));
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

    for (seq, by, _tenant) in &purge_refs {
        if !purge_events.contains_key(by) {
            return Err(LogError::integrity(*seq, format!("body is missing and seq {by} is not a retention run or deletion")));
        }
    }
    let heads = backend.tenant_heads()?;
    for h in &heads {
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
    let known: std::collections::HashSet<&str> = heads.iter().map(|h| h.tenant.as_str()).collect();
    for t in tenants.keys() {
        if !known.contains(t.as_str()) {
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
