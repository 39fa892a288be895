//! Projection snapshots sealed with the tenant's DEK.

use custos_crypto::{random_bytes, seal_in_place};
use custos_eventlog::backend::SnapshotRow;
use custos_eventlog::keyring::Keyring;
use custos_eventlog::{EventLog, LogError, Tx};
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
    let mut body = row.body;
    if custos_crypto::open_in_place(&dek, &row.nonce, &aad(tenant, name, row.covers_seq, row.dek_version), &mut body).is_err() {
        return Ok(None);
    }
    Ok(serde_json::from_slice(&body).ok().map(|s| (row.covers_seq, s)))
}
