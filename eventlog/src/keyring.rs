//! Unwrapped key material held in memory while a log is open with its root key.
//!
//! KEKs are unwrapped once at unlock; DEKs are unwrapped on first use and
//! cached as ready AES-GCM keys. Everything zeroizes on drop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use custos_crypto::{Aead, RootKey, SecretKey, SigningKey};

use crate::backend::{Backend, DekRow, KekRow};
use crate::LogError;

/// AAD naming a KEK under the root key.
pub fn kek_aad(key_id: &str) -> Vec<u8> {
    [b"custos.kek.v1\0".as_slice(), key_id.as_bytes()].concat()
}

/// AAD naming a tenant's DEK version under a KEK.
pub fn dek_aad(tenant: &str, version: u32) -> Vec<u8> {
    [b"custos.dek.v1\0".as_slice(), tenant.as_bytes(), b"\0", &version.to_be_bytes()].concat()
}

/// AAD of the signing key under the root key.
pub const SIGNING_AAD: &[u8] = b"custos.signing.v1";

/// `key-001`, `key-002`, ...
pub fn kek_id(n: u32) -> String {
    format!("key-{n:03}")
}

/// In-memory keys of an unlocked log.
pub struct Keyring {
    root: SecretKey,
    keks: HashMap<String, SecretKey>,
    active_kek: Option<String>,
    deks: Mutex<HashMap<String, HashMap<u32, Arc<Aead>>>>,
    signing: Option<SigningKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("keks", &self.keks.keys().collect::<Vec<_>>()).field("active_kek", &self.active_kek).finish()
    }
}

impl Keyring {
    /// Unwraps every live KEK and the signing key. A wrong root key fails here,
    /// naming the first KEK that does not open.
    pub fn unlock(root: &RootKey, backend: &dyn Backend) -> Result<Self, LogError> {
        let mut keks = HashMap::new();
        let mut active = None;
        // A key that fails while others open under the same root key was altered in the
        // database; when none opens, the root key itself is the wrong one.
        let mut failed: Option<(String, custos_crypto::CryptoError)> = None;
        for k in backend.keks()? {
            let Some(w) = &k.wrapped else { continue };
            match root.key().unwrap_key(w, &kek_aad(&k.key_id), &k.key_id) {
                Ok(key) => {
                    if k.status == "active" {
                        active = Some(k.key_id.clone());
                    }
                    keks.insert(k.key_id.clone(), key);
                }
                Err(e) => {
                    if failed.is_none() {
                        failed = Some((k.key_id.clone(), e));
                    }
                }
            }
        }
        let mut signing = None;
        let mut signing_opened = false;
        if let Some(s) = backend.signing_key()? {
            match root.key().open_blob(&s.wrapped, SIGNING_AAD, "signing key") {
                Ok(doc) => {
                    signing_opened = true;
                    let sk = SigningKey::from_pkcs8(&doc)?;
                    if sk.public_key().as_slice() != s.public_key.as_slice() {
                        return Err(LogError::integrity(0, "the signing key does not match its stored public key"));
                    }
                    signing = Some(sk);
                }
                Err(e) => {
                    if failed.is_none() {
                        failed = Some(("signing key".into(), e));
                    }
                }
            }
        }
        if let Some((name, e)) = failed {
            if keks.is_empty() && !signing_opened {
                return Err(wrong_root(root, e));
            }
            return Err(LogError::integrity(
                0,
                format!(
                    "wrapped key {name} does not open under the root key in {} although the store's other keys do: \
                     its row was altered or corrupted; restore the keks/signing_key rows from a backup",
                    root.path().display()
                ),
            ));
        }
        Ok(Self { root: root.key().clone(), keks, active_kek: active, deks: Mutex::new(HashMap::new()), signing })
    }

