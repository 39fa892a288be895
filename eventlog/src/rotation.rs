//! Key-lifecycle mechanics over the log: rewrap DEKs in batches, retire a KEK,
//! re-encrypt a tenant's bodies batch by batch, re-wrap everything under a new root key.
//!
//! Each function does one transaction (or one per batch) so that a crash at any point
//! leaves every DEK wrapped by a live KEK and every body sealed by a live DEK; the
//! governance events that describe these steps are pushed by the caller into the same
//! transactions. Policy (who may, when, what the events say) lives in `custos-platform`.

use std::collections::HashMap;
use std::sync::Arc;

use custos_crypto::{open_in_place, random_bytes, seal_in_place, Aead, RootKey};
use custos_domain::now_micros;

use crate::backend::{KekRow, SigningRow, Tx};
use crate::keyring::{dek_aad, kek_aad, Keyring, SIGNING_AAD};
use crate::log::{Appender, EventLog};
use crate::LogError;

/// What one re-encryption batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReencryptBatch {
    /// Bodies re-sealed in this batch (0 = nothing left below the target version).
    pub reencrypted: u64,
    /// tenant_seq of the last record handled (cursor for the next batch).
    pub last_tenant_seq: u64,
    /// New DEK versions made because the sealing DEK reached its seal limit.
    pub rolled_over: u64,
}

/// The rows a root rotation rewrote (ids only; the key material stays inside).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootRewrap {
    /// KEKs re-wrapped under the new root key.
    pub keks: Vec<String>,
    /// Whether the signing key was re-wrapped.
    pub signing_key: bool,
}

impl EventLog {
    /// Re-wraps up to `limit` DEKs that the active KEK does not wrap, in one transaction.
    /// Returns how many were re-wrapped (0 = all DEKs are current).
    pub fn rewrap_batch(&mut self, limit: u64) -> Result<u64, LogError> {
        let (backend, keys) = self.parts_mut()?;
        let keys: &Keyring = keys;
        let mut tx = backend.begin()?;
        let active = active_kek_in(tx.as_mut(), keys)?;
        let rows = tx.deks_not_wrapped_by(&active, limit)?;
        let new_kek = keys.kek(&active)?;
        for r in &rows {
            let aad = dek_aad(&r.tenant, r.version);
            let dek = keys.kek(&r.kek_id)?.unwrap_key(&r.wrapped, &aad, &format!("DEK {} v{}", r.tenant, r.version))?;
            let wrapped = new_kek.wrap(&dek, &aad)?;
            tx.set_dek_wrapping(&r.tenant, r.version, &active, &wrapped)?;
        }
        tx.commit()?;
        Ok(rows.len() as u64)
    }

    /// Re-seals up to `limit` bodies of `tenant` whose DEK version is below `target`
    /// (and whose tenant_seq is above `after`) with the tenant's active DEK, in one
    /// transaction. Each body gets a fresh random nonce and the AAD of its own header at
    /// the new version; headers, commitments and chains are untouched.
    pub fn reencrypt_batch(&mut self, tenant: &str, target: u32, after: u64, limit: u64) -> Result<ReencryptBatch, LogError> {
        let max_seals = self.max_seals;
        // Old DEKs are unwrapped (and cached) before the transaction: the backend cannot be
        // read through while a transaction borrows it.
        let old: HashMap<u32, Arc<Aead>> = {
            let keys = self.keys()?;
            let mut m = HashMap::new();
            for row in self.backend().deks(Some(tenant))?.into_iter().filter(|d| d.version < target) {
                m.insert(row.version, keys.dek_from_row(&row)?);
            }
            m
        };
        let (backend, keys) = self.parts_mut()?;
        let keys: &Keyring = keys;
        let mut tx = backend.begin()?;
        let recs = tx.bodies_below_dek(tenant, target, after, limit)?;
        let mut out = ReencryptBatch { last_tenant_seq: after, ..Default::default() };
        if recs.is_empty() {
            return Ok(out);
        }
        let mut active = tx
            .active_dek(tenant)?
            .ok_or_else(|| LogError::integrity(0, format!("tenant {tenant} has no active DEK to re-encrypt under")))?;
        if active.version < target {
            return Err(LogError::Conflict(format!(
                "tenant {tenant}'s active DEK is v{} but re-encryption targets v{target}; rerun `custos keys reencrypt`",
                active.version
            )));
        }
        let mut nonces = vec![0u8; recs.len() * 12];
        random_bytes(&mut nonces)?;
        let now = now_micros();
        let mut aead = keys.dek_from_row(&active)?;
        let mut sealed_now = 0u64;
        for (i, rec) in recs.iter().enumerate() {
            if active.seals + sealed_now >= max_seals {
                // Same rule as appends: a DEK never seals beyond its bound; a fresh version takes over.
                tx.add_seals(tenant, active.version, sealed_now)?;
                active.seals += sealed_now;
                sealed_now = 0;
                active.active = false;
                tx.put_dek(&active)?;
                let (row, a) = keys.new_dek(tenant, active.version + 1, now)?;
                tx.put_dek(&row)?;
                active = row;
                aead = a;
                out.rolled_over += 1;
            }
            let seq = rec.header.global_seq;
            let (Some(nonce), Some(body)) = (&rec.nonce, &rec.body) else { continue };
            let dek = old
                .get(&rec.dek_version)
                .ok_or_else(|| LogError::integrity(seq, format!("DEK v{} of {tenant} is missing", rec.dek_version)))?;
            let mut buf = body.clone();
            open_in_place(dek, nonce, &rec.header.aad(rec.dek_version), &mut buf)
                .map_err(|_| LogError::integrity(seq, "body does not decrypt under its header; re-encryption stopped, nothing changed"))?;
            let mut n = [0u8; 12];
            n.copy_from_slice(&nonces[i * 12..(i + 1) * 12]);
            seal_in_place(&aead, &n, &rec.header.aad(active.version), &mut buf)?;
            tx.replace_body(seq, active.version, &n, &buf)?;
            sealed_now += 1;
            out.reencrypted += 1;
            out.last_tenant_seq = rec.header.tenant_seq;
        }
        tx.add_seals(tenant, active.version, sealed_now)?;
        tx.commit()?;
        Ok(out)
    }

