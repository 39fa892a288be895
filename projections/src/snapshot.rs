//! Projection snapshots sealed with the tenant's DEK.

use custos_crypto::{random_bytes, seal_in_place};
use custos_eventlog::backend::SnapshotRow;
use custos_eventlog::keyring::Keyring;
use custos_eventlog::{Appender, EventLog, LogError, Query, Tx};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn aad(tenant: &str, name: &str, covers: u64, dek_version: u32) -> Vec<u8> {
    [
        b"custos.snapshot.v1\0".as_slice(),
        tenant.as_bytes(),
        b"\0",
        name.as_bytes(),
        b"\0",
        &covers.to_be_bytes(),
        &dek_version.to_be_bytes(),
    ]
    .concat()
}

/// Seals `state` with the tenant's active DEK and writes it inside `tx`.
pub fn save<T: Serialize>(log: &EventLog, tx: &mut dyn Tx, tenant: &str, name: &str, covers_seq: u64, state: &T) -> Result<(), LogError> {
    save_with_keys(log.keys()?, tx, tenant, name, covers_seq, state)
}

/// [`save`] given the keyring directly (when the transaction was opened from
/// [`EventLog::parts_mut`], which borrows the log).
pub fn save_with_keys<T: Serialize>(
    keys: &Keyring,
    tx: &mut dyn Tx,
    tenant: &str,
    name: &str,
    covers_seq: u64,
    state: &T,
) -> Result<(), LogError> {
    let row = tx.active_dek(tenant)?.ok_or_else(|| LogError::NotFoundItem(format!("tenant {tenant} has no data key")))?;
    let dek = keys.dek_from_row(&row)?;
    let mut body = serde_json::to_vec(state).map_err(|e| LogError::Storage(e.to_string()))?;
    let mut nonce = [0u8; 12];
    random_bytes(&mut nonce)?;
    seal_in_place(&dek, &nonce, &aad(tenant, name, covers_seq, row.version), &mut body)?;
    tx.put_snapshot(&SnapshotRow { tenant: tenant.into(), name: name.into(), covers_seq, dek_version: row.version, nonce, body })
}

/// Loads a snapshot; `None` if there is none or it can no longer be opened (then the caller rebuilds).
pub fn load<T: DeserializeOwned>(log: &EventLog, tenant: &str, name: &str) -> Result<Option<(u64, T)>, LogError> {
    let Some(row) = log.backend().snapshot(tenant, name)? else { return Ok(None) };
    let Some(dek) = log.keys()?.dek(log.backend(), tenant, row.dek_version)? else { return Ok(None) };
    Ok(open_row(&dek, row, tenant, name))
}

/// Opens a snapshot row; `None` when it no longer opens or parses (the caller refolds).
fn open_row<T: DeserializeOwned>(dek: &custos_crypto::Aead, row: SnapshotRow, tenant: &str, name: &str) -> Option<(u64, T)> {
    let mut body = row.body;
    custos_crypto::open_in_place(dek, &row.nonce, &aad(tenant, name, row.covers_seq, row.dek_version), &mut body).ok()?;
    serde_json::from_slice(&body).ok().map(|s| (row.covers_seq, s))
}

/// Like [`save`], inside an open [`Appender`] (same transaction as the events it covers).
pub fn save_in<T: Serialize>(a: &mut Appender<'_>, tenant: &str, name: &str, covers_seq: u64, state: &T) -> Result<(), LogError> {
    let (keys, tx) = a.parts();
    save_with_keys(keys, tx, tenant, name, covers_seq, state)
}

/// Like [`load`], as seen inside an open [`Appender`] (under the write lock).
pub fn load_in<T: DeserializeOwned>(a: &mut Appender<'_>, tenant: &str, name: &str) -> Result<Option<(u64, T)>, LogError> {
    let (keys, tx) = a.parts();
    let Some(row) = tx.snapshot(tenant, name)? else { return Ok(None) };
    let Some(drow) = tx.deks(tenant)?.into_iter().find(|d| d.version == row.dek_version) else { return Ok(None) };
    let dek = keys.dek_from_row(&drow)?;
    Ok(open_row(&dek, row, tenant, name))
}

/// A per-tenant read model persisted as a snapshot named [`Folded::NAME`] that covers a tenant_seq.
pub trait Folded: crate::Projection + Default + Serialize + DeserializeOwned {
    /// Snapshot name.
    const NAME: &'static str;
    /// The only category the fold reads, if any: tail reads then skip (without
    /// decrypting) the tenant's other events.
    const CATEGORY: Option<custos_domain::Category> = None;
}

/// State read as snapshot + tail: the state, the tenant_seq it covers, how many tail events were folded.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The folded state.
    pub state: T,
    /// Last tenant_seq folded.
    pub covers: u64,
    /// Events folded after the snapshot (0 when the snapshot was current).
    pub tail: u64,
}

/// Reads a tenant's state: load its snapshot, fold the tail after it. Cost grows with
/// the tail, never with the log; callers refresh the snapshot when the tail gets long.
pub fn load_folded<T: Folded>(log: &EventLog, tenant: &str) -> Result<Loaded<T>, LogError> {
    let (covers, state) = load::<T>(log, tenant, T::NAME)?.unwrap_or_default();
    let mut l = Loaded { state, covers, tail: 0 };
    let q = Query { tenant: Some(tenant.to_string()), after_tenant_seq: Some(covers), category: T::CATEGORY, ..Default::default() };
    log.read(&q, &mut |e| {
        l.covers = e.header.tenant_seq;
        l.tail += 1;
        l.state.apply(&e);
        Ok(true)
    })?;
    Ok(l)
}

/// [`load_folded`] inside an open [`Appender`]: the state cannot change before commit, and
/// `covers` is the tenant's head (call it before pushing to that tenant in the transaction).
pub fn load_folded_in<T: Folded>(a: &mut Appender<'_>, tenant: &str) -> Result<Loaded<T>, LogError> {
    let (covers, state) = load_in::<T>(a, tenant, T::NAME)?.unwrap_or_default();
    let mut l = Loaded { state, covers, tail: 0 };
    let q = Query { tenant: Some(tenant.to_string()), after_tenant_seq: Some(covers), category: T::CATEGORY, ..Default::default() };
    a.read(&q, &mut |e| {
        l.covers = e.header.tenant_seq;
        l.tail += 1;
        l.state.apply(&e);
        Ok(true)
    })?;
    // Under the write lock the state covers everything up to the tenant's head, including
    // events of other categories that a filtered fold skipped.
    if let Some(h) = a.tx().tenant_head(tenant)? {
        l.covers = l.covers.max(h.last_seq);
    }
    Ok(l)
}