    /// Brings the in-memory KEKs in line with the `keks` rows read inside a write
    /// transaction, so that a long-lived process (the server's writer) wraps new DEKs
    /// under the KEK that is active *now*, not the one active when it started: another
    /// process may have rotated (new active KEK) or retired (material destroyed) keys,
    /// and a DEK wrapped under a retired KEK's in-memory copy would be lost at the next
    /// restart. Existing in-memory KEKs are kept as they are (a root rotation re-wraps
    /// the same KEK material); a KEK that does not open under this process's root key
    /// means the root key was rotated elsewhere and this process must be restarted with
    /// the new root key file. Returns whether anything changed.
    pub fn sync_keks(&mut self, rows: &[KekRow]) -> Result<bool, LogError> {
        let mut changed = false;
        for k in rows {
            match &k.wrapped {
                None => changed |= self.keks.remove(&k.key_id).is_some(),
                Some(w) if !self.keks.contains_key(&k.key_id) => {
                    let key = self.root.unwrap_key(w, &kek_aad(&k.key_id), &k.key_id).map_err(|_| {
                        LogError::integrity(
                            0,
                            format!(
                                "key-encryption key {} was added by another process and does not open under this process's \
                                 root key: the root key was rotated; restart this process with the new root key file",
                                k.key_id
                            ),
                        )
                    })?;
                    self.keks.insert(k.key_id.clone(), key);
                    changed = true;
                }
                Some(_) => {}
            }
        }
        // A KEK this process made but has not committed yet (it is written in the same
        // transaction as its `key_rotated` event) is not in `rows`: it stays active here.
        let ours_pending = self.active_kek.as_ref().is_some_and(|a| !rows.iter().any(|k| &k.key_id == a));
        if !ours_pending {
            let stored = rows.iter().find(|k| k.status == "active" && k.wrapped.is_some()).map(|k| k.key_id.clone());
            if stored != self.active_kek {
                self.active_kek = stored;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Replaces the root key in memory once a root rotation has committed.
    pub fn set_root(&mut self, root: &RootKey) {
        self.root = root.key().clone();
    }

    /// Ids of the KEKs unwrapped in memory.
    pub fn kek_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.keks.keys().cloned().collect();
        v.sort();
        v
    }

    /// The root key (for wrapping new KEKs and the signing key).
    pub fn root(&self) -> &SecretKey {
        &self.root
    }

    /// Id of the active KEK.
    pub fn active_kek_id(&self) -> Result<&str, LogError> {
        self.active_kek.as_deref().ok_or_else(|| LogError::integrity(0, "no active key-encryption key in the store"))
    }

    /// A KEK by id.
    pub fn kek(&self, id: &str) -> Result<&SecretKey, LogError> {
        self.keks
            .get(id)
            .ok_or_else(|| LogError::integrity(0, format!("key-encryption key {id} is missing (retired or deleted) but still referenced")))
    }

    /// Makes a new KEK row wrapped under the root key and registers it in memory.
    pub fn new_kek(&mut self, id: &str, now: i64, active: bool) -> Result<KekRow, LogError> {
        let k = SecretKey::generate()?;
        let wrapped = self.root.wrap(&k, &kek_aad(id))?;
        self.keks.insert(id.to_string(), k);
        if active {
            self.active_kek = Some(id.to_string());
        }
        Ok(KekRow {
            key_id: id.to_string(),
            wrapped: Some(wrapped),
            status: if active { "active" } else { "decrypt-only" }.into(),
            created_at: now,
        })
    }

    /// Forgets a KEK (after it was retired in the store).
    pub fn forget_kek(&mut self, id: &str) {
        self.keks.remove(id);
    }

    /// Makes a new DEK for `tenant` at `version`, wrapped by the active KEK, cached for sealing.
    pub fn new_dek(&self, tenant: &str, version: u32, now: i64) -> Result<(DekRow, Arc<Aead>), LogError> {
        let kid = self.active_kek_id()?.to_string();
        let dek = SecretKey::generate()?;
        let wrapped = self.kek(&kid)?.wrap(&dek, &dek_aad(tenant, version))?;
        let aead = Arc::new(Aead::new(&dek)?);
        self.cache().entry(tenant.to_string()).or_default().insert(version, aead.clone());
        Ok((DekRow { tenant: tenant.to_string(), version, kek_id: kid, wrapped, seals: 0, active: true, created_at: now }, aead))
    }

    /// Unwraps (or takes from cache) the AEAD key of a DEK row.
    pub fn dek_from_row(&self, row: &DekRow) -> Result<Arc<Aead>, LogError> {
        if let Some(a) = self.cached(&row.tenant, row.version) {
            return Ok(a);
        }
        let name = format!("DEK {} v{}", row.tenant, row.version);
        let dek = self.kek(&row.kek_id)?.unwrap_key(&row.wrapped, &dek_aad(&row.tenant, row.version), &name)?;
        let a = Arc::new(Aead::new(&dek)?);
        self.cache().entry(row.tenant.clone()).or_default().insert(row.version, a.clone());
        Ok(a)
    }

    /// The AEAD key of (tenant, version), loading its row from the backend if not cached.
    pub fn dek(&self, backend: &dyn Backend, tenant: &str, version: u32) -> Result<Option<Arc<Aead>>, LogError> {
        if let Some(a) = self.cached(tenant, version) {
            return Ok(Some(a));
        }
        match backend.deks(Some(tenant))?.into_iter().find(|d| d.version == version) {
            Some(row) => self.dek_from_row(&row).map(Some),
            None => Ok(None),
        }
    }

    /// Drops cached DEKs of a tenant (after deletion or re-encryption).
    pub fn forget_tenant(&self, tenant: &str) {
        self.cache().remove(tenant);
    }

    /// The signing key.
    pub fn signing(&self) -> Result<&SigningKey, LogError> {
        self.signing.as_ref().ok_or_else(|| LogError::integrity(0, "the store has no signing key"))
    }

    /// Installs a signing key (at init).
    pub fn set_signing(&mut self, k: SigningKey) {
        self.signing = Some(k);
    }

    /// A cached DEK, looked up without allocating (hot read path).
    pub fn cached(&self, tenant: &str, version: u32) -> Option<Arc<Aead>> {
        self.cache().get(tenant).and_then(|m| m.get(&version)).cloned()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<u32, Arc<Aead>>>> {
        // A poisoned cache only means another thread panicked mid-insert; the map is still valid.
        self.deks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn wrong_root(root: &RootKey, e: custos_crypto::CryptoError) -> LogError {
    LogError::integrity(0, format!("the root key in {} does not open this store ({e}); is it the right key file?", root.path().display()))
}