    /// Re-wraps every live KEK and the signing key under `new_root` inside the appender's
    /// transaction (the caller pushes its event and commits). Refuses when the store holds
    /// a live KEK this process has not unwrapped (another process rotated meanwhile).
    pub fn rewrap_under_root(a: &mut Appender<'_>, new_root: &RootKey) -> Result<RootRewrap, LogError> {
        let keys = a.keys();
        let rows = a.tx().keks()?;
        let mut out = RootRewrap::default();
        for r in rows.into_iter().filter(|k| k.wrapped.is_some()) {
            let k = keys.kek(&r.key_id).map_err(|_| {
                LogError::Conflict(format!(
                    "key {} appeared while rotating the root key; rerun `custos keys rotate-root` with a new path",
                    r.key_id
                ))
            })?;
            let wrapped = new_root.key().wrap(k, &kek_aad(&r.key_id))?;
            a.tx().put_kek(&KekRow { wrapped: Some(wrapped), ..r.clone() })?;
            out.keks.push(r.key_id);
        }
        if let Ok(sk) = keys.signing() {
            let row = SigningRow {
                public_key: sk.public_key().to_vec(),
                wrapped: new_root.key().seal_blob(sk.expose_pkcs8(), SIGNING_AAD)?,
                created_at: now_micros(),
            };
            a.tx().put_signing_key(&row)?;
            out.signing_key = true;
        }
        Ok(out)
    }
}

/// The active KEK as stored, which this process must hold unwrapped.
fn active_kek_in(tx: &mut dyn Tx, keys: &Keyring) -> Result<String, LogError> {
    let id = tx
        .keks()?
        .into_iter()
        .find(|k| k.status == "active")
        .map(|k| k.key_id)
        .ok_or_else(|| LogError::integrity(0, "no active key-encryption key in the store"))?;
    keys.kek(&id).map_err(|_| LogError::Conflict(format!("key {id} became active in another process; rerun the command")))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Query;
    use crate::Pending;
    use custos_domain::{Category, NewEvent, TenantId};

    fn ev(t: &str, i: u64) -> Result<Pending, Box<dyn std::error::Error>> {
        Ok(Pending {
            event: NewEvent {
                tenant: TenantId::parse(t)?,
                category: Category::Runs,
                kind: "run_started".into(),
                occurred_at: None,
                label: None,
                data: serde_json::json!({"i": i}),
            },
            actor: "t".into(),
        })
    }

    fn store() -> Result<(tempfile::TempDir, EventLog, RootKey), Box<dyn std::error::Error>> {
        let d = tempfile::tempdir()?;
        let root = RootKey::create(&d.path().join("k"))?;
        let log = EventLog::create(d.path().join("s.db").to_str().ok_or("path")?, &root)?;
        Ok((d, log, root))
    }

    /// A headers-only query handed to a decrypting read still yields the plaintext
    /// (it used to hand empty bodies to the AEAD and report tampering).
    #[test]
    fn decrypting_reads_ignore_headers_only() -> Result<(), Box<dyn std::error::Error>> {
        let (_d, mut log, _root) = store()?;
        let batch: Vec<Pending> = (0..300).map(|i| ev("acme", i)).collect::<Result<_, _>>()?;
        log.append(&batch)?;
        for limit in [Some(3), None] {
            let q = Query { headers_only: true, limit, ..Default::default() };
            let mut seen = vec![];
            log.read(&q, &mut |e| {
                seen.push(e.data.as_ref().and_then(|d| d["i"].as_u64()));
                Ok(true)
            })?;
            assert_eq!(seen.len(), limit.unwrap_or(300) as usize);
            assert_eq!(seen[2], Some(2));
            let mut a = log.appender()?;
            let mut n = 0;
            a.read(&q, &mut |e| {
                n += usize::from(e.data.as_ref().and_then(|d| d["i"].as_u64()).is_some());
                Ok(true)
            })?;
            assert_eq!(n, limit.unwrap_or(300) as usize);
        }
        Ok(())
    }

    #[test]
    fn reencrypt_batches_move_every_body_and_keep_chains() -> Result<(), Box<dyn std::error::Error>> {
        let (_d, mut log, _root) = store()?;
        let batch: Vec<Pending> = (0..7).map(|i| ev("acme", i)).collect::<Result<_, _>>()?;
        log.append(&batch)?;
        let before: Vec<_> = {
            let mut v = vec![];
            log.backend().scan(&Query::default(), &mut |r| {
                Ok({
                    v.push(r);
                    true
                })
            })?;
            v
        };
        // New active v2, then batches of 3 with a lowered seal limit to force a roll-over.
        let (row, _) = log.keys()?.new_dek("acme", 2, 1)?;
        {
            let mut tx = log.parts_mut()?.0.begin()?;
            let mut old = tx.active_dek("acme")?.ok_or("no dek")?;
            old.active = false;
            tx.put_dek(&old)?;
            tx.put_dek(&row)?;
            tx.commit()?;
        }
        log.max_seals = 5;
        let mut after = 0;
        let mut total = 0;
        let mut rolled = 0;
        loop {
            let b = log.reencrypt_batch("acme", 2, after, 3)?;
            if b.reencrypted == 0 {
                break;
            }
            total += b.reencrypted;
            rolled += b.rolled_over;
            after = b.last_tenant_seq;
        }
        assert_eq!(total, 7);
        assert_eq!(rolled, 1);
        let mut after_recs = vec![];
        log.backend().scan(&Query::default(), &mut |r| {
            Ok({
                after_recs.push(r);
                true
            })
        })?;
        for (a, b) in before.iter().zip(&after_recs) {
            assert_eq!(a.header, b.header);
            assert_eq!(a.tenant_chain, b.tenant_chain);
            assert_eq!(a.global_chain, b.global_chain);
            assert_ne!(a.body, b.body);
            assert!(b.dek_version >= 2);
        }
        let rep = log.verify(&crate::VerifyOptions { with_keys: true, expect: vec![] }, &mut |_| {})?;
        assert!(rep.ok, "{rep:?}");
        assert_eq!(rep.bodies_checked, 7);
        Ok(())
    }

    #[test]
    fn rewrap_moves_deks_to_active_kek_in_batches() -> Result<(), Box<dyn std::error::Error>> {
        let (_d, mut log, _root) = store()?;
        for t in ["a", "b", "c"] {
            log.append(&[ev(t, 1)?])?;
        }
        let (backend, keys) = log.parts_mut()?;
        let row = keys.new_kek("key-002", 1, true)?;
        let mut tx = backend.begin()?;
        let mut k1 = tx.keks()?.remove(0);
        k1.status = "decrypt-only".into();
        tx.put_kek(&k1)?;
        tx.put_kek(&row)?;
        tx.commit()?;
        assert_eq!(log.rewrap_batch(2)?, 2);
        assert_eq!(log.rewrap_batch(2)?, 1);
        assert_eq!(log.rewrap_batch(2)?, 0);
        assert!(log.backend().deks(None)?.iter().all(|d| d.kek_id == "key-002"));
        let rep = log.verify(&crate::VerifyOptions { with_keys: true, expect: vec![] }, &mut |_| {})?;
        assert!(rep.ok);
        Ok(())
    }

    #[test]
    fn root_rewrap_switches_keys_and_unlock_tells_wrong_root_from_altered_row() -> Result<(), Box<dyn std::error::Error>> {
        let (d, mut log, old_root) = store()?;
        log.append(&[ev("acme", 1)?])?;
        let new_root = RootKey::create(&d.path().join("k2"))?;
        let mut a = log.appender()?;
        let rw = EventLog::rewrap_under_root(&mut a, &new_root)?;
        a.commit()?;
        assert_eq!(rw, RootRewrap { keks: vec!["key-001".into()], signing_key: true });
        let path = d.path().join("s.db");
        let path = path.to_str().ok_or("path")?;
        let mut reopened = EventLog::open(path)?;
        let err = reopened.unlock(&old_root).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("does not open this store"), "{err}");
        reopened.unlock(&new_root)?;
        let rep = reopened.verify(&crate::VerifyOptions { with_keys: true, expect: vec![] }, &mut |_| {})?;
        assert!(rep.ok);
        // Flip one byte of the wrapped KEK: the signing key still opens, so the row was altered.
        let mut row = reopened.backend().keks()?.remove(0);
        let mut w = row.wrapped.take().ok_or("wrapped")?;
        w[20] ^= 1;
        row.wrapped = Some(w);
        let mut tx = reopened.parts_mut()?.0.begin()?;
        tx.put_kek(&row)?;
        tx.commit()?;
        let mut again = EventLog::open(path)?;
        let err = again.unlock(&new_root).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("key-001") && err.contains("altered"), "{err}");
        Ok(())
    }
}
